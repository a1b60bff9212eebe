#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo proper, run inside a vm-run guest: an ext4 image built by
# mkfs.ext4 and converted by qemu-img is attached with qcowctl, mounted and
# verified, then detached.  Every command is echoed as "$ cmd" first.
set -eu -o pipefail

PATH=$(dirname "$QCOWCTL"):$PATH
work=/tmp/demo
mnt=/mnt/demo

run()
{
	echo "\$ $*"
	"$@"
}

demo()
{
	local dev

	run insmod "$QCOW2_KO"
	mkdir -p "$work/content" "$mnt"
	cd "$work"

	# A small file tree, with a checksum to verify through the device.
	echo "Hello from a qcow2 image served by qcow2.ko" >content/hello.txt
	head -c 1M /dev/urandom >content/blob.bin
	(cd content && sha256sum blob.bin >blob.sha256)

	run truncate -s 256M disk.raw
	run mkfs.ext4 -q -F -d content disk.raw
	run qemu-img convert -O qcow2 disk.raw disk.qcow2
	run qemu-img info disk.qcow2

	echo "\$ qcowctl attach --read-only disk.qcow2"
	dev=$(qcowctl attach --read-only disk.qcow2)
	echo "$dev"

	run mount -o ro "$dev" "$mnt"
	run ls -l "$mnt"
	run cat "$mnt/hello.txt"
	echo "\$ (cd $mnt && sha256sum -c blob.sha256)"
	(cd "$mnt" && sha256sum -c blob.sha256)
	run qcowctl list
	run qcowctl info "$dev"
	run umount "$mnt"
	run qcowctl detach "$dev"
	run qcowctl list
	run rmmod qcow2
}

demo 2>&1 | tee "$QCOW2_OUT/demo-transcript.txt"
