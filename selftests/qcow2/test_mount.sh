#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A filesystem through /dev/qcowN: mkfs.ext4 -d puts a small tree into a raw
# file, qemu-img converts it (plain, and zstd-compressed with 4 KiB
# clusters), the device is mounted read-only and every file must hash as
# in the source tree.

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img mkfs.ext4 sha256sum find
require_module
modprobe ext4 2>/dev/null
grep -qw ext4 /proc/filesystems || skip_all "ext4 not available in this kernel"

tree=$WORKDIR/tree
mnt=$WORKDIR/mnt
mkdir -p "$tree/sub/deeper" "$mnt"
head -c $((3 << 20)) /dev/urandom >"$tree/random.bin"
yes 'qcow2 mount test line' | head -c $((2 << 20)) >"$tree/text.txt"
head -c 1 /dev/urandom >"$tree/one-byte"
: >"$tree/empty"
for i in $(seq 1 40); do
	head -c $((i * 997)) /dev/urandom >"$tree/sub/file$i"
done
head -c $((5 << 20)) /dev/urandom >"$tree/sub/deeper/big.bin"
ln -s ../text.txt "$tree/sub/link"

(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
	>"$WORKDIR/want.sums"

if ! mkfs.ext4 -q -F -b 4096 -d "$tree" "$WORKDIR/fs.raw" 48M >/dev/null 2>"$WORKDIR/err"; then
	diag <"$WORKDIR/err"
	fail "mkfs.ext4 -d"
	finish
fi

for variant in plain zstd_4k; do
	img=$WORKDIR/fs-$variant.qcow2
	case $variant in
	plain) opts=(-o cluster_size=65536) ;;
	zstd_4k) opts=(-c -o "cluster_size=4096,compression_type=zstd") ;;
	esac
	convert_attach "$variant" "$WORKDIR/fs.raw" "$img" "${opts[@]}" || continue
	dev=$DEV
	if ! do_mount -t ext4 -o ro,noload "$dev" "$mnt" 2>"$WORKDIR/err"; then
		diag <"$WORKDIR/err"
		fail "$variant: mount -o ro,noload"
		detach "$dev"
		continue
	fi
	ok "$variant: mount -o ro,noload"
	(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
		>"$WORKDIR/got.sums" 2>"$WORKDIR/err"
	if cmp -s "$WORKDIR/want.sums" "$WORKDIR/got.sums"; then
		ok "$variant: all $(wc -l <"$WORKDIR/want.sums") files hash as in the source tree"
	else
		diff "$WORKDIR/want.sums" "$WORKDIR/got.sums" | head -n 10 | diag
		fail "$variant: all files hash as in the source tree"
	fi
	check "$variant: symlink resolves" \
		cmp -s "$mnt/sub/link" "$tree/text.txt"
	do_umount "$mnt" || fail "$variant: umount"
	if command -v fsck.ext4 >/dev/null; then
		if fsck.ext4 -n -f "$dev" >"$WORKDIR/fsck.log" 2>&1; then
			ok "$variant: fsck.ext4 -n of the device is clean"
		else
			tail -n 5 "$WORKDIR/fsck.log" | diag
			fail "$variant: fsck.ext4 -n of the device is clean"
		fi
	fi
	detach "$dev" || fail "$variant: detach"
	rm -f "$img"
done

finish
