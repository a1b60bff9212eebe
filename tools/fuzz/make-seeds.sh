#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Regenerates tools/fuzz/seeds/ with qemu-img: one small image per format
# variant.  Images with 64 KiB or larger clusters are cut to their first
# 4 KiB (header, extensions, backing name), small-cluster ones are kept
# whole so their L1/L2/refcount/snapshot tables are in the input too.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=$here/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

img() { qemu-img create -q -f qcow2 "$@"; }
io() { qemu-io "$@" >/dev/null; }

img -o compat=0.10 v2-64k.qcow2 64M
io -c 'write 0 64k' v2-64k.qcow2
img v3-64k.qcow2 64M
io -c 'write 0 64k' -c 'write -z 1M 64k' v3-64k.qcow2
img -o cluster_size=512 v3-512.qcow2 4M
io -c 'write -P 1 0 2k' -c 'write -z 8k 1k' -c 'write -z -u 0 512' \
   -c 'discard 1k 512' v3-512.qcow2
img -o compat=0.10,cluster_size=512 v2-512-snap.qcow2 1M
io -c 'write -P 1 0 2k' v2-512-snap.qcow2
qemu-img snapshot -c s1 v2-512-snap.qcow2
io -c 'write -P 2 0 1k' v2-512-snap.qcow2
img -o cluster_size=512 v3-512-snap.qcow2 1M
io -c 'write -P 1 0 2k' v3-512-snap.qcow2
qemu-img snapshot -c first v3-512-snap.qcow2
io -c 'write -P 2 512 1k' v3-512-snap.qcow2
qemu-img snapshot -c second-name v3-512-snap.qcow2
img -o cluster_size=4k v3-4k-snap.qcow2 16M
io -c 'write 0 8k' v3-4k-snap.qcow2
qemu-img snapshot -c snap v3-4k-snap.qcow2
qemu-img create -q -f raw src.raw 1M
io -f raw -c 'write -P 7 0 256k' -c 'write 512k 4k' src.raw
qemu-img convert -c -O qcow2 -o cluster_size=4k,compression_type=zstd \
	src.raw v3-4k-zstd.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=1k src.raw v3-1k-zlib.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=512,compat=0.10 \
	src.raw v2-512-zlib.qcow2
img -o lazy_refcounts=on v3-lazy.qcow2 64M
img base.qcow2 64M
img -b base.qcow2 -F qcow2 v3-backing.qcow2
img -o compat=0.10 -b base.qcow2 -F qcow2 v2-backing.qcow2
img -o cluster_size=512,refcount_bits=1 v3-512-rc1.qcow2 1M
io -c 'write 0 4k' v3-512-rc1.qcow2
img -o cluster_size=512,refcount_bits=64 v3-512-rc64.qcow2 1M
io -c 'write 0 4k' v3-512-rc64.qcow2
img -o cluster_size=2M v3-2m.qcow2 1G
img v3-bitmap.qcow2 64M
qemu-img bitmap --add v3-bitmap.qcow2 bm0
img -o extended_l2=on v3-extl2.qcow2 64M
img -o data_file=data.raw v3-datafile.qcow2 64M
qemu-img create -q --object secret,id=sec0,data=abc -f qcow2 \
	-o encrypt.format=luks,encrypt.key-secret=sec0 v3-luks.qcow2 16M
img -o preallocation=metadata,cluster_size=512 v3-512-prealloc.qcow2 64k

for f in v2-64k v3-64k v3-backing v2-backing v3-lazy v3-2m v3-bitmap \
	 v3-extl2 v3-datafile v3-luks; do
	truncate -s 4096 "$f.qcow2"
done
truncate -s 16384 v3-512-prealloc.qcow2
rm -f base.qcow2

mkdir -p "$out"
rm -f "$out"/*.qcow2
cp ./*.qcow2 "$out"/
du -cb "$out"/* | tail -n 1
