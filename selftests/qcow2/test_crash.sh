#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency and I/O errors under the image file.
#
#   log-writes  The image lives on ext4 on dm-log-writes.  An allocating
#               workload (fio at queue depth 16, then seeded writes, zeroes
#               and discards by qcow2_ops) runs on /dev/qcowN in steps; each
#               step ends with an fsync of /dev/qcowN and a log mark.  The
#               log is then replayed (log_replay) onto a copy of the data
#               device at every mark and at points between marks; at each
#               point ext4 recovers its journal and "qemu-img check" must
#               find no corruption (leaks are allowed); at a mark the image
#               must also hold exactly what the device held at that fsync.
#   faults      The image lives on ext4 on a dm device whose writes are made
#               to fail (dm-flakey error_writes): the writer gets the error,
#               the device detaches, and once the disk is back the image
#               has no corruption and still holds what was flushed before.
#
# Env: QCOW2_CRASH_STEPS (default 6), QCOW2_CRASH_POINTS (default 24, the
# replay points between marks), QCOW2_OPS_SEED (printed), QCOW2_CRASH_PARTS.
# QCOW2_CRASH_LOOP=1 puts a loop device over a raw file where /dev/qcowN
# over a qcow2 file would be: it proves the harness itself without the
# driver (the qemu-img checks then have nothing to check).

# shellcheck disable=SC2317 # the test_* parts are called by name, below
set -u
. "$(dirname "$0")/test_common.sh"
. "$(dirname "$0")/logwrites_common.sh"

require_root
require_cmd qemu-img e2fsck fio
require_module
lw_require
QCOW2_OPS=$SELFTEST_DIR/qcow2_ops
[ -x "$QCOW2_OPS" ] || skip_all "qcow2_ops not built (make -C selftests/qcow2)"

err=$WORKDIR/err
MiB=$((1 << 20))
SEED=${QCOW2_OPS_SEED:-$(( $(date +%s) % 100000 ))}
STEPS=${QCOW2_CRASH_STEPS:-6}
NPOINTS=${QCOW2_CRASH_POINTS:-24}
diag "random sequences use seed $SEED (QCOW2_OPS_SEED=$SEED repeats them)"

# The device under test: /dev/qcowN over a qcow2 file, or for a check of
# the harness, a loop device over a raw file.
if [ "${QCOW2_CRASH_LOOP:-0}" = 1 ]; then
	FMT=raw
	diag "QCOW2_CRASH_LOOP=1: loop devices over raw files instead of /dev/qcowN"
else
	FMT=qcow2
fi

# img_create IMG SIZE CLUSTER
img_create()
{
	if [ "$FMT" = raw ]; then
		truncate -s "$2" "$1"
	else
		qemu-img create -q -f qcow2 -o cluster_size="$3" "$1" "$2"
	fi
}

# img_attach IMG: print the writable device.
img_attach()
{
	if [ "$FMT" = raw ]; then
		new_loop "$1" --direct-io=on
	else
		attach_rw "$1"
	fi
}

# img_detach DEV [TIMEOUT]
img_detach()
{
	if [ "$FMT" = raw ]; then
		del_loop "$1"
		return
	fi
	note_detaching "$1"
	timeout "${2:-60}" "$QCOWCTL" detach "$1" || return
	forget_dev "$1"
	wait_gone "$1" 10
}

# img_check NAME IMG ALLOWED: check_image, for qcow2 images.
img_check()
{
	if [ "$FMT" = raw ]; then
		ok "$1: (raw file, nothing to check)"
		return
	fi
	check_image "$@"
}

# dm_swap NAME TABLE: replace the live table of NAME.  No freeze of the
# file system on it: with failing writes, a freeze could not sync.
dm_swap()
{
	dmsetup suspend --nolockfs "$1" &&
		dmsetup load "$1" --table "$2" &&
		dmsetup resume --nolockfs "$1"
}

# errored RC: a command failed, and not by timeout(1)'s kill.
errored()
{
	[ "$1" -ne 0 ] && [ "$1" -ne 124 ] && [ "$1" -ne 137 ]
}

# ---------------------------------------------------------------------------
# dm-log-writes: record the workload, then replay it.

LW=qcow2lw-$$
DATA_SIZE=256M
LOG_SIZE=256M
VSIZE=64M
REGION=$((4 * MiB))	# fio's region per step

# record: run the workload on an image on ext4 on log-writes.  Leaves the
# log in $LW_LOG and the expected content at mark flushK in
# $WORKDIR/ref-K.raw.
record()
{
	local img ref=$WORKDIR/ref.raw k off dev

	lw_start "$LW" "$DATA_SIZE" "$LOG_SIZE" || return 1
	img=$LW_MNT/img.$FMT
	if ! img_create "$img" "$VSIZE" 4096 2>"$err"; then
		diag <"$err"
		fail "log-writes: create the image"
		return 1
	fi
	sync "$img"
	sync -f "$LW_MNT"
	lw_mark created

	dev=$(img_attach "$img" 2>"$err")
	if [ -z "$dev" ]; then
		diag <"$err"
		fail "log-writes: attach read-write"
		return 1
	fi
	truncate -s "$VSIZE" "$ref"
	for k in $(seq 1 "$STEPS"); do
		# Concurrent allocating writes into a fresh region; what the
		# device then shows there is what must survive the flush.
		off=$(( (k - 1) * 2 * REGION % (64 * MiB) ))
		if ! (cd "$WORKDIR" && fio --name="step$k" --filename="$dev" \
			--ioengine=libaio --direct=1 --rw=randwrite \
			--bsrange=4k-64k --iodepth=16 --offset="$off" \
			--size="$REGION" --randseed=$((SEED + k)) \
			--output="$WORKDIR/fio.log") >/dev/null 2>&1; then
			grep -E 'err=|fio:' "$WORKDIR/fio.log" | head -n 5 | diag
			fail "log-writes: step $k: fio"
			return 1
		fi
		dd if="$dev" of="$ref" bs=64k iflag=direct conv=notrunc \
			skip=$((off / 65536)) seek=$((off / 65536)) \
			count=$((REGION / 65536)) status=none
		# Then writes, zeroes and discards all over, and the fsync.
		if ! "$QCOW2_OPS" -s $((SEED + k)) -n 30 -c 4096 \
			-m $((128 << 10)) -f "$dev" "$ref" >"$err" 2>&1; then
			diag <"$err"
			fail "log-writes: step $k: qcow2_ops + fsync"
			return 1
		fi
		lw_mark "flush$k"
		cp --sparse=always "$ref" "$WORKDIR/ref-$k.raw"
	done
	ok "log-writes: $STEPS steps of fio + qcow2_ops + fsync on /dev/qcowN, each marked"
	img_detach "$dev" || fail "log-writes: detach"
	lw_stop
}

# check_point P KIND [K]: the replayed data device is at entry P; mount a
# copy (ext4 recovers its journal), check the image, and at the mark of
# step K compare its content with ref-K.  Returns 1 on a failure (already
# diagnosed).
check_point()
{
	local p=$1 kind=$2 k=${3:-} mnt=$LW_CHK rc out ret=0

	lw_mount_copy "$p ($kind)" || return 1
	if [ "$FMT" = raw ]; then
		rc=0
	else
		qemu-img check "$mnt/img.qcow2" >"$WORKDIR/check.log" 2>&1
		rc=$?
	fi
	case $rc in
	0) ;;
	3) n_leaky=$((n_leaky + 1)) ;;
	*)
		diag "entry $p ($kind): qemu-img check exit $rc:"
		head -n 12 "$WORKDIR/check.log" | diag
		ret=1
		;;
	esac
	if [ "$kind" = final ] && [ "$rc" -ne 0 ]; then
		diag "entry $p (after detach): qemu-img check exit $rc, want 0"
		ret=1
	fi
	if [ -n "$k" ] && [ "$ret" -eq 0 ]; then
		if ! out=$(qemu-img compare -f raw -F "$FMT" \
			"$WORKDIR/ref-$k.raw" "$mnt/img.$FMT" 2>&1); then
			diag "entry $p (mark flush$k): image differs from the device at fsync $k: $out"
			ret=1
		elif [ "$k" -lt "$STEPS" ] &&
		     qemu-img compare -q -f raw -F "$FMT" \
			"$WORKDIR/ref-$((k + 1)).raw" "$mnt/img.$FMT" 2>/dev/null; then
			# Negative control: the next step changed something.
			diag "entry $p (mark flush$k): image equals step $((k + 1)) too: comparison proves nothing"
			ret=1
		fi
	fi
	lw_umount_copy || ret=1
	return "$ret"
}

replay()
{
	local n created step p kind k checked=0 bad=0 marks_ok=0 points

	lw_list || return
	n=$LW_N
	created=$(lw_mark_entry created)
	diag "image created at entry ${created:-?}"
	if [ -z "$created" ]; then
		fail "log-writes: the log has the 'created' mark"
		return
	fi

	# Replay points: each flushK mark (the state right when the mark was
	# logged), NPOINTS points spread between "created" and the end, and
	# the end (after the detach).
	step=$(( (n - created) / (NPOINTS + 1) ))
	[ "$step" -ge 1 ] || step=1
	points=$( {
		awk '$2 ~ /M/ && $5 ~ /^flush[0-9]+$/ { print $1, "mark", substr($5, 6) }' "$LW_ENTRIES"
		for p in $(seq $((created + step)) "$step" $((n - 1))); do
			echo "$p between"
		done
		echo "$n final"
	} | sort -s -n -k1,1 -u)

	while read -r p kind k; do
		lw_replay_to "$p" || return
		checked=$((checked + 1))
		if check_point "$p" "$kind" "$k"; then
			[ "$kind" = mark ] && marks_ok=$((marks_ok + 1))
		else
			bad=$((bad + 1))
		fi
	done <<<"$points"

	# The replay tool itself: replaying everything must give the data
	# device exactly.
	lw_full_replay_check
	diag "log-writes: $checked replay points checked ($n_leaky with leaked clusters), $marks_ok of $STEPS marks with the flushed data"
	check "log-writes: qemu-img check finds no corruption at any of $checked replay points" \
		[ "$bad" -eq 0 ]
	check "log-writes: at all $STEPS flush marks the image holds exactly the data flushed" \
		[ "$marks_ok" -eq "$STEPS" ]
	echo "$checked" >"$WORKDIR/points"
	lw_free
	rm -f "$WORKDIR"/ref*.raw
}

test_log_writes()
{
	if ! modprobe dm_log_writes 2>"$err"; then
		skip "log-writes" "dm-log-writes not available: $(head -n 1 "$err")"
		return
	fi
	n_leaky=0
	record || return
	replay
}

# ---------------------------------------------------------------------------
# Write errors under the image file (dm-flakey, error_writes).
FL=qcow2fl-$$

test_faults()
{
	local data=$WORKDIR/fl.data mnt=$WORKDIR/flmnt l sz img dev rc
	local pat=$WORKDIR/pattern got=$WORKDIR/got

	if ! modprobe dm_flakey 2>"$err"; then
		skip "faults" "dm-flakey not available: $(head -n 1 "$err")"
		return
	fi
	truncate -s 128M "$data"
	l=$(new_loop "$data") || { fail "faults: losetup"; return; }
	sz=$(dev_sectors "$l")
	if ! dm_create "$FL" "0 $sz linear $l 0" 2>"$err" ||
	   ! mkfs.ext4 -q -F "/dev/mapper/$FL" >"$err" 2>&1; then
		diag <"$err"
		fail "faults: dm device and mkfs.ext4"
		return
	fi
	mkdir -p "$mnt"
	do_mount -t ext4 "/dev/mapper/$FL" "$mnt" || { fail "faults: mount"; return; }
	img=$mnt/img.$FMT
	img_create "$img" 32M 65536
	dev=$(img_attach "$img" 2>"$err")
	if [ -z "$dev" ]; then
		diag <"$err"
		fail "faults: attach read-write"
		return
	fi
	head -c $((4 * MiB)) /dev/urandom >"$pat"
	check "faults: 4 MiB written and flushed before the fault" \
		dd if="$pat" of="$dev" bs=1M oflag=direct conv=fsync status=none

	if ! dm_swap "$FL" "0 $sz flakey $l 0 0 1 1 error_writes" 2>"$err"; then
		diag <"$err"
		fail "faults: switch to dm-flakey error_writes"
		return
	fi
	# Allocating writes while every write to the disk fails: the writer
	# must see an error (at the latest from the fsync), not hang.
	timeout 120 dd if=/dev/urandom of="$dev" bs=64k count=64 \
		seek=$((8 * 16)) oflag=direct conv=fsync status=none 2>"$err"
	rc=$?
	diag "faults: dd: rc $rc: $(head -n 1 "$err")"
	check "faults: the writer gets an error (dd rc $rc)" errored "$rc"
	(cd "$WORKDIR" && timeout 120 fio --name=fault --filename="$dev" \
		--ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
		--iodepth=8 --offset=16M --size=8M --io_size=2M --fsync=16 \
		--output="$WORKDIR/fio.log") >/dev/null 2>&1
	rc=$?
	check "faults: fio randwrite with fsync gets an error (rc $rc)" \
		errored "$rc"
	check "faults: data written before the fault still reads" \
		cmp -s -n $((4 * MiB)) "$dev" "$pat"

	if ! dm_swap "$FL" "0 $sz linear $l 0" 2>"$err"; then
		diag <"$err"
		fail "faults: restore the linear table"
		return
	fi
	if img_detach "$dev" 60 2>"$err"; then
		ok "faults: the device detaches after the errors"
	else
		diag <"$err"
		fail "faults: the device detaches after the errors"
		return
	fi
	do_umount "$mnt" 2>"$err" || { diag <"$err"; fail "faults: umount"; return; }
	e2fsck -fy "/dev/mapper/$FL" >"$err" 2>&1
	rc=$?
	diag "faults: e2fsck -fy rc $rc"
	do_mount -t ext4 "/dev/mapper/$FL" "$mnt" || { fail "faults: mount again"; return; }
	img_check "faults: after the disk is back" "$img" "0 3"
	if qemu-img convert -f "$FMT" -O raw "$img" "$got" 2>"$err" &&
	   cmp -s -n $((4 * MiB)) "$got" "$pat"; then
		ok "faults: the data flushed before the fault survived"
	else
		diag <"$err"
		fail "faults: the data flushed before the fault survived"
	fi
	rm -f "$got" "$pat"
	do_umount "$mnt"
	dm_remove "$FL"
	del_loop "$l"
	rm -f "$data"
}

# QCOW2_CRASH_PARTS picks parts by name (e.g. "faults").
for part in ${QCOW2_CRASH_PARTS:-log_writes faults}; do
	t0=$SECONDS
	"test_$part"
	diag "$part took $((SECONDS - t0)) s"
done

finish
