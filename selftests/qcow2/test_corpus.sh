#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Interop corpus: images made now by qemu-img/qemu-io, covering versions,
# cluster sizes, refcount widths, sparse/full, zero and discarded clusters,
# zlib and zstd compression, internal snapshots, a >4 GiB virtual size and a
# size that is not a multiple of the cluster size.  For each image, the
# device must read exactly what qemu-img reads: same SHA-256 over the whole
# device, and random reads across cluster boundaries equal.
#
# Usage: test_corpus.sh [IMAGE-NAME...]   (default: all)

# The make_* functions are called indirectly, as "make_$name".
# shellcheck disable=SC2317

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img qemu-io sha256sum
require_module
[ -x "$QCOW2_CMP" ] || skip_all "qcow2_cmp not built (make -C selftests/qcow2)"

READS=${QCOW2_CORPUS_READS:-2000}
# Byte cap of the random reads per image (2 MiB clusters would otherwise
# read gigabytes; TCG is slow).
READ_BYTES=$((128 << 20))
SHA_MAX_MIB=256
seed=0

# Raw sources, made once: random bytes, text that compresses well, and a
# mix of both with holes (random clusters stay uncompressed in qemu-img's
# convert -c, text clusters get compressed).
SRC=$WORKDIR/src
mkdir -p "$SRC"
head -c $((8 << 20)) /dev/urandom >"$SRC/random8m"
yes 'qcow2 corpus: a line of compressible text 0123456789' |
	head -c $((8 << 20)) >"$SRC/text8m"

# mixed FILE SIZE_MIB: 1 MiB chunks cycling text, random, hole, text.
mixed()
{
	local f=$1 mib=$2 i

	truncate -s "${mib}M" "$f"
	for ((i = 0; i < mib; i++)); do
		case $((i % 4)) in
		0 | 3) dd if="$SRC/text8m" of="$f" bs=1M skip=$((i % 8)) \
			seek="$i" count=1 conv=notrunc status=none ;;
		1) dd if="$SRC/random8m" of="$f" bs=1M skip=$((i % 8)) \
			seek="$i" count=1 conv=notrunc status=none ;;
		esac
	done
}

# full FILE SIZE_MIB: every byte written, random.
full()
{
	local f=$1 mib=$2 i

	: >"$f"
	for ((i = 0; i < mib; i += 8)); do
		cat "$SRC/random8m" >>"$f"
	done
	truncate -s "${mib}M" "$f"
	# Make the repeated 8 MiB blocks differ so misplaced clusters show.
	for ((i = 8; i < mib; i += 8)); do
		printf 'block %08d' "$i" |
			dd of="$f" bs=1 seek=$((i << 20)) conv=notrunc status=none
	done
}

qio()
{
	local img=$1

	shift
	local args=()
	local c
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# Each make_* builds $1 (the image path); returns non-zero on failure.
make_v3_64k_sparse()
{
	qemu-img create -q -f qcow2 -o cluster_size=64k "$1" 64M &&
	qio "$1" 'write -P 0x11 0 4k' 'write -P 0x22 65000 1000' \
		'write -P 0x33 1M 192k' 'write -P 0x44 33554431 3' \
		'write -P 0x55 67043328 65536'
}

make_v2_64k_sparse()
{
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=64k "$1" 64M &&
	qio "$1" 'write -P 0x61 0 512' 'write -P 0x62 131071 2' \
		'write -P 0x63 10M 300k' 'write -P 0x64 67108352 512'
}

make_v3_512_full()
{
	full "$WORKDIR/in.raw" 8 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=512 "$WORKDIR/in.raw" "$1"
}

make_v2_512_sparse()
{
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 "$1" 16M &&
	qio "$1" 'write -P 0x71 0 1536' 'write -P 0x72 4095 1026' \
		'write -P 0x73 8M 64k' 'write -P 0x74 16776704 512'
}

make_v3_4k_full()
{
	full "$WORKDIR/in.raw" 32 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=4k "$WORKDIR/in.raw" "$1"
}

make_v2_4k_full()
{
	full "$WORKDIR/in.raw" 16 &&
	qemu-img convert -f raw -O qcow2 -o compat=0.10,cluster_size=4k \
		"$WORKDIR/in.raw" "$1"
}

make_v3_64k_full()
{
	full "$WORKDIR/in.raw" 64 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$WORKDIR/in.raw" "$1"
}

make_v3_2m_sparse()
{
	qemu-img create -q -f qcow2 -o cluster_size=2M "$1" 64M &&
	qio "$1" 'write -P 0x81 0 4k' 'write -P 0x82 2097000 1000' \
		'write -P 0x83 20M 3M' 'write -P 0x84 67108863 1'
}

make_v3_2m_full()
{
	full "$WORKDIR/in.raw" 32 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=2M "$WORKDIR/in.raw" "$1"
}

make_v3_rc1()
{
	full "$WORKDIR/in.raw" 16 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=64k,refcount_bits=1 \
		"$WORKDIR/in.raw" "$1"
}

make_v3_rc64()
{
	full "$WORKDIR/in.raw" 16 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=4k,refcount_bits=64 \
		"$WORKDIR/in.raw" "$1"
}

make_v3_rc16_sparse()
{
	qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=16 "$1" 32M &&
	qio "$1" 'write -P 0x91 4095 2' 'write -P 0x92 1M 1M'
}

make_v3_zero_discard()
{
	full "$WORKDIR/in.raw" 16 &&
	qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$WORKDIR/in.raw" "$1" &&
	qio "$1" 'write -z 0 64k' 'write -z 1M 256k' 'write -z 3M 4k' \
		'write -z -u 5M 128k' 'discard 6M 192k' 'discard 8M 64k' \
		'write -z 16711680 65536'
}

make_v2_zero_discard()
{
	full "$WORKDIR/in.raw" 16 &&
	qemu-img convert -f raw -O qcow2 -o compat=0.10,cluster_size=64k \
		"$WORKDIR/in.raw" "$1" &&
	qio "$1" 'write -z 0 64k' 'write -z 2M 128k' 'discard 4M 64k' \
		'discard 7M 1M'
}

make_v3_prealloc_metadata()
{
	qemu-img create -q -f qcow2 -o cluster_size=64k,preallocation=metadata \
		"$1" 16M &&
	qio "$1" 'write -P 0xa1 1M 64k'
}

make_zlib_64k()
{
	mixed "$WORKDIR/in.raw" 16 &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=64k,compression_type=zlib \
		"$WORKDIR/in.raw" "$1"
}

make_zstd_64k()
{
	mixed "$WORKDIR/in.raw" 16 &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=64k,compression_type=zstd \
		"$WORKDIR/in.raw" "$1"
}

make_zlib_4k_v2()
{
	mixed "$WORKDIR/in.raw" 8 &&
	qemu-img convert -c -f raw -O qcow2 -o compat=0.10,cluster_size=4k \
		"$WORKDIR/in.raw" "$1"
}

make_zstd_2m()
{
	mixed "$WORKDIR/in.raw" 16 &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=2M,compression_type=zstd \
		"$WORKDIR/in.raw" "$1"
}

make_zlib_512()
{
	mixed "$WORKDIR/in.raw" 4 &&
	qemu-img convert -c -f raw -O qcow2 -o cluster_size=512,compression_type=zlib \
		"$WORKDIR/in.raw" "$1"
}

# Compressed clusters overwritten in part: normal and compressed clusters
# side by side in one L2 table.
make_zstd_rewritten()
{
	make_zstd_64k "$1" &&
	qio "$1" 'write -P 0xb1 100k 10k' 'write -z 2M 64k' 'discard 3M 64k'
}

make_snapshots()
{
	qemu-img create -q -f qcow2 -o cluster_size=64k "$1" 32M &&
	qio "$1" 'write -P 0xc1 0 1M' 'write -P 0xc2 8M 512k' &&
	qemu-img snapshot -c first "$1" &&
	qio "$1" 'write -P 0xc3 512k 1M' 'discard 8M 64k' &&
	qemu-img snapshot -c second "$1" &&
	qio "$1" 'write -P 0xc4 100k 20k' 'write -z 0 64k'
}

make_snapshots_v2()
{
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k "$1" 16M &&
	qio "$1" 'write -P 0xd1 0 256k' &&
	qemu-img snapshot -c s1 "$1" &&
	qio "$1" 'write -P 0xd2 4k 8k'
}

make_big_5g()
{
	qemu-img create -q -f qcow2 -o cluster_size=64k "$1" 5G &&
	qio "$1" 'write -P 0xe1 0 64k' 'write -P 0xe2 4294901760 131072' \
		'write -P 0xe3 4294967295 1' 'write -P 0xe4 5368643584 65536' \
		'write -P 0xe5 5368709119 1'
}

make_odd_size()
{
	# 100 MiB + 512: the last cluster is only 512 bytes long in the guest.
	qemu-img create -q -f qcow2 -o cluster_size=64k "$1" $(((100 << 20) + 512)) &&
	qio "$1" 'write -P 0xf1 0 4k' 'write -P 0xf2 104791552 65536' \
		'write -P 0xf3 104857600 512'
}

# The image really has what its name promises (else the test proves less
# than it claims): compressed clusters, zero clusters, snapshots.
has_feature()
{
	local name=$1 img=$2 map

	map=$(qemu-img map -f qcow2 --output=json "$img") || return
	case $name in
	zlib_* | zstd_*)
		# Compressed extents have data but no host offset.
		printf '%s\n' "$map" | grep '"data": true' | grep -vq '"offset"'
		;;
	*zero_discard)
		printf '%s\n' "$map" | grep -q '"zero": true'
		;;
	snapshots*)
		[ "$(qemu-img snapshot -l "$img" | grep -c '^[0-9]')" -ge 1 ]
		;;
	esac
}

IMAGES="v3_64k_sparse v2_64k_sparse v3_512_full v2_512_sparse v3_4k_full
v2_4k_full v3_64k_full v3_2m_sparse v3_2m_full v3_rc1 v3_rc64
v3_rc16_sparse v3_zero_discard v2_zero_discard v3_prealloc_metadata
zlib_64k zstd_64k zlib_4k_v2 zstd_2m zlib_512 zstd_rewritten snapshots
snapshots_v2 big_5g odd_size"

[ $# -gt 0 ] && IMAGES=$*

for name in $IMAGES; do
	img=$WORKDIR/$name.qcow2
	ref=$WORKDIR/$name.raw
	seed=$((seed + 1))
	t0=$(date +%s)
	if ! "make_$name" "$img" 2>"$WORKDIR/err" ||
	   ! has_feature "$name" "$img" 2>>"$WORKDIR/err" ||
	   ! qemu-img convert -f qcow2 -O raw "$img" "$ref" 2>>"$WORKDIR/err"; then
		diag <"$WORKDIR/err"
		fail "$name: create with qemu-img"
		rm -f "$img" "$ref" "$WORKDIR/in.raw"
		continue
	fi
	rm -f "$WORKDIR/in.raw"
	diag "$name: $(qemu-img info "$img" | grep -E '^(virtual size|cluster_size|disk size)' | tr '\n' ' ')"

	dev=$(attach_ro "$img" 2>"$WORKDIR/err")
	if [ -z "$dev" ] || [ ! -b "$dev" ]; then
		diag <"$WORKDIR/err"
		fail "$name: attach"
		fail "$name: whole device equals qemu-img's raw (O_DIRECT)"
		fail "$name: $READS random reads (at most $((READ_BYTES >> 20)) MiB) equal qemu-img's"
		rm -f "$img" "$ref"
		continue
	fi
	ok "$name: attach"

	check "$name: whole device equals qemu-img's raw (O_DIRECT)" \
		"$QCOW2_CMP" --full "$dev" "$ref"
	# sha256sum runs at ~50 MB/s under TCG: whole-device hashes (page
	# cache reads) only for the images that are not huge.
	if [ "$(dev_size "$dev")" -le $((SHA_MAX_MIB << 20)) ]; then
		want=$(sha256 "$ref")
		got=$(sha256 "$dev")
		if [ "$got" = "$want" ]; then
			ok "$name: sha256 equals qemu-img's"
		else
			diag "device $got, qemu-img $want"
			fail "$name: sha256 equals qemu-img's"
		fi
	fi
	check "$name: $READS random reads (at most $((READ_BYTES >> 20)) MiB) equal qemu-img's" \
		"$QCOW2_CMP" -b "$READ_BYTES" "$dev" "$ref" "$READS" "$seed"

	detach "$dev" || fail "$name: detach"
	rm -f "$img" "$ref"
	diag "$name: done after $(($(date +%s) - t0)) s"
done

finish
