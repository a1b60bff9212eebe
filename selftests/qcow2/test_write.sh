#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The write path: images attached read-write and written through /dev/qcowN.
# After every case the detached image must pass "qemu-img check" with no
# errors and no leaks, and what was written must read back (through the
# device and through qemu-img).
#
#   fio        write + crc32c verify, then a verify_only pass after a
#              read-only re-attach, over a covering set of cluster sizes
#              (512, 4k, 64k, 2M), refcount widths (1, 16, 64), empty and
#              preallocated (metadata, full) images, v2 and v3, block sizes
#              512 B..1 MiB, queue depth 1 and 32, 1 and 4 jobs
#   snapshots  qemu-img snapshots over data the driver wrote; COW must leave
#              every snapshot as it was (qemu-img convert -l snapshot.name)
#   equiv      seeded random writes, write-zeroes and discards (qcow2_ops)
#              applied to the device and to a raw file: qemu-img compare
#              must find them identical
#   fs         ext4 and xfs: mkfs, copy a tree, fstrim, fsck, re-attach
#              read-only and hash the tree
#   discard    blkdiscard and blkdiscard -z: qemu-img map shows the ranges
#              unallocated or zero and the image file shrinks
#   growth     512-byte clusters written until the refcount table must grow
#   race       4 writers into the same unallocated clusters, plus readers
#   refusals   dirty or bitmap images refused read-write; a read-only
#              device refuses writes
#
# Env: QCOW2_OPS_SEED fixes the seed of the random sequences (printed);
# QCOW2_WRITE_PARTS runs only the named parts (default all, in the order
# at the end of this file).

# shellcheck disable=SC2317 # the test_* parts are called by name, below
set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd fio qemu-img qemu-io blkdiscard blockdev awk cmp stat
require_module
QCOW2_OPS=$SELFTEST_DIR/qcow2_ops
[ -x "$QCOW2_OPS" ] || skip_all "qcow2_ops not built (make -C selftests/qcow2)"

err=$WORKDIR/err
SEED=${QCOW2_OPS_SEED:-$(( $(date +%s) % 100000 ))}
diag "random sequences use seed $SEED (QCOW2_OPS_SEED=$SEED repeats them)"

MiB=$((1 << 20))

# rw_attach NAME IMG [OPTIONS...]: attach IMG read-write, set DEV.
rw_attach()
{
	local name=$1 img=$2

	shift 2
	DEV=$(attach_rw "$img" "$@" 2>"$err")
	if [ -z "$DEV" ]; then
		diag <"$err"
		fail "$name: attach read-write"
		return 1
	fi
}

# ro_attach NAME IMG [OPTIONS...]: attach IMG read-only, set DEV.
ro_attach()
{
	local name=$1 img=$2

	shift 2
	DEV=$(attach_ro "$img" "$@" 2>"$err")
	if [ -z "$DEV" ]; then
		diag <"$err"
		fail "$name: attach read-only"
		return 1
	fi
}

# detach_dev NAME DEV: detach and wait for the node to go (the image file,
# and QEMU's lock on it, are released with the device).
detach_dev()
{
	if ! detach "$2" 2>"$err"; then
		diag <"$err"
		fail "$1: detach $2"
		return 1
	fi
	if ! wait_gone "$2" 10; then
		fail "$1: $2 still present 10 s after detach"
		return 1
	fi
}

# detach_check NAME DEV IMG: detach, then qemu-img check must be clean.
detach_check()
{
	detach_dev "$1" "$2" || return
	check_image "$1" "$3"
}

# new_image NAME SIZE OPTIONS [DIR]: qemu-img create DIR/NAME.qcow2 (DIR
# defaults to $WORKDIR), set IMG.
new_image()
{
	IMG=${4:-$WORKDIR}/$1.qcow2
	rm -f "$IMG"
	if ! qemu-img create -q -f qcow2 -o "$3" "$IMG" "$2" 2>"$err"; then
		diag <"$err"
		fail "$1: qemu-img create -o $3"
		return 1
	fi
}

# run_fio NAME DEV FIO-ARGS...: libaio, O_DIRECT, crc32c verify; fio must
# succeed without an I/O or verify error.
run_fio()
{
	local name=$1 dev=$2 rc

	shift 2
	# (in WORKDIR: fio leaves its verify state files in the cwd)
	(cd "$WORKDIR" && fio --filename="$dev" --ioengine=libaio --direct=1 \
		--verify=crc32c --verify_fatal=1 --group_reporting "$@" \
		--output="$WORKDIR/fio.log" >"$WORKDIR/fio.out" 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ] ||
	   grep -Eq 'verify: bad|verify failed|err= *[1-9]' "$WORKDIR/fio.log"; then
		cat "$WORKDIR/fio.out" "$WORKDIR/fio.log" |
			grep -E 'verify|err=|fio:|error' | head -n 10 | diag
		fail "$name (fio rc $rc)"
		return 1
	fi
	diag "$name: $(grep -m2 -E '(write|read): IOPS=' "$WORKDIR/fio.log" |
		sed 's/^ *//; s/ (.*//' | tr '\n' ' ')"
	ok "$name"
}

# ---------------------------------------------------------------------------
# fio write + verify matrix.  fio_case NAME VSIZE CREATE-OPTIONS FIO-JOBS...:
# write+verify on a fresh image, detach, check, re-attach read-only and
# verify again (the data survived the detach, i.e. reached the file).
fio_case()
{
	local name=$1 vsize=$2 copts=$3

	shift 3
	new_image "$name" "$vsize" "$copts" || return
	rw_attach "$name" "$IMG" || return
	run_fio "$name: fio write+verify" "$DEV" "$@"
	detach_check "$name" "$DEV" "$IMG" || return
	ro_attach "$name" "$IMG" || return
	# (--verify_only first: it must be global, not the last job's)
	run_fio "$name: fio verify_only after read-only re-attach" "$DEV" \
		--verify_only "$@"
	detach_dev "$name" "$DEV"
	rm -f "$IMG"
}

test_fio_matrix()
{
	# Empty image, the default geometry: 4 jobs of 4k random writes at
	# depth 32 next to one 1M sequential job at depth 1.
	fio_case fio-64k 64M cluster_size=65536 \
		--name=rand4k --rw=randwrite --bs=4k --iodepth=32 \
		--numjobs=4 --size=8M --offset_increment=8M \
		--name=seq1m --rw=write --bs=1M --iodepth=1 --offset=32M \
		--size=32M
	# 512-byte clusters with 1-bit refcounts: every sector allocates.
	fio_case fio-512-rb1 8M cluster_size=512,refcount_bits=1 \
		--name=rand512 --rw=randwrite --bs=512 --iodepth=32 --size=2M \
		--name=seq64k --rw=write --bs=64k --iodepth=1 --offset=4M \
		--size=4M
	# 4k clusters, 64-bit refcounts, sequential 512 B at depth 32 and
	# random 64k at depth 1 in 4 jobs.
	fio_case fio-4k-rb64 32M cluster_size=4096,refcount_bits=64 \
		--name=seq512 --rw=write --bs=512 --iodepth=32 --size=1M \
		--name=rand64k --rw=randwrite --bs=64k --iodepth=1 \
		--numjobs=4 --offset=4M --size=4M --offset_increment=4M
	# 2M clusters: every first write covers a cluster only partly.
	fio_case fio-2m 64M cluster_size=2M,refcount_bits=64 \
		--name=mixed --rw=randwrite --bsrange=512-1M --iodepth=32 \
		--numjobs=4 --size=16M --offset_increment=16M
	# Preallocated metadata: writes land in allocated, COPIED clusters.
	fio_case fio-prealloc-meta 32M cluster_size=65536,preallocation=metadata \
		--name=rand4k --rw=randwrite --bs=4k --iodepth=32 --size=16M \
		--name=seq64k --rw=write --bs=64k --iodepth=1 --offset=16M \
		--size=16M
	# Fully preallocated.
	fio_case fio-prealloc-full 32M cluster_size=65536,preallocation=full \
		--name=rand4k --rw=randwrite --bs=4k --iodepth=1 --numjobs=4 \
		--size=4M --offset_increment=8M \
		--name=seq512 --rw=write --bs=512 --iodepth=32 --offset=4M \
		--size=1M
	# A version 2 image (no zero flag, no refcount_order field).
	fio_case fio-v2 32M compat=0.10,cluster_size=65536 \
		--name=rand64k --rw=randwrite --bsrange=4k-64k --iodepth=32 \
		--size=16M
}

# ---------------------------------------------------------------------------
# qemu-img snapshots over data the driver wrote.
test_snapshots()
{
	local name=snap s1=$WORKDIR/snap-s1.raw s2=$WORKDIR/snap-s2.raw
	local cur=$WORKDIR/snap-cur.raw got=$WORKDIR/snap-got.raw s

	new_image "$name" 32M cluster_size=65536 || return
	rw_attach "$name" "$IMG" || return
	run_fio "$name: fill with fio (write+verify)" "$DEV" \
		--name=fill --rw=write --bs=256k --iodepth=4 --size=32M
	detach_check "$name: before snapshots" "$DEV" "$IMG" || return

	if ! qemu-img snapshot -c s1 "$IMG" 2>"$err" ||
	   ! qemu-img convert -O raw "$IMG" "$s1" 2>>"$err"; then
		diag <"$err"
		fail "$name: qemu-img snapshot -c s1"
		return
	fi
	ok "$name: qemu-img snapshot -c s1 over the driver's data"

	# Random writes, zeroes and discards over clusters s1 shares: COW,
	# and discards that drop only the active layer's reference.
	cp "$s1" "$cur"
	rw_attach "$name" "$IMG" || return
	check "$name: COW writes/zeroes/discards over s1 (qcow2_ops seed $SEED)" \
		"$QCOW2_OPS" -s "$SEED" -n 200 -c 65536 -m $((256 << 10)) -V \
		"$DEV" "$cur"
	detach_check "$name: after COW" "$DEV" "$IMG" || return

	qemu-img snapshot -c s2 "$IMG" 2>"$err" || diag <"$err"
	cp "$cur" "$s2"
	rw_attach "$name" "$IMG" || return
	run_fio "$name: fio 4k randwrite over s1+s2 (write+verify)" "$DEV" \
		--name=cow4k --rw=randwrite --bs=4k --iodepth=32 --size=32M \
		--io_size=8M
	detach_check "$name: after second COW round" "$DEV" "$IMG" || return

	for s in s1 s2; do
		rm -f "$got"
		if qemu-img convert -O raw -l "snapshot.name=$s" "$IMG" "$got" \
			2>"$err" && cmp -s "$got" "$WORKDIR/snap-$s.raw"; then
			ok "$name: snapshot $s reads as when it was taken"
		else
			diag <"$err"
			cmp "$got" "$WORKDIR/snap-$s.raw" 2>&1 | head -n 2 | diag
			fail "$name: snapshot $s reads as when it was taken"
		fi
	done
	# Negative control: the active layer differs from s2 now.
	rm -f "$got"
	qemu-img convert -O raw "$IMG" "$got" 2>/dev/null
	check "$name: negative control: the active layer differs from s2" \
		fails cmp -s "$got" "$s2"

	# The refcounts the driver wrote must survive QEMU dropping s1.
	if qemu-img snapshot -d s1 "$IMG" 2>"$err"; then
		check_image "$name: after qemu-img snapshot -d s1" "$IMG"
	else
		diag <"$err"
		fail "$name: qemu-img snapshot -d s1"
	fi
	rm -f "$IMG" "$s1" "$s2" "$cur" "$got"
}

# ---------------------------------------------------------------------------
# Equivalence with a raw file.  equiv_case NAME VSIZE CREATE-OPTIONS CLUSTER
# COUNT MAXLEN [SOURCE]: SOURCE (raw) is converted into the image first,
# with the create options (e.g. -c for compressed clusters).
equiv_case()
{
	local name=$1 vsize=$2 copts=$3 cs=$4 count=$5 maxlen=$6 src=${7:-}
	local raw=$WORKDIR/$1.raw out

	IMG=$WORKDIR/$name.qcow2
	rm -f "$IMG" "$raw"
	if [ -n "$src" ]; then
		# shellcheck disable=SC2086 # copts is a word list here
		if ! qemu-img convert -f raw -O qcow2 $copts "$src" "$IMG" \
			2>"$err"; then
			diag <"$err"
			fail "$name: qemu-img convert $copts"
			return
		fi
		cp "$src" "$raw"
	else
		new_image "$name" "$vsize" "$copts" || return
		truncate -s "$vsize" "$raw"
	fi
	rw_attach "$name" "$IMG" || return
	check "$name: $count random writes/zeroes/discards read back (seed $SEED)" \
		"$QCOW2_OPS" -s "$SEED" -n "$count" -c "$cs" -m "$maxlen" -f -V \
		"$DEV" "$raw"
	detach_check "$name" "$DEV" "$IMG" || return
	if out=$(qemu-img compare -f raw -F qcow2 "$raw" "$IMG" 2>&1); then
		ok "$name: qemu-img compare: raw file and image identical"
	else
		printf '%s\n' "$out" | head -n 3 | diag
		fail "$name: qemu-img compare: raw file and image identical"
	fi
	if [ "$name" = equiv-64k ]; then
		# Negative control: one flipped byte must be found.
		printf '\x5a' | dd of="$raw" bs=1 seek=$((5 * MiB + 123)) \
			conv=notrunc status=none
		printf '\xa5' | dd of="$raw" bs=1 seek=$((5 * MiB + 124)) \
			conv=notrunc status=none
		check "$name: negative control: qemu-img compare sees a changed byte" \
			fails qemu-img compare -q -f raw -F qcow2 "$raw" "$IMG"
	fi
	rm -f "$IMG" "$raw"
}

test_equivalence()
{
	local src=$WORKDIR/equiv-src.raw

	equiv_case equiv-64k 64M cluster_size=65536 65536 300 "$MiB"
	equiv_case equiv-512-v2 8M compat=0.10,cluster_size=512 512 200 \
		$((64 << 10))
	equiv_case equiv-4k-rb1 32M cluster_size=4096,refcount_bits=1 4096 \
		200 $((256 << 10))
	equiv_case equiv-2m-rb64 64M cluster_size=2M,refcount_bits=64 \
		$((2 * MiB)) 100 "$MiB"
	# Over compressed clusters (zlib and zstd): writes must COW them.
	head -c $((16 * MiB)) /dev/urandom >"$src"
	# Half of it compressible, so that clusters really are compressed.
	yes 'qcow2 compressed cluster line' | head -c $((8 * MiB)) |
		dd of="$src" bs=1M seek=4 conv=notrunc status=none
	equiv_case equiv-zlib 16M "-c -o cluster_size=65536" 65536 200 \
		$((256 << 10)) "$src"
	equiv_case equiv-zstd-4k 16M \
		"-c -o cluster_size=4096,compression_type=zstd" 4096 200 \
		$((128 << 10)) "$src"
	rm -f "$src"
}

# ---------------------------------------------------------------------------
# File systems.
make_tree()
{
	local t=$1 i

	mkdir -p "$t/sub/deeper" "$t/many"
	head -c $((3 * MiB)) /dev/urandom >"$t/random.bin"
	yes 'qcow2 write test line' | head -c $((2 * MiB)) >"$t/text.txt"
	: >"$t/empty"
	for i in $(seq 1 30); do
		head -c $((i * 4099)) /dev/urandom >"$t/sub/file$i"
	done
	for i in $(seq 1 200); do
		echo "small file $i" >"$t/many/f$i"
	done
	head -c $((4 * MiB + 777)) /dev/urandom >"$t/sub/deeper/big.bin"
	ln -s ../text.txt "$t/sub/link"
	(cd "$t" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
		>"$WORKDIR/tree.sums"
}

# alloc_bytes FILE: bytes allocated to FILE.
alloc_bytes()
{
	echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") ))
}

# fs_case FS VSIZE: mkfs on the device, copy the tree, delete a big file,
# fstrim (the image file must shrink), umount, fsck, detach, check, then
# read-only: the tree hashes as the source.
fs_case()
{
	local fs=$1 vsize=$2 name=fs-$1 mnt=$WORKDIR/mnt a1 a2 a3 trimmed
	local mkfs fsck ro_opts

	case $fs in
	ext4)
		mkfs=(mkfs.ext4 -q -F)
		fsck=(e2fsck -fn)
		ro_opts=ro,noload
		;;
	xfs)
		mkfs=(mkfs.xfs -q -f)
		fsck=(xfs_repair -n)
		ro_opts=ro,norecovery
		;;
	esac
	if ! command -v "${mkfs[0]}" >/dev/null ||
	   ! command -v "${fsck[0]}" >/dev/null; then
		skip "$name" "${mkfs[0]} or ${fsck[0]} not installed"
		return
	fi
	modprobe "$fs" 2>/dev/null
	if ! grep -qw "$fs" /proc/filesystems; then
		skip "$name" "$fs not available in this kernel"
		return
	fi
	mkdir -p "$mnt"
	new_image "$name" "$vsize" cluster_size=65536 || return
	rw_attach "$name" "$IMG" || return
	if ! "${mkfs[@]}" "$DEV" >"$err" 2>&1; then
		diag <"$err"
		fail "$name: ${mkfs[*]}"
		detach_dev "$name" "$DEV"
		return
	fi
	ok "$name: ${mkfs[*]}"
	if ! do_mount -t "$fs" "$DEV" "$mnt" 2>"$err"; then
		diag <"$err"
		fail "$name: mount"
		detach_dev "$name" "$DEV"
		return
	fi
	check "$name: copy the tree" cp -a "$WORKDIR/tree/." "$mnt/"
	head -c $((16 * MiB)) /dev/urandom >"$mnt/scratch.bin"
	sync -f "$mnt"
	a1=$(alloc_bytes "$IMG")
	rm -f "$mnt/scratch.bin"
	sync -f "$mnt"
	if trimmed=$(fstrim -v "$mnt" 2>"$err"); then
		diag "$name: $trimmed"
		ok "$name: fstrim"
	else
		diag <"$err"
		fail "$name: fstrim"
	fi
	a2=$(alloc_bytes "$IMG")
	if ! do_umount "$mnt" 2>"$err"; then
		diag <"$err"
		fail "$name: umount"
		return
	fi
	if "${fsck[@]}" "$DEV" >"$err" 2>&1; then
		ok "$name: ${fsck[*]} clean"
	else
		tail -n 8 "$err" | diag
		fail "$name: ${fsck[*]} clean"
	fi
	detach_check "$name" "$DEV" "$IMG" || return
	# Freed clusters may be punched out of the file only once the L2
	# change is on disk: look after the detach.
	a3=$(alloc_bytes "$IMG")
	diag "$name: image file allocation $a1, after rm + fstrim $a2, after detach $a3 bytes"
	check "$name: fstrim of a deleted 16 MiB file shrinks the image file by >= 12 MiB" \
		[ $((a1 - a3)) -ge $((12 * MiB)) ]

	ro_attach "$name" "$IMG" || return
	if do_mount -t "$fs" -o "$ro_opts" "$DEV" "$mnt" 2>"$err"; then
		(cd "$mnt" && find . -type f -print0 | sort -z |
			xargs -0 sha256sum) >"$WORKDIR/got.sums" 2>"$err"
		if cmp -s "$WORKDIR/tree.sums" "$WORKDIR/got.sums"; then
			ok "$name: after re-attach read-only, all $(wc -l <"$WORKDIR/tree.sums") files hash as written"
		else
			diff "$WORKDIR/tree.sums" "$WORKDIR/got.sums" |
				head -n 10 | diag
			fail "$name: after re-attach read-only, the files hash as written"
		fi
		do_umount "$mnt"
	else
		diag <"$err"
		fail "$name: mount -o $ro_opts after re-attach"
	fi
	detach_dev "$name" "$DEV"
	rm -f "$IMG"
}

test_filesystems()
{
	make_tree "$WORKDIR/tree"
	fs_case ext4 128M
	# mkfs.xfs wants at least 300 MB; the image stays sparse.
	fs_case xfs 320M
	rm -rf "$WORKDIR/tree"
}

# ---------------------------------------------------------------------------
# blkdiscard.  map_clear IMG START LEN: every extent of "qemu-img map" that
# overlaps [START, START+LEN) is unallocated or reads as zeros.
map_clear()
{
	qemu-img map --output=json "$1" 2>/dev/null | awk -v s="$2" -v e=$(($2 + $3)) '
	function field(name,   m) {
		if (!match($0, "\"" name "\": *[^,}]*")) return ""
		m = substr($0, RSTART, RLENGTH)
		sub(/^[^:]*: */, "", m)
		return m
	}
	/"start"/ {
		st = field("start") + 0; ln = field("length") + 0
		if (st + ln <= s || st >= e) next
		seen = 1
		if (field("zero") != "true" && field("data") != "false") bad = 1
	}
	END { exit !(seen && !bad) }'
}

test_discard()
{
	local name=discard raw=$WORKDIR/discard.raw got=$WORKDIR/discard-got.raw
	local a1 a2

	new_image "$name" 32M cluster_size=65536 || return
	head -c $((24 * MiB)) /dev/urandom >"$raw"
	truncate -s 32M "$raw"
	rw_attach "$name" "$IMG" || return
	check "$name: write 24 MiB" dd if="$raw" of="$DEV" bs=1M count=24 \
		oflag=direct conv=fsync status=none
	detach_check "$name: after writing" "$DEV" "$IMG" || return
	a1=$(alloc_bytes "$IMG")

	rw_attach "$name" "$IMG" || return
	check "$name: blkdiscard 0+8M" blkdiscard -o 0 -l $((8 * MiB)) "$DEV"
	check "$name: blkdiscard -z 8M+4M" blkdiscard -z -o $((8 * MiB)) \
		-l $((4 * MiB)) "$DEV"
	# Within one cluster: must not drop the rest of that cluster.
	check "$name: blkdiscard of 60 KiB inside a cluster" \
		blkdiscard -o $((16 * MiB + 4096)) -l $((60 << 10)) "$DEV"
	check "$name: discarded range reads zeros through the device" \
		cmp -s -n $((12 * MiB)) "$DEV" /dev/zero
	detach_check "$name: after blkdiscard" "$DEV" "$IMG" || return
	a2=$(alloc_bytes "$IMG")
	diag "$name: image file allocation $a1 -> $a2 bytes"
	check "$name: discarding 8 MiB of data shrinks the image file by >= 7 MiB" \
		[ $((a1 - a2)) -ge $((7 * MiB)) ]
	check "$name: qemu-img map: 0+8M unallocated or zero after blkdiscard" \
		map_clear "$IMG" 0 $((8 * MiB))
	check "$name: qemu-img map: 8M+4M unallocated or zero after blkdiscard -z" \
		map_clear "$IMG" $((8 * MiB)) $((4 * MiB))
	check "$name: negative control: qemu-img map shows 20M+4M as data" \
		fails map_clear "$IMG" $((20 * MiB)) $((4 * MiB))
	dd if=/dev/zero of="$raw" bs=1M count=12 conv=notrunc status=none
	dd if=/dev/zero of="$raw" bs=4k seek=$((16 * 256 + 1)) count=15 \
		conv=notrunc status=none
	if qemu-img convert -O raw "$IMG" "$got" 2>"$err" &&
	   cmp "$got" "$raw" >"$err" 2>&1; then
		ok "$name: qemu-img reads zeros where discarded, the data elsewhere"
	else
		diag <"$err"
		fail "$name: qemu-img reads zeros where discarded, the data elsewhere"
	fi
	rm -f "$IMG" "$got"

	# A v2 image has no zero flag: write zeroes must still read zeros.
	new_image discard-v2 16M compat=0.10,cluster_size=65536 || return
	rw_attach discard-v2 "$IMG" || return
	dd if="$raw" of="$DEV" bs=1M count=16 oflag=direct status=none
	check "discard-v2: blkdiscard -z 1M+3M" blkdiscard -z -o "$MiB" \
		-l $((3 * MiB)) "$DEV"
	check "discard-v2: blkdiscard 8M+4M" blkdiscard -o $((8 * MiB)) \
		-l $((4 * MiB)) "$DEV"
	detach_check discard-v2 "$DEV" "$IMG" || return
	head -c $((16 * MiB)) "$raw" >"$got"
	dd if=/dev/zero of="$got" bs=1M seek=1 count=3 conv=notrunc status=none
	dd if=/dev/zero of="$got" bs=1M seek=8 count=4 conv=notrunc status=none
	rm -f "$raw"
	if qemu-img convert -O raw "$IMG" "$raw" 2>"$err" &&
	   cmp "$raw" "$got" >"$err" 2>&1; then
		ok "discard-v2: zeros where zeroed or discarded, the data elsewhere"
	else
		diag <"$err"
		fail "discard-v2: zeros where zeroed or discarded, the data elsewhere"
	fi
	rm -f "$IMG" "$raw" "$got"
}

# ---------------------------------------------------------------------------
# Refcount table growth: 512-byte clusters, 16-bit refcounts.  A refcount
# block covers 256 clusters (128 KiB), the one reftable cluster qemu-img
# creates holds 64 of them (8 MiB of clusters); filling 16 MiB needs ~33000
# clusters, ~130 refcount blocks, 3 reftable clusters.
test_growth()
{
	local name=growth rt0 rt1

	new_image "$name" 16M cluster_size=512 || return
	rt0=$(peek_be32 "$IMG" 56)
	rw_attach "$name" "$IMG" || return
	run_fio "$name: fill 16 MiB of 512-byte clusters (write+verify)" "$DEV" \
		--name=fill --rw=write --bs=64k --iodepth=8 --size=16M
	detach_check "$name" "$DEV" "$IMG" || return
	rt1=$(peek_be32 "$IMG" 56)
	qemu-img info "$IMG" 2>&1 | grep -E 'disk size|cluster_size|refcount bits|corrupt' | diag
	check "$name: refcount table grew from $rt0 to $rt1 clusters (>= 3)" \
		[ "${rt1:-0}" -ge 3 ]
	check_match "$name: qemu-img info: not corrupt" 'corrupt: false' \
		"$(qemu-img info "$IMG" 2>&1)"
	ro_attach "$name" "$IMG" || return
	run_fio "$name: verify_only after read-only re-attach" "$DEV" \
		--verify_only --name=fill --rw=write --bs=64k --iodepth=8 \
		--size=16M
	detach_dev "$name" "$DEV"
	rm -f "$IMG"
}

# ---------------------------------------------------------------------------
# Racing writers into the same unallocated clusters.
test_race()
{
	local name=race j jobs=() a=$WORKDIR/race-dev.raw b=$WORKDIR/race-img.raw

	new_image "$name" 32M cluster_size=65536 || return
	rw_attach "$name" "$IMG" || return
	# 4 jobs write interleaved 4k blocks (job j: blocks j, j+4, ...) of
	# the same 8 MiB: each 64k cluster is first written by all four at
	# once.  Every block has one writer, so all of it verifies.
	for j in 0 1 2 3; do
		jobs+=(--name="w$j" --rw=write:12k --bs=4k --iodepth=8
		       --offset=$((j * 4096)) --size=$((8 * MiB - j * 4096))
		       --io_size=2M)
	done
	run_fio "$name: 4 interleaved writers into the same clusters (verify)" \
		"$DEV" "${jobs[@]}"
	# Overlapping random writes and reads over fresh clusters, no verify.
	if (cd "$WORKDIR" && fio --filename="$DEV" --ioengine=libaio \
		--direct=1 --offset=8M --size=16M --bs=4k --iodepth=16 \
		--norandommap --group_reporting --name=w --rw=randwrite \
		--numjobs=4 --io_size=2M --name=r --rw=randread --io_size=4M \
		--output="$WORKDIR/fio.log") >/dev/null 2>&1 &&
	   ! grep -Eq 'err= *[1-9]' "$WORKDIR/fio.log"; then
		ok "$name: 4 overlapping random writers + 1 reader, no errors"
	else
		grep -E 'err=|fio:' "$WORKDIR/fio.log" | head -n 5 | diag
		fail "$name: 4 overlapping random writers + 1 reader, no errors"
	fi
	# After a flush the file must hold what the device shows.
	sync "$DEV"
	dd if="$DEV" of="$a" bs=1M iflag=direct status=none
	if qemu-img convert -U -O raw "$IMG" "$b" 2>"$err" &&
	   cmp "$a" "$b" >"$err" 2>&1; then
		ok "$name: after a flush, qemu-img reads what the device reads"
	else
		diag <"$err"
		fail "$name: after a flush, qemu-img reads what the device reads"
	fi
	rm -f "$a" "$b"
	run_fio "$name: final sequential write+verify pass" "$DEV" \
		--name=final --rw=write --bs=64k --iodepth=16 --offset=8M \
		--size=16M
	detach_check "$name" "$DEV" "$IMG"
	rm -f "$IMG"
}

# ---------------------------------------------------------------------------
# Refusals.
test_refusals()
{
	local mark rc out

	# The dirty bit (incompatible feature bit 0, byte 79 of the header).
	new_image dirty 16M cluster_size=65536 || return
	poke_hex "$IMG" 79 01
	mark=$(kmsg_mark)
	out=$("$QCOWCTL" attach "$IMG" 2>"$err")
	rc=$?
	[ -n "$out" ] && echo "$out" >>"$ATTACHED_LIST"
	check_refused "dirty: read-write attach refused" "$rc" "$err"
	if check_dmesg_since "$mark" 'qemu-img check -r all'; then
		ok "dirty: kernel log names 'qemu-img check -r all'"
	else
		dmesg_since "$mark" | tail -n 5 | diag
		fail "dirty: kernel log names 'qemu-img check -r all'"
	fi
	if ro_attach dirty "$IMG"; then
		ok "dirty: read-only attach works"
		detach_dev dirty "$DEV"
	fi
	# Positive control: once repaired, it attaches read-write.
	qemu-img check -q -r all "$IMG" >/dev/null 2>&1
	if rw_attach dirty "$IMG"; then
		ok "dirty: after qemu-img check -r all, read-write attach works"
		detach_check dirty "$DEV" "$IMG"
	fi
	rm -f "$IMG"

	# A persistent bitmap: the driver does not maintain bitmaps.
	new_image bitmap 16M cluster_size=65536 || return
	if qemu-img bitmap --add "$IMG" b0 2>"$err"; then
		mark=$(kmsg_mark)
		out=$("$QCOWCTL" attach "$IMG" 2>"$err")
		rc=$?
		[ -n "$out" ] && echo "$out" >>"$ATTACHED_LIST"
		check_refused "bitmap: read-write attach refused" "$rc" "$err"
		if grep -qi bitmap "$err" ||
		   check_dmesg_since "$mark" 'bitmap'; then
			ok "bitmap: the refusal says why (bitmap)"
		else
			dmesg_since "$mark" | tail -n 5 | diag
			fail "bitmap: the refusal says why (bitmap)"
		fi
		if ro_attach bitmap "$IMG"; then
			ok "bitmap: read-only attach works"
			detach_dev bitmap "$DEV"
		fi
		check_image bitmap "$IMG"
	else
		diag <"$err"
		skip "bitmap: refused read-write" "qemu-img bitmap --add failed"
	fi
	rm -f "$IMG"

	# Writes to a read-only device fail with EPERM or EROFS.
	new_image ro 16M cluster_size=65536 || return
	ro_attach ro "$IMG" || return
	if dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct \
		status=none 2>"$err"; then
		fail "ro: a write to a read-only device fails"
	elif grep -Eq 'Operation not permitted|Read-only file system' "$err"; then
		ok "ro: a write to a read-only device fails ($(sed 's/.*: //' "$err" | head -n 1))"
	else
		diag <"$err"
		fail "ro: a write to a read-only device fails with EPERM or EROFS"
	fi
	if blkdiscard -o 0 -l 65536 "$DEV" 2>"$err"; then
		fail "ro: blkdiscard on a read-only device fails"
	else
		ok "ro: blkdiscard on a read-only device fails"
	fi
	detach_dev ro "$DEV"
	check_image "ro: untouched" "$IMG"
	rm -f "$IMG"
}

# ---------------------------------------------------------------------------
# The ways a request runs (docs/design-write-path.md, "Where requests
# run"), each with allocating writes, writes to allocated clusters and
# reads through a cold page cache:
#   ext4, buffered: the fast path tries IOCB_NOWAIT; a miss goes to a worker;
#   ext4, --direct-io: the fast path queues O_DIRECT I/O;
#   tmpfs: the fast path copies pages;
#   one fio job: the fast path's I/O runs on the issue worker;
#   inline_io=0: every request goes to a worker.
#
# submit_case NAME DIR JOBS [ATTACH-OPTIONS...]: 4k random rewrites and
# reads of an image in DIR from JOBS (1 or 2) fio jobs at depth 32.  One
# job keeping requests in flight is what makes ->queue_rq hand them to the
# device's issue worker: then it must have done so.
submit_case()
{
	local name=$1 njobs=$3 img handed split=()

	new_image "$name" 64M cluster_size=65536 "$2" || return
	img=$IMG
	shift 3
	split=(--numjobs="$njobs" --size=$((64 / njobs))M
	       --offset_increment=$((64 / njobs))M)
	rw_attach "$name" "$img" "$@" || return
	run_fio "$name: fill, then 4k random rewrites from $njobs job(s) (verify)" \
		"$DEV" --name=fill --rw=write --bs=1M --iodepth=4 --size=64M \
		--name=rand --stonewall --rw=randwrite --bs=4k --iodepth=32 \
		"${split[@]}"
	if [ "$njobs" -eq 1 ]; then
		handed=$(cat "/sys/block/${DEV#/dev/}/qcow2/handed_off")
		check "$name: the issue worker served requests ($handed)" \
			[ "${handed:-0}" -gt 0 ]
	fi
	detach_check "$name" "$DEV" "$img" || return
	# Cold page cache: buffered reads miss and must still be right.
	sync
	echo 3 >/proc/sys/vm/drop_caches
	ro_attach "$name" "$img" "$@" || return
	run_fio "$name: verify_only from a cold page cache" "$DEV" \
		--verify_only --name=rand --rw=randwrite --bs=4k --iodepth=32 \
		"${split[@]}"
	detach_dev "$name" "$DEV"
	rm -f "$img"
}

test_submit_modes()
{
	local fs=$WORKDIR/ext4.img mnt=$WORKDIR/ext4
	local param=/sys/module/qcow2/parameters/inline_io

	truncate -s 256M "$fs"
	mkdir -p "$mnt"
	if ! mkfs.ext4 -q -F "$fs" 2>"$err" ||
	   ! do_mount -o loop "$fs" "$mnt" 2>>"$err"; then
		diag <"$err"
		fail "submit: ext4 for the image file"
		return 1
	fi
	submit_case "submit-ext4-buffered" "$mnt" 2
	submit_case "submit-ext4-buffered-1job" "$mnt" 1
	submit_case "submit-ext4-direct" "$mnt" 2 --direct-io
	submit_case "submit-ext4-direct-1job" "$mnt" 1 --direct-io
	do_umount "$mnt"
	rm -f "$fs"

	if [ ! -w "$param" ]; then
		fail "submit: $param is writable"
		return 1
	fi
	submit_case "submit-tmpfs-1job" "$WORKDIR" 1
	echo 0 >"$param"
	submit_case "submit-workers-only" "$WORKDIR" 2
	echo 1 >"$param"
}

# QCOW2_WRITE_PARTS picks parts by name (e.g. "race discard").
for part in ${QCOW2_WRITE_PARTS:-refusals fio_matrix snapshots equivalence \
	discard growth race filesystems submit_modes}; do
	t0=$SECONDS
	"test_$part"
	diag "$part took $((SECONDS - t0)) s"
done

finish
