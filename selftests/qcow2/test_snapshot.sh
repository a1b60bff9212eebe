#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Internal snapshots through the driver's ioctls (qcowctl snapshot ...),
# checked against qemu-img both ways:
#
#   driver->qemu  create on a device with a mounted, frozen ext4; qemu-img
#                 snapshot -l lists it; convert -l equals the device then
#   qemu->driver  qemu-img snapshots are listed; revert makes the device
#                 equal each; a view of each equals convert -l
#   cow           fio write+verify after a snapshot; the snapshot (view
#                 and qemu-img) is unchanged
#   delete        check clean, no leaks, freed space reused
#   stress        200 snapshots created and deleted in random order with
#                 writes between; check clean after each batch
#   refusals      revert while mounted, delete of a viewed snapshot, long
#                 names, snapshots on a read-only device, 1-bit refcounts
#
# After every case the detached image passes "qemu-img check" (no errors,
# no leaks).

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img qemu-io fio mkfs.ext4 fsfreeze cmp
require_module
"$QCOWCTL" snapshot list --help >/dev/null 2>&1 ||
	skip_all "qcowctl has no snapshot command"

err=$WORKDIR/err
MiB=$((1 << 20))

# rw_attach NAME IMG: attach IMG read-write, set DEV.
rw_attach()
{
	DEV=$(attach_rw "$2" 2>"$err")
	if [ -z "$DEV" ]; then
		diag <"$err"
		fail "$1: attach read-write"
		return 1
	fi
}

# view NAME IMG KEY: attach snapshot KEY of IMG as a view, set VIEW.
view()
{
	VIEW=$(attach_ro "$2" --snapshot "$3" 2>"$err")
	if [ -z "$VIEW" ]; then
		diag <"$err"
		fail "$1: attach a view of $3"
		return 1
	fi
}

# snap_ids DEV: the IDs listed by qcowctl, one per line.
snap_ids()
{
	"$QCOWCTL" snapshot list --json "$1" | grep -o '"id": *"[^"]*"' |
		sed 's/.*"\([^"]*\)"$/\1/'
}

# same_as_snapshot NAME IMG SNAP RAW: qemu-img's view of SNAP equals RAW.
# shellcheck disable=SC2317 # called through check
same_as_snapshot()
{
	rm -f "$WORKDIR/sn.raw"
	qemu-img convert -O raw -l "snapshot.name=$3" "$2" "$WORKDIR/sn.raw" \
		2>"$err" && cmp -s "$WORKDIR/sn.raw" "$4"
}

# --- driver -> QEMU ----------------------------------------------------------
img=$WORKDIR/d2q.qcow2
mnt=$WORKDIR/mnt
mkdir -p "$mnt"
qemu-img create -q -f qcow2 "$img" 64M
if rw_attach d2q "$img"; then
	mkfs.ext4 -q "$DEV" && mount "$DEV" "$mnt" &&
		head -c $((3 * MiB)) /dev/urandom >"$mnt/a" && sync
	mark=$(kmsg_mark)
	id=$("$QCOWCTL" snapshot create --freeze "$DEV" fs-clean 2>"$err")
	check "d2q: create with the file system frozen prints an ID ($id)" \
		[ -n "$id" ]
	cp "$mnt/a" "$WORKDIR/a.at-snapshot"
	head -c $((2 * MiB)) /dev/urandom >"$mnt/b"
	sync
	# With the file system held still, the device's bytes are what a
	# snapshot taken now must hold.
	fsfreeze -f "$mnt"
	# O_DIRECT: the device's page cache may hold blocks from before mkfs.
	dd if="$DEV" of="$WORKDIR/d2q.raw" bs=1M iflag=direct status=none
	"$QCOWCTL" snapshot create "$DEV" exact >/dev/null 2>"$err" || diag <"$err"
	fsfreeze -u "$mnt"
	head -c $((1 * MiB)) /dev/urandom >"$mnt/c"
	sync
	check "d2q: the file system kept working" cmp -s "$mnt/a" "$WORKDIR/a.at-snapshot"
	check_match "d2q: qcowctl lists it" "^ *$id +fs-clean " \
		"$("$QCOWCTL" snapshot list "$DEV")"
	check "d2q: the kernel logged it" check_dmesg_since "$mark" 'created snapshot fs-clean'
	umount "$mnt"
	detach "$DEV"
	check_match "d2q: qemu-img snapshot -l lists it" "^$id +fs-clean " \
		"$(qemu-img snapshot -l "$img")"
	check_match "d2q: dated today, no VM state" \
		"fs-clean +0 B +$(date +%Y-%m-%d) " "$(qemu-img snapshot -l "$img")"
	check "d2q: qemu-img convert -l equals the device at snapshot time" \
		same_as_snapshot d2q "$img" exact "$WORKDIR/d2q.raw"
	check_image "d2q" "$img"
	# The snapshot's file system is clean: it was frozen.
	if view d2q "$img" fs-clean; then
		check "d2q: the view's ext4 is clean (fsck -n)" \
			e2fsck -fn "$VIEW" >/dev/null 2>&1
		detach "$VIEW"
	fi
fi

# --- QEMU -> driver ----------------------------------------------------------
img=$WORKDIR/q2d.qcow2
qemu-img create -q -f qcow2 "$img" 32M
for i in 1 2 3; do
	qemu-io -c "write -P $((0x10 * i)) $((i * MiB)) $((4 * MiB))" "$img" >/dev/null
	qemu-img snapshot -c "q$i" "$img"
	qemu-img convert -O raw -l "snapshot.name=q$i" "$img" "$WORKDIR/q$i.raw"
done
qemu-io -c "write -P 0xee 0 $((8 * MiB))" "$img" >/dev/null
if rw_attach q2d "$img"; then
	check "q2d: qcowctl lists the three qemu-img snapshots" \
		[ "$(snap_ids "$DEV" | tr '\n' ' ')" = "1 2 3 " ]
	for i in 2 1 3; do
		"$QCOWCTL" snapshot revert "$DEV" "q$i" 2>"$err" ||
			diag <"$err"
		check "q2d: revert to q$i: the device equals qemu-img's q$i" \
			cmp -s "$DEV" "$WORKDIR/q$i.raw"
	done
	for i in 1 2 3; do
		if view q2d "$img" "q$i"; then
			check "q2d: a view of q$i (while the image is attached read-write) equals it" \
				cmp -s "$VIEW" "$WORKDIR/q$i.raw"
			detach "$VIEW"
		fi
	done
	detach "$DEV"
	check_image "q2d" "$img"
	for i in 1 2 3; do
		if view q2d "$img" "$i"; then
			check "q2d: a view of ID $i from the image file equals q$i" \
				cmp -s "$VIEW" "$WORKDIR/q$i.raw"
			detach "$VIEW"
		fi
	done
fi

# --- copy-on-write -----------------------------------------------------------
img=$WORKDIR/cow.qcow2
qemu-img create -q -f qcow2 "$img" 64M
FIO=(--name=cow --ioengine=libaio --direct=1 --bs=4k --iodepth=16
     --size=48M --verify=crc32c --verify_fatal=1 --randrepeat=0
     --verify_state_save=0)
if rw_attach cow "$img"; then
	fio "${FIO[@]}" --filename="$DEV" --rw=write --output="$WORKDIR/fio.log" \
		>/dev/null 2>&1
	check "cow: fio fills the device" [ $? -eq 0 ]
	"$QCOWCTL" snapshot create "$DEV" before >/dev/null
	dd if="$DEV" of="$WORKDIR/before.raw" bs=1M iflag=direct status=none
	fio "${FIO[@]}" --filename="$DEV" --rw=randwrite \
		--output="$WORKDIR/fio.log" >/dev/null 2>&1
	check "cow: fio random writes with verify over the snapshot" [ $? -eq 0 ]
	if view cow "$img" before; then
		check "cow: the view still shows the snapshot" \
			cmp -s "$VIEW" "$WORKDIR/before.raw"
		"$QCOWCTL" snapshot delete "$DEV" before 2>"$err"
		rc=$?
		check "cow: deleting a viewed snapshot is refused (EBUSY)" \
			[ $rc -eq 1 ] && grep -qi 'busy\|view' "$err"
		detach "$VIEW"
	fi
	detach "$DEV"
	check "cow: qemu-img reads the snapshot unchanged" \
		same_as_snapshot cow "$img" before "$WORKDIR/before.raw"
	check_image "cow" "$img"
fi

# --- delete, and reuse of the freed space ------------------------------------
# "before" still holds the original 48 MiB; deleting it frees them, and the
# next copy-on-write of the whole disk must reuse them, not grow the file.
if rw_attach delete "$img"; then
	"$QCOWCTL" snapshot delete "$DEV" before 2>"$err" || diag <"$err"
	check "delete: the snapshot is gone" [ -z "$(snap_ids "$DEV")" ]
	"$QCOWCTL" snapshot create "$DEV" again >/dev/null
	blockdev --flushbufs "$DEV"
	size1=$(stat -c %s "$img")
	fio "${FIO[@]}" --filename="$DEV" --rw=randwrite \
		--output="$WORKDIR/fio.log" >/dev/null 2>&1
	check "delete: fio rewrites the disk over the new snapshot" [ $? -eq 0 ]
	"$QCOWCTL" snapshot delete "$DEV" again 2>"$err" || diag <"$err"
	detach "$DEV"
	size2=$(stat -c %s "$img")
	diag "image file: $size1 bytes before rewriting, $size2 after"
	check "delete: freed clusters are reused (the file grew < 2 MiB)" \
		[ "$size2" -lt $((size1 + 2 * MiB)) ]
	check_image "delete" "$img"
fi

# --- stress --------------------------------------------------------------------
img=$WORKDIR/stress.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096 "$img" 16M
if rw_attach stress "$img"; then
	n_ok=0
	n_bad=0
	for batch in 1 2 3 4; do
		for i in $(seq 1 50); do
			dd if=/dev/urandom of="$DEV" bs=4k count=4 \
				seek=$((RANDOM % 4000)) oflag=direct status=none
			if "$QCOWCTL" snapshot create "$DEV" "b$batch-$i" >/dev/null 2>"$err"; then
				n_ok=$((n_ok + 1))
			else
				n_bad=$((n_bad + 1))
				diag <"$err"
			fi
		done
		for id in $(snap_ids "$DEV" | shuf); do
			dd if=/dev/urandom of="$DEV" bs=4k count=2 \
				seek=$((RANDOM % 4000)) oflag=direct status=none
			"$QCOWCTL" snapshot delete --id "$DEV" "$id" 2>"$err" ||
				{ n_bad=$((n_bad + 1)); diag <"$err"; }
		done
		dd if="$DEV" of="$WORKDIR/stress.raw" bs=1M iflag=direct status=none
		detach "$DEV"
		check_image "stress: batch $batch" "$img"
		check "stress: batch $batch: qemu-img reads what the device held" \
			qemu-img compare -q -f raw -F qcow2 "$WORKDIR/stress.raw" "$img"
		rw_attach stress "$img" || break
	done
	check "stress: 200 snapshots created and deleted ($n_bad failures)" \
		[ "$n_ok" = 200 ] && [ "$n_bad" = 0 ]
	# QEMU's rule: highest ID + 1, so with none left the next is 1.
	check_match "stress: the next ID is the highest + 1" '^1$' \
		"$("$QCOWCTL" snapshot create "$DEV" last)"
	detach "$DEV"
fi

# --- refusals -------------------------------------------------------------------
img=$WORKDIR/refuse.qcow2
qemu-img create -q -f qcow2 "$img" 64M
if rw_attach refusals "$img"; then
	"$QCOWCTL" snapshot create "$DEV" s1 >/dev/null
	"$QCOWCTL" snapshot create "$DEV" s1 >/dev/null
	check "refusals: a duplicate name is allowed, with a new ID (as qemu-img)" \
		[ "$(snap_ids "$DEV" | tr '\n' ' ')" = "1 2 " ]
	mkfs.ext4 -q "$DEV" && mount "$DEV" "$mnt"
	"$QCOWCTL" snapshot revert "$DEV" 1 2>"$err"
	rc=$?
	check "refusals: revert while mounted fails (exit $rc)" [ $rc -eq 1 ]
	check_match "refusals: and says the device is busy" 'busy|in use' "$(cat "$err")"
	umount "$mnt"
	long=$(head -c 256 /dev/zero | tr '\0' 'x')
	"$QCOWCTL" snapshot create "$DEV" "$long" >/dev/null 2>"$err"
	rc=$?
	check "refusals: a 256-byte name is refused (exit $rc)" [ $rc -ne 0 ]
	"$QCOWCTL" snapshot delete "$DEV" no-such 2>"$err"
	rc=$?
	check "refusals: deleting a missing snapshot fails (exit $rc)" [ $rc -eq 1 ]
	check_match "refusals: and says so" 'no such snapshot|No such file' "$(cat "$err")"
	detach "$DEV"
	check_image "refusals" "$img"
	if dev=$(attach_ro "$img" 2>/dev/null); then
		"$QCOWCTL" snapshot create "$dev" ro >/dev/null 2>"$err"
		rc=$?
		check "refusals: create on a read-only device fails (exit $rc)" [ $rc -eq 1 ]
		check_match "refusals: with EROFS" 'read-only' "$(cat "$err")"
		detach "$dev"
	fi
fi
img=$WORKDIR/rb1.qcow2
qemu-img create -q -f qcow2 -o refcount_bits=1 "$img" 16M
if rw_attach rb1 "$img"; then
	"$QCOWCTL" snapshot create "$DEV" s >/dev/null 2>"$err"
	rc=$?
	check "rb1: 1-bit refcounts refuse snapshots (exit $rc)" [ $rc -eq 1 ]
	detach "$DEV"
	check_image "rb1" "$img"
fi

finish
