#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of "make bench" (scripts/bench boots the guest): run the
# fio jobs of bench/fio/ on three devices in turn, all over the same data
# on the guest's /tmp tmpfs,
#
#   qcow  "qcowctl attach IMAGE"                       (qcow2, 64 KiB clusters)
#   loop  "losetup --direct-io=off" over a raw file    (same data)
#   nbd   "qemu-nbd -c -f qcow2 --cache=writeback IMAGE"
#
# only one of them holding an image at a time, measuring IOPS, bandwidth
# and system-wide CPU time per I/O, and print the table of medians
# (bench/bench-table.py).  tmpfs has no O_DIRECT, so all three reach the
# image through the page cache.
#
# Knobs (environment):
#   QCOW2_BENCH_SIZE     image size (default 512M)
#   QCOW2_BENCH_RUNTIME  seconds per fio run, after a 1 s ramp (default 3)
#   QCOW2_BENCH_REPEAT   runs per job on qcow and loop; the median is kept (13)
#   QCOW2_BENCH_NBD_REPEAT  runs per job on nbd (3, or QCOW2_BENCH_REPEAT if
#                        fewer)
#   QCOW2_BENCH_JOBS     job names to run (default: all of bench/fio/)
#   QCOW2_BENCH_DEVICES  devices to run them on (default "qcow loop nbd")
#   QCOW2_BENCH_NBD      nbd device (default /dev/nbd0)
#   QCOW2_BENCH_OUT      where results go (default $QCOW2_OUT, else .)
#
# Results: OUT/results.md (the table, also printed), OUT/results.json (every
# run), OUT/runs/ (fio's JSON output and the counters of each run).  The
# repetitions interleave the devices: rep 1 on qcow, loop, nbd, then rep 2
# (nbd only for its first QCOW2_BENCH_NBD_REPEAT).
# Exit status 1 if a run failed (a slow device is not a failure).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${QCOW2_SRC:-$(cd "$here/.." && pwd)}
QCOWCTL=${QCOWCTL:-$src/tools/qcowctl/qcowctl}
QCOW2_KO=${QCOW2_KO:-}
fiodir=$src/bench/fio
out=${QCOW2_BENCH_OUT:-${QCOW2_OUT:-$PWD}}
size=${QCOW2_BENCH_SIZE:-512M}
runtime=${QCOW2_BENCH_RUNTIME:-3}
repeat=${QCOW2_BENCH_REPEAT:-13}
# qemu-nbd is several times slower than the other two: its median needs no
# precision, and its runs are the slowest to set up.
nbd_repeat=${QCOW2_BENCH_NBD_REPEAT:-$((repeat < 3 ? repeat : 3))}
all_jobs="randread-qd1 randread-qd32 randwrite-qd32 randwrite-alloc-qd32
	seqread-1m seqwrite-1m randrw-70-30 randread-qd32-2jobs cache"
# One line each, single blanks.
jobs=$(xargs <<<"${QCOW2_BENCH_JOBS:-$all_jobs}")
devices=$(xargs <<<"${QCOW2_BENCH_DEVICES:-qcow loop nbd}")
nbd=${QCOW2_BENCH_NBD:-/dev/nbd0}
cluster=65536
cache_mode="buffered (page cache)"

say()
{
	echo "# bench: $*"
}

die()
{
	say "$*" >&2
	exit 1
}

want_dev()
{
	case " $devices " in *" $1 "*) return 0 ;; esac
	return 1
}

size_bytes=$(numfmt --from=iec "$size") || die "bad QCOW2_BENCH_SIZE '$size'"
for n in "$runtime" "$repeat" "$nbd_repeat"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] ||
		die "QCOW2_BENCH_RUNTIME, _REPEAT and _NBD_REPEAT must be positive integers"
done
[ $((size_bytes % cluster)) = 0 ] || die "size must be a multiple of 64 KiB"
for j in $jobs; do
	[ -f "$fiodir/$j.fio" ] || die "no job $j ($fiodir/$j.fio)"
done
for d in $devices; do
	case $d in qcow | loop | nbd) ;; *) die "unknown device $d" ;; esac
done
for c in fio qemu-img python3 losetup; do
	command -v "$c" >/dev/null || die "$c not installed"
done
! want_dev nbd || command -v qemu-nbd >/dev/null || die "qemu-nbd not installed"
[ "$(id -u)" = 0 ] || die "must run as root"

work=$(mktemp -d /tmp/qcow2-bench.XXXXXX) || exit 1
runs=$out/runs
mkdir -p "$runs" || exit 1
rm -f "$runs"/* "$out/results.md" "$out/results.json"

raw=$work/data.raw		# the data, for loop
img=$work/data.qcow2		# the same data as qcow2, for qcow and nbd
cache_img=$work/cache.qcow2	# for the cache job
nbd_pid=$work/qemu-nbd.pid
loaded=0
DEV=
DEV_KIND=
failed=0

# dev_up KIND FILE [QCOWCTL ATTACH OPTIONS...]: attach FILE as a device of
# KIND and set DEV.
dev_up()
{
	local kind=$1 file=$2 i

	shift 2
	DEV=
	case $kind in
	qcow)
		DEV=$("$QCOWCTL" attach "$@" "$file") || return 1
		;;
	loop)
		DEV=$(losetup -f --show --direct-io=off "$file") || return 1
		;;
	nbd)
		rm -f "$nbd_pid"
		qemu-nbd -c "$nbd" -f qcow2 --cache=writeback \
			--pid-file="$nbd_pid" "$file" || return 1
		DEV=$nbd
		# The kernel may learn the size a moment after the connect.
		for i in $(seq 100); do
			[ "$(blockdev --getsize64 "$nbd" 2>/dev/null || echo 0)" = 0 ] ||
				break
			[ "$i" = 100 ] && return 1
			sleep 0.1
		done
		;;
	esac
	DEV_KIND=$kind
	[ -b "$DEV" ]
}

dev_down()
{
	local pid i rc=0

	[ -n "$DEV_KIND" ] || return 0
	case $DEV_KIND in
	qcow) "$QCOWCTL" detach "$DEV" || rc=1 ;;
	loop) losetup -d "$DEV" || rc=1 ;;
	nbd)
		pid=$(cat "$nbd_pid" 2>/dev/null)
		qemu-nbd -d "$nbd" >/dev/null || rc=1
		# The image is not free until qemu-nbd has gone.
		for i in $(seq 100); do
			if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		;;
	esac
	DEV=
	DEV_KIND=
	return $rc
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup()
{
	dev_down 2>/dev/null
	rm -rf "$work"
	[ "$loaded" = 0 ] || rmmod qcow2 || say "rmmod qcow2 failed"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The system-wide "cpu" line of /proc/stat: user nice system idle iowait
# irq softirq steal, in USER_HZ ticks.
cpu_ticks()
{
	local _cpu a b c d e f g h _rest

	read -r _cpu a b c d e f g h _rest </proc/stat
	echo "$a $b $c $d $e $f $g $h"
}

# Sectors read and written by a block device so far.
dev_sectors()
{
	local s

	read -r -a s <"/sys/block/${1#/dev/}/stat"
	echo "${s[2]} ${s[6]}"
}

qcow_attr()
{
	cat "/sys/block/${DEV#/dev/}/qcow2/$1"
}

# Milliseconds a fixed CPU-bound task takes right now.  The host is
# shared: the same work takes up to twice as long from one second to the
# next, and this is what lets the table show it.
speed_probe()
{
	local t0 t1

	t0=$(date +%s%N)
	awk 'BEGIN { for (i = 0; i < 100000; i++) s += i * i }'
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# run_fio JOB KIND REP: one fio run of JOB on $DEV, with its counters.
run_fio()
{
	local job=$1 kind=$2 rep=$3 base meta rc t0 t1 c0 c1 s0 s1 h0 m0

	base=$runs/$job.$kind.$rep
	meta=$base.meta
	{
		echo "job=$job"
		echo "device=$kind"
		echo "rep=$rep"
		echo "dev=$DEV"
		echo "bs=$(sed -n 's/^bs=//p' "$fiodir/$job.fio")"
		echo "probe_ms=$(speed_probe)"
	} >"$meta"
	if [ "$kind" = qcow ]; then
		echo "cache_size=$(qcow_attr cache_size)" >>"$meta"
		echo "cache_slice_size=$(qcow_attr cache_slice_size)" >>"$meta"
		h0=$(qcow_attr cache_hits)
		m0=$(qcow_attr cache_misses)
	fi
	s0=$(dev_sectors "$DEV")
	c0=$(cpu_ticks)
	t0=$(date +%s.%N)
	DEV=$DEV RUNTIME=$runtime fio --output-format=json --eta=never \
		--output="$base.json" "$fiodir/$job.fio" 2>"$base.err"
	rc=$?
	t1=$(date +%s.%N)
	c1=$(cpu_ticks)
	s1=$(dev_sectors "$DEV")
	{
		echo "fio_rc=$rc"
		echo "wall=$t0 $t1"
		echo "cpu_before=$c0"
		echo "cpu_after=$c1"
		echo "sectors_before=$s0"
		echo "sectors_after=$s1"
	} >>"$meta"
	if [ "$kind" = qcow ]; then
		echo "cache_hits=$h0 $(qcow_attr cache_hits)" >>"$meta"
		echo "cache_misses=$m0 $(qcow_attr cache_misses)" >>"$meta"
	fi
	python3 "$here/bench-table.py" --run "$meta" || rc=1
	return $rc
}

# A fresh empty image (or sparse raw file) for the allocating job.
empty_image()
{
	rm -f "$work/empty.qcow2" "$work/empty.raw"
	case $1 in
	loop) truncate -s "$size_bytes" "$work/empty.raw" &&
		echo "$work/empty.raw" ;;
	*) qemu-img create -q -f qcow2 -o cluster_size=$cluster \
		"$work/empty.qcow2" "$size_bytes" && echo "$work/empty.qcow2" ;;
	esac
}

# The cache job's image and --cache-size: an L2 cache covering about half
# of the image.  The driver keeps a minimum number of slices; when that
# minimum covers more than half of the data, the image repeats the data
# until it is twice what the cache covers.
cache_setup()
{
	local want granted cover n files=() i

	# 8 bytes of L2 per cluster.
	want=$((size_bytes * 4 / cluster))
	dev_up qcow "$img" --read-only --cache-size "$want" || return 1
	granted=$(qcow_attr cache_size)
	dev_down || return 1
	cover=$((granted * (cluster / 8)))
	n=$(((2 * cover + size_bytes - 1) / size_bytes))
	[ "$n" -ge 1 ] || n=1
	for i in $(seq "$n"); do
		files+=("$raw")
	done
	say "cache job: --cache-size $want gives $granted bytes of L2," \
		"covering $((cover >> 20)) MiB; image of $n x $((size_bytes >> 20)) MiB"
	qemu-img convert -f raw -O qcow2 -o cluster_size=$cluster \
		"${files[@]}" "$cache_img" || return 1
	cache_opt=$want
}

# one JOB KIND REP: set up the device for JOB, run it, tear down.
one()
{
	local job=$1 kind=$2 rep=$3 file rc=0

	case $job in
	randwrite-alloc-qd32) file=$(empty_image "$kind") || return 1 ;;
	cache) file=$cache_img ;;
	*) if [ "$kind" = loop ]; then file=$raw; else file=$img; fi ;;
	esac
	if [ "$job" = cache ]; then
		dev_up qcow "$file" --cache-size "$cache_opt"
	else
		dev_up "$kind" "$file"
	fi || { say "$job: cannot set up $kind over $file"; dev_down; return 1; }
	run_fio "$job" "$kind" "$rep" || rc=1
	dev_down || rc=1
	[ "$job" != randwrite-alloc-qd32 ] || rm -f "$file"
	return $rc
}

# --- setup
if want_dev qcow; then
	if [ ! -c /dev/qcow-control ]; then
		[ -f "$QCOW2_KO" ] || die "qcow2.ko not loaded and QCOW2_KO not set"
		insmod "$QCOW2_KO" || die "insmod $QCOW2_KO failed"
		loaded=1
	fi
	[ -x "$QCOWCTL" ] || die "qcowctl not built at $QCOWCTL"
fi
want_dev loop && { modprobe loop 2>/dev/null || true; }
if want_dev nbd; then
	modprobe nbd || die "modprobe nbd failed"
	mkdir -p /run/lock
	[ -b "$nbd" ] || die "$nbd missing"
fi

say "writing $((size_bytes >> 20)) MiB of random data to $raw"
fio --name=fill --filename="$raw" --rw=write --bs=1M --size="$size_bytes" \
	--ioengine=psync --refill_buffers --output=/dev/null ||
	die "cannot write $raw"
qemu-img convert -f raw -O qcow2 -o cluster_size=$cluster "$raw" "$img" ||
	die "qemu-img convert failed"

default_cache=
if want_dev qcow; then
	dev_up qcow "$img" --read-only || die "qcowctl attach $img failed"
	default_cache="$(qcow_attr cache_size) $(qcow_attr cache_slice_size)"
	dev_down || die "qcowctl detach failed"
fi

{
	echo "kernel=$(uname -r)"
	echo "fio=$(fio --version)"
	echo "qemu_nbd=$(qemu-nbd --version 2>/dev/null | head -n 1)"
	echo "qemu_img=$(qemu-img --version | head -n 1)"
	echo "cache_mode=$cache_mode"
	echo "image_fs=$(stat -f -c %T "$work")"
	echo "size=$size_bytes"
	echo "cluster_size=$cluster"
	echo "runtime=$runtime"
	echo "ramp=1"
	echo "repeat=$repeat"
	echo "nbd_repeat=$nbd_repeat"
	echo "jobs=$jobs"
	echo "devices=$devices"
	echo "default_cache=$default_cache"
	echo "l2_cache_size_param=$(cat /sys/module/qcow2/parameters/l2_cache_size 2>/dev/null)"
	echo "cpus=$(nproc)"
	echo "mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
	echo "clk_tck=$(getconf CLK_TCK)"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$runs/bench.meta"

# --- the runs
cache_opt=
for job in $jobs; do
	if [ "$job" = cache ]; then
		if ! want_dev qcow; then
			say "cache: qcow not among the devices, skipped"
			continue
		fi
		if ! cache_setup; then
			say "cache: setup failed"
			failed=1
			continue
		fi
	fi
	for rep in $(seq "$((repeat > nbd_repeat ? repeat : nbd_repeat))"); do
		for kind in $devices; do
			[ "$job" != cache ] || [ "$kind" = qcow ] || continue
			if [ "$kind" = nbd ]; then
				[ "$rep" -le "$nbd_repeat" ] || continue
			else
				[ "$rep" -le "$repeat" ] || continue
			fi
			one "$job" "$kind" "$rep" || failed=1
		done
	done
	[ "$job" != cache ] || rm -f "$cache_img"
done

python3 "$here/bench-table.py" "$out" || failed=1
[ "$failed" = 0 ] || say "some runs failed (see above and $runs/)"
exit "$failed"
