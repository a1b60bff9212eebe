#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Control-device behaviour: attach/detach through qcowctl, queue limits,
# refusals, deferred detach of an open or mounted device, rmmod with a
# device present, and the raw ioctl ABI (ctl_abi).

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img qemu-io blockdev
require_module

VSIZE=$((64 << 20))
img=$WORKDIR/ctl.qcow2
raw=$WORKDIR/ctl.raw
err=$WORKDIR/stderr

if ! qemu-img create -q -f qcow2 -o cluster_size=65536 "$img" "$VSIZE" ||
   ! qemu-io -f qcow2 -c 'write -P 0xa5 0 1M' -c 'write -P 0x3c 63M 1M' \
	"$img" >/dev/null ||
   ! qemu-img convert -f qcow2 -O raw "$img" "$raw"; then
	fail "create test image with qemu-img"
	finish
fi

n_devices()
{
	"$QCOWCTL" list 2>/dev/null | grep -c '/dev/qcow[0-9]'
}

# --- attach and queue limits ---------------------------------------------
dev=$(attach_ro "$img" 2>"$err")
rc=$?
if [ $rc -ne 0 ] || [ ! -b "$dev" ]; then
	diag <"$err"
	fail "attach --read-only prints a block device node (rc $rc, '$dev')"
	finish
fi
ok "attach --read-only prints a block device node ($dev)"
name=${dev#/dev/}

size=$(dev_size "$dev")
check "capacity $size == virtual size $VSIZE" [ "$size" = "$VSIZE" ]
io_opt=$(cat "/sys/block/$name/queue/optimal_io_size" 2>/dev/null)
check "optimal_io_size ${io_opt:-?} == cluster size 65536" [ "$io_opt" = 65536 ]
rot=$(cat "/sys/block/$name/queue/rotational" 2>/dev/null)
check "queue/rotational ${rot:-?} == 0" [ "$rot" = 0 ]
ro=$(blockdev --getro "$dev" 2>/dev/null)
check "device is read-only (getro ${ro:-?})" [ "$ro" = 1 ]
check "contents equal qemu-img's raw conversion" \
	"$QCOW2_CMP" "$dev" "$raw" 300 1

# sysfs tells the same as qemu-img and the queue, and counts cache use.
sysq=/sys/block/$name/qcow2
v=$(cat "$sysq/virtual_size" 2>/dev/null)
check "sysfs virtual_size ${v:-?} == $VSIZE" [ "$v" = "$VSIZE" ]
v=$(cat "$sysq/cluster_size" 2>/dev/null)
check "sysfs cluster_size ${v:-?} == 65536" [ "$v" = 65536 ]
v=$(cat "$sysq/version" 2>/dev/null)
check "sysfs version ${v:-?} == 3" [ "$v" = 3 ]
v=$(cat "$sysq/refcount_order" 2>/dev/null)
check "sysfs refcount_order ${v:-?} == 4 (16-bit refcounts)" [ "$v" = 4 ]
v=$(cat "$sysq/image" 2>/dev/null)
check "sysfs image ${v:-?} == $img" [ "$v" = "$(readlink -f "$img")" ]
hits=$(cat "$sysq/cache_hits" 2>/dev/null)
misses=$(cat "$sysq/cache_misses" 2>/dev/null)
counted=0
[ "${hits:-0}" -gt 0 ] && [ "${misses:-0}" -gt 0 ] && counted=1
check "sysfs cache counted the reads (hits ${hits:-?}, misses ${misses:-?})" \
	[ "$counted" = 1 ]
used=$(cat "$sysq/cache_used" 2>/dev/null)
csize=$(cat "$sysq/cache_size" 2>/dev/null)
bounded=0
[ -n "$used" ] && [ -n "$csize" ] && [ "$used" -le "$csize" ] && bounded=1
check "sysfs cache_used ${used:-?} <= cache_size ${csize:-?}" [ "$bounded" = 1 ]

if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	fail "write to a read-only device fails"
else
	ok "write to a read-only device fails"
fi

out=$("$QCOWCTL" list --json 2>"$err")
rc=$?
[ $rc -eq 0 ] || diag <"$err"
check "list --json exits 0" [ $rc -eq 0 ]
check_match "list --json names $name" "\\b$name\\b" "$out"
case $out in
*"{"* | *"["*) ok "list --json output looks like JSON" ;;
*) fail "list --json output looks like JSON: '$out'" ;;
esac
out=$("$QCOWCTL" info --json "$dev" 2>"$err")
rc=$?
[ $rc -eq 0 ] || diag <"$err"
check "info --json exits 0" [ $rc -eq 0 ]
check_match "info --json shows virtual size $VSIZE" "\\b$VSIZE\\b" "$out"
check_match "info --json shows cluster size 65536" '\b65536\b' "$out"
out=$("$QCOWCTL" info "$dev" 2>&1)
check "info (text) exits 0" [ $? -eq 0 ]
check_match "list (text) names $dev" "$dev\\b" "$("$QCOWCTL" list 2>&1)"

# --- detach of an unused device ----------------------------------------------
if detach "$dev" 2>"$err"; then
	ok "detach unused device exits 0"
else
	diag <"$err"
	fail "detach unused device exits 0"
fi
check "node $dev removed after detach" wait_gone "$dev" 5
out=$("$QCOWCTL" list 2>&1)
if printf '%s\n' "$out" | grep -qw "$dev"; then
	fail "list no longer names $dev"
else
	ok "list no longer names $dev"
fi

"$QCOWCTL" detach "$dev" >/dev/null 2>"$err"
rc=$?
check_refused "second detach exits 1 with a qcowctl: message" $rc "$err"
"$QCOWCTL" info "$dev" >/dev/null 2>"$err"
rc=$?
check "info of a detached device exits 1 (rc $rc)" [ $rc -eq 1 ]

# --- read-write attach and its refusals ------------------------------------
out=$("$QCOWCTL" attach "$img" 2>"$err")
rc=$?
if [ $rc -eq 0 ]; then
	echo "$out" >>"$ATTACHED_LIST"
	check "read-write attach gives a writable device" \
		[ "$(blockdev --getro "$out")" = 0 ]
	check "read-write device says so in sysfs" \
		[ "$(cat "/sys/block/${out#/dev/}/ro")" = 0 ]
	detach "$out"
else
	diag "qcowctl said: $(head -n 1 "$err")"
	fail "read-write attach gives a writable device"
fi

# An image marked corrupt may be read, never written.
cp "$img" "$WORKDIR/corrupt.qcow2"
poke_hex "$WORKDIR/corrupt.qcow2" 79 02
before=$(n_devices)
mark=$(kmsg_mark)
out=$("$QCOWCTL" attach "$WORKDIR/corrupt.qcow2" 2>"$err")
rc=$?
if [ $rc -eq 0 ]; then
	echo "$out" >>"$ATTACHED_LIST"
	fail "read-write attach of a corrupt image refused (it attached $out)"
else
	check_refused "read-write attach of a corrupt image refused: exit 1 and a qcowctl: message" \
		$rc "$err"
	check_match "the refusal names the corrupt bit" 'corrupt' \
		"$(cat "$err"; dmesg_since "$mark")"
fi
check "refused attach leaves no device" [ "$(n_devices)" = "$before" ]

head -c $((1 << 20)) /dev/urandom >"$WORKDIR/random.bin"
out=$("$QCOWCTL" attach --read-only "$WORKDIR/random.bin" 2>"$err")
rc=$?
[ $rc -eq 0 ] && echo "$out" >>"$ATTACHED_LIST"
check_refused "attach of a non-qcow2 file fails with exit 1 and a message" \
	$rc "$err"
# qcowctl may check the magic itself; the kernel must refuse it as well.
out=$("$CTL_ABI" --add "$WORKDIR/random.bin")
rc=$?
case $out in
/dev/qcow*) echo "$out" >>"$ATTACHED_LIST" ;;
*) diag "raw ADD of a non-qcow2 file: ${out#\# }" ;;
esac
check "raw ADD of a non-qcow2 file refused by the kernel (rc $rc)" [ $rc -eq 1 ]
check "kernel logged why the non-qcow2 file was refused" \
	check_dmesg_since "$mark"

out=$("$QCOWCTL" attach --read-only "$WORKDIR/does-not-exist" 2>"$err")
rc=$?
check_refused "attach of a missing file exits 1 with a message" $rc "$err"
"$QCOWCTL" attach >/dev/null 2>&1
rc=$?
check "attach without an image is a usage error (exit 2, got $rc)" [ $rc -eq 2 ]
"$QCOWCTL" frobnicate >/dev/null 2>&1
rc=$?
check "unknown subcommand is a usage error (exit 2, got $rc)" [ $rc -eq 2 ]

# --- cache size option -----------------------------------------------------------
dev=$(attach_ro "$img" --cache-size 1M 2>"$err")
rc=$?
if [ $rc -eq 0 ]; then
	out=$("$QCOWCTL" info --json "$dev" 2>/dev/null)
	check_match "attach --cache-size 1M: info shows 1048576" \
		'\b1048576\b' "$out"
	check "attach --cache-size 1M: contents equal" \
		"$QCOW2_CMP" "$dev" "$raw" 100 2
	detach "$dev" 2>/dev/null
else
	diag <"$err"
	fail "attach --cache-size 1M"
fi

# --- detach of an open device: deferred ---------------------------------------------
dev=$(attach_ro "$img" 2>"$err")
if [ -b "$dev" ]; then
	exec 3<"$dev"
	out=$("$QCOWCTL" detach "$dev" 2>&1)
	rc=$?
	diag "detach of open device said: $out"
	check "detach of an open device exits 0 (rc $rc)" [ $rc -eq 0 ]
	check_match "detach of an open device says busy/deferred" \
		'[Bb]usy|[Dd]efer' "$out"
	if [ -e "$dev" ] && dd if="$dev" of=/dev/null bs=4k count=1 status=none 2>/dev/null; then
		fail "new open of a device being detached is refused"
	else
		ok "new open of a device being detached is refused"
	fi
	got=$(head -c 65536 <&3 | od -A n -t x1 -N 1 | tr -d ' ')
	check "the open descriptor still reads (got '${got:-nothing}', want a5)" \
		[ "$got" = a5 ]
	check "node stays while the device is open" [ -e "$dev" ]
	exec 3<&-
	check "node gone after the last close" wait_gone "$dev" 10
	forget_dev "$dev"
else
	diag <"$err"
	fail "attach for the deferred-detach case"
fi

# --- detach while a reader is busy ----------------------------------------------------
dev=$(attach_ro "$img" 2>"$err")
if [ -b "$dev" ]; then
	( while dd if="$dev" of=/dev/null bs=1M iflag=direct status=none 2>/dev/null; do :; done ) &
	reader=$!
	sleep 1
	"$QCOWCTL" detach "$dev" >/dev/null 2>&1
	rc=$?
	check "detach during continuous reads exits 0 (rc $rc)" [ $rc -eq 0 ]
	wait "$reader"
	check "node gone after the reader stopped" wait_gone "$dev" 10
	forget_dev "$dev"
else
	fail "attach for the busy-reader case"
fi

# --- mounted ext4: attach, deferred detach, umount -------------------------------------
modprobe ext4 2>/dev/null
if command -v mkfs.ext4 >/dev/null && grep -qw ext4 /proc/filesystems; then
	mkdir -p "$WORKDIR/tree" "$WORKDIR/mnt"
	echo "qcow2 selftest" >"$WORKDIR/tree/hello"
	if mkfs.ext4 -q -F -d "$WORKDIR/tree" "$WORKDIR/fs.raw" 16M >/dev/null &&
	   qemu-img convert -f raw -O qcow2 "$WORKDIR/fs.raw" "$WORKDIR/fs.qcow2"; then
		dev=$(attach_ro "$WORKDIR/fs.qcow2" 2>"$err")
		if [ -b "$dev" ] &&
		   do_mount -t ext4 -o ro,noload "$dev" "$WORKDIR/mnt"; then
			ok "mount -o ro,noload of an ext4 image"
			"$QCOWCTL" detach "$dev" >/dev/null 2>&1
			rc=$?
			check "detach of a mounted device exits 0 (rc $rc)" [ $rc -eq 0 ]
			check "mounted files still read after detach" \
				grep -qx "qcow2 selftest" "$WORKDIR/mnt/hello"
			do_umount "$WORKDIR/mnt"
			check "umount after deferred detach works, node gone" \
				wait_gone "$dev" 10
			forget_dev "$dev"
		else
			diag <"$err"
			fail "mount -o ro,noload of an ext4 image"
		fi
	else
		fail "make the ext4 image"
	fi
else
	skip "mounted-device detach" "no ext4 or mkfs.ext4"
fi

# --- the raw ioctl ABI ---------------------------------------------------------------------
if [ -x "$CTL_ABI" ]; then
	"$CTL_ABI" "$img" "$VSIZE" >"$WORKDIR/abi.out" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) fail "${line#not ok - }" ;;
		*) diag "$line" ;;
		esac
	done <"$WORKDIR/abi.out"
	grep -q '^not ok' "$WORKDIR/abi.out" || [ $rc -eq 0 ] ||
		fail "ctl_abi exited $rc"
else
	fail "ctl_abi helper built (run make -C selftests/qcow2)"
fi

# --- rmmod with an idle device attached ---------------------------------------------------
# Last, because it may unload the module: either rmmod refuses (the device
# must keep working) or it tears everything down.  Either way the module is
# loaded again afterwards for the tests that follow.
if [ -n "${QCOW2_KO:-}" ] && [ -f "$QCOW2_KO" ]; then
	dev=$(attach_ro "$img" 2>"$err")
	if [ -b "$dev" ]; then
		mark=$(kmsg_mark)
		if rmmod qcow2 2>"$err"; then
			ok "rmmod with an idle device: unloaded"
			check "rmmod removed $dev" wait_gone "$dev" 5
			check "rmmod removed /dev/qcow-control" \
				wait_gone /dev/qcow-control 5
			forget_dev "$dev"
		else
			diag "rmmod refused: $(head -n 1 "$err")"
			ok "rmmod with an idle device: refused"
			check "device still reads after the refused rmmod" \
				"$QCOW2_CMP" "$dev" "$raw" 50 3
			detach "$dev" 2>/dev/null
			wait_gone "$dev" 5
			check "rmmod after the detach works" rmmod qcow2
		fi
		if [ -c /dev/qcow-control ]; then
			diag "module still loaded, not reloading"
		elif insmod "$QCOW2_KO" 2>"$err"; then
			ok "insmod again after rmmod"
		else
			diag <"$err"
			fail "insmod again after rmmod"
		fi
		tries=50
		while [ ! -c /dev/qcow-control ] && [ $tries -gt 0 ]; do
			sleep 0.1
			tries=$((tries - 1))
		done
		dev=$(attach_ro "$img" 2>"$err")
		if [ -b "$dev" ] && "$QCOW2_CMP" "$dev" "$raw" 50 4; then
			ok "attach works after the reload"
			detach "$dev" 2>/dev/null
		else
			fail "attach works after the reload"
		fi
	else
		fail "attach for the rmmod case"
	fi
else
	skip "rmmod with an idle device" "QCOW2_KO not set"
fi

finish
