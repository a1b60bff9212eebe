#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What protects an image while it is written: the overlap check (a crafted
# L2 entry aimed at the driver's own metadata), the corrupt bit set on an
# inconsistency found at run time, ENOSPC from the image's file system,
# and the header rules of a read-write attach (lazy refcounts, unknown
# autoclear bits).

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img qemu-io mkfs.ext4 losetup
require_module

CS=65536

# fresh IMG: a 64 MiB image whose first cluster is written, so that its
# layout is QEMU's: header, reftable, refblock, L1, then L2 and data.
fresh()
{
	rm -f "$1"
	qemu-img create -q -f qcow2 -o cluster_size=$CS "$1" 64M &&
		qemu-io -c "write -P 0x5a 0 $CS" "$1" >/dev/null
}

# l2_of IMG: host offset of the L2 table of guest cluster 0.
l2_of()
{
	local l1

	l1=$(peek_be64 "$1" 40)
	echo $(($(peek_be64 "$1" "$l1") & 0x00fffffffffffe00))
}

# corrupt_bit IMG: 0 or 1, the corrupt bit of the header.
corrupt_bit()
{
	echo $((($(peek_be64 "$1" 72) >> 1) & 1))
}

# try_write DEV OFFSET: a 4 KiB direct write; prints dd's exit status.
try_write()
{
	dd if=/dev/urandom of="$1" bs=4096 seek=$(($2 / 4096)) count=1 \
		oflag=direct conv=notrunc status=none 2>/dev/null
	echo $?
}

# --- overlap check: an L2 entry aimed at metadata -----------------------------
# overlap_case NAME WHAT TARGET-OFFSET: point guest cluster 0's L2 entry,
# with COPIED set, at TARGET (metadata of kind WHAT); a write there must
# fail, leave TARGET unchanged and mark the image corrupt.
overlap_case()
{
	local name=$1 what=$2 target=$3 img=$WORKDIR/overlap.qcow2 dev mark
	local before after l2

	if ! fresh "$img"; then
		fail "$name: make the image"
		return
	fi
	l2=$(l2_of "$img")
	poke_be64 "$img" "$l2" $((0x8000000000000000 | target))
	before=$(peek_hex "$img" "$target" 512 | sha256sum)
	mark=$(kmsg_mark)
	dev=$(attach_rw "$img" 2>"$WORKDIR/err")
	if [ -z "$dev" ]; then
		diag <"$WORKDIR/err"
		fail "$name: attach"
		return
	fi
	check "$name: the write fails" [ "$(try_write "$dev" 0)" != 0 ]
	check "$name: the kernel names the metadata" check_dmesg_since "$mark" \
		"Marking image as corrupt: Preventing invalid write on metadata \\(overlaps with $what\\)"
	check "$name: later writes elsewhere fail too" \
		[ "$(try_write "$dev" $((8 << 20)))" != 0 ]
	check "$name: reads still work" \
		dd if="$dev" of=/dev/null bs=64k count=16 skip=16 status=none
	check "$name: info reports corrupt" \
		grep -Eq '^corrupt: +yes' <("$QCOWCTL" info "$dev")
	detach "$dev"
	after=$(peek_hex "$img" "$target" 512 | sha256sum)
	check "$name: the $what is unchanged" [ "$before" = "$after" ]
	check "$name: the corrupt bit is set" [ "$(corrupt_bit "$img")" = 1 ]
	check_match "$name: qemu-img info says corrupt" '"corrupt": true' \
		"$(qemu-img info --output=json "$img")"
	if dev=$(attach_rw "$img" 2>/dev/null); then
		fail "$name: read-write attach refused afterwards"
		detach "$dev"
	else
		ok "$name: read-write attach refused afterwards"
	fi
}

img=$WORKDIR/probe.qcow2
if fresh "$img"; then
	l1=$(peek_be64 "$img" 40)
	rt=$(peek_be64 "$img" 48)
	rb=$(($(peek_be64 "$img" "$rt") & ~511))
	l2=$(l2_of "$img")
	diag "layout: L1 $l1, reftable $rt, refblock $rb, L2 $l2"
	overlap_case "L2 entry on the L1 table" "active L1 table" "$l1"
	overlap_case "L2 entry on the refcount table" "refcount table" "$rt"
	overlap_case "L2 entry on a refcount block" "refcount block" "$rb"
	overlap_case "L2 entry on its own L2 table" "active L2 table" "$l2"
else
	fail "make the probe image"
fi

# --- tables that overlap each other: refused read-write at attach ------------
# conflict_case NAME POKE-OFFSET VALUE ERE: poke VALUE, then a read-write
# attach must fail with a kernel message matching ERE; read-only works.
conflict_case()
{
	local name=$1 off=$2 val=$3 ere=$4 img=$WORKDIR/conflict.qcow2 dev mark

	fresh "$img" || { fail "$name: make the image"; return; }
	poke_be64 "$img" "$off" "$val"
	mark=$(kmsg_mark)
	if dev=$(attach_rw "$img" 2>"$WORKDIR/err"); then
		fail "$name: read-write attach refused"
		detach "$dev"
	else
		check_refused "$name: read-write attach refused" 1 "$WORKDIR/err"
		check "$name: the kernel says which tables overlap" \
			check_dmesg_since "$mark" "$ere"
	fi
	if dev=$(attach_ro "$img" 2>/dev/null); then
		ok "$name: read-only attach works"
		detach "$dev"
	else
		fail "$name: read-only attach works"
	fi
}

if [ -n "${l1:-}" ]; then
	conflict_case "refcount block on the L1 table" "$rt" "$l1" \
		'refcount block overlaps the active L1 table'
	conflict_case "L2 table on the refcount table" "$l1" \
		$((0x8000000000000000 | rt)) 'active L2 table overlaps the refcount table'
fi

# --- corruption found at run time ---------------------------------------------
img=$WORKDIR/beyond.qcow2
if fresh "$img"; then
	size=$(stat -c %s "$img")
	l2=$(l2_of "$img")
	# Guest cluster 1 maps past the end of the file.
	poke_be64 "$img" $((l2 + 8)) $((0x8000000000000000 | (size + 16 * CS) / CS * CS))
	mark=$(kmsg_mark)
	if dev=$(attach_rw "$img" 2>"$WORKDIR/err"); then
		check "cluster past the end: the read fails" \
			fails dd if="$dev" of=/dev/null bs=4096 skip=16 count=1 \
			iflag=direct status=none
		check "cluster past the end: the image is marked corrupt" \
			check_dmesg_since "$mark" 'Marking image as corrupt: data cluster is outside the image file'
		check "cluster past the end: writes fail" \
			[ "$(try_write "$dev" $((4 << 20)))" != 0 ]
		# 0x5a is "Z"
		check "cluster past the end: cluster 0 still reads" \
			cmp -s <(dd if="$dev" bs=$CS count=1 status=none) \
			<(head -c $CS /dev/zero | tr '\0' 'Z')
		detach "$dev"
		check "cluster past the end: corrupt bit set" \
			[ "$(corrupt_bit "$img")" = 1 ]
	else
		diag <"$WORKDIR/err"
		fail "cluster past the end: attach"
	fi
else
	fail "make the past-the-end image"
fi

# --- header rules of a read-write attach --------------------------------------
img=$WORKDIR/lazy.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$img" 64M
if dev=$(attach_rw "$img" 2>"$WORKDIR/err"); then
	dd if=/dev/urandom of="$dev" bs=1M count=8 oflag=direct status=none
	check "lazy refcounts: the dirty bit stays clear while attached" \
		[ $(($(peek_be64 "$img" 72) & 1)) = 0 ]
	detach "$dev"
	check_match "lazy refcounts: qemu-img info shows no dirty flag" \
		'"dirty-flag": false' "$(qemu-img info --output=json "$img")"
	check_image "lazy refcounts" "$img"
else
	diag <"$WORKDIR/err"
	fail "lazy refcounts: attach"
fi

img=$WORKDIR/autoclear.qcow2
qemu-img create -q -f qcow2 "$img" 64M
poke_be64 "$img" 88 $((1 << 7))
if dev=$(attach_rw "$img" 2>"$WORKDIR/err"); then
	detach "$dev"
	check "unknown autoclear bits are cleared by a read-write attach" \
		[ "$(peek_be64 "$img" 88)" = 0 ]
else
	diag <"$WORKDIR/err"
	fail "unknown autoclear bits: attach"
fi
qemu-img create -q -f qcow2 "$img" 64M
poke_be64 "$img" 88 $((1 << 7))
if dev=$(attach_ro "$img" 2>"$WORKDIR/err"); then
	detach "$dev"
	check "a read-only attach leaves them" \
		[ "$(peek_be64 "$img" 88)" = $((1 << 7)) ]
else
	fail "unknown autoclear bits: read-only attach"
fi

# --- ENOSPC from the image's file system --------------------------------------
fsimg=$WORKDIR/small-fs.img
mnt=$WORKDIR/small-fs
mkdir -p "$mnt"
truncate -s 48M "$fsimg"
if mkfs.ext4 -q -F "$fsimg" && loopdev=$(losetup -f --show "$fsimg") &&
	mount "$loopdev" "$mnt"; then
	img=$mnt/full.qcow2
	qemu-img create -q -f qcow2 "$img" 256M
	if dev=$(attach_rw "$img" 2>"$WORKDIR/err"); then
		dd if=/dev/urandom of="$dev" bs=1M count=128 oflag=direct \
			status=none 2>"$WORKDIR/dd.err"
		rc=$?
		check "ENOSPC: the writer gets an error" [ $rc -ne 0 ]
		diag "dd said: $(tail -n 1 "$WORKDIR/dd.err")"
		check "ENOSPC: a flush still works or fails cleanly" \
			blockdev --flushbufs "$dev"
		check "ENOSPC: reads still work" \
			dd if="$dev" of=/dev/null bs=1M count=4 status=none
		detach "$dev"
		check_image "ENOSPC" "$img"
		rm -f "$img"
	else
		diag <"$WORKDIR/err"
		fail "ENOSPC: attach"
	fi
	umount "$mnt"
	losetup -d "$loopdev"
else
	skip "ENOSPC" "could not make a small ext4 on a loop device"
fi

finish
