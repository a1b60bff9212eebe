#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fio verify read pass: fio writes a raw file with crc32c verify headers,
# qemu-img converts it to qcow2 (plain and zstd-compressed), and fio's
# --verify_only pass re-reads the whole device with O_DIRECT async I/O and
# checks every block.  Then a short 4k random-read load at queue depth 32,
# which must finish without an I/O error.

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd fio qemu-img
require_module

SIZE=64M
raw=$WORKDIR/fio.raw
# One job description for the write and the verify pass: fio regenerates
# the expected headers from it, so only the file and engine may differ.
# Buffers 60% compressible, so that the zstd image really has compressed
# clusters.
JOB=(--name=qcow2verify --rw=write --bs=4k --size="$SIZE" --verify=crc32c
     --verify_fatal=1 --randrepeat=1 --buffer_compress_percentage=60
     --refill_buffers)

# fio_verify FILE ENGINE_ARGS...: verify-only pass over FILE.
fio_verify()
{
	local f=$1

	shift
	fio "${JOB[@]}" --filename="$f" --verify_only "$@" \
		--output="$WORKDIR/fio.log" >/dev/null 2>&1
	local rc=$?
	if [ $rc -ne 0 ] || grep -Eq 'verify: bad|err= *[1-9]' "$WORKDIR/fio.log"; then
		grep -E 'verify|err=|fio:' "$WORKDIR/fio.log" | head -n 8 | diag
		return 1
	fi
}

if ! fio "${JOB[@]}" --filename="$raw" --do_verify=0 --ioengine=psync \
	--output="$WORKDIR/fio.log" >/dev/null 2>&1; then
	diag <"$WORKDIR/fio.log"
	fail "fio writes the raw source file"
	finish
fi
ok "fio writes the raw source file"

# The recipe must be able to fail: a copy with one flipped byte must not
# verify.  (psync, buffered: the guest's tmpfs has no O_DIRECT.)
cp "$raw" "$WORKDIR/bad.raw"
printf '\xff\xfe' | dd of="$WORKDIR/bad.raw" bs=1 seek=$((5 << 20 | 1234)) \
	conv=notrunc status=none
if fio_verify "$WORKDIR/bad.raw" --ioengine=psync 2>/dev/null; then
	fail "fio verify detects a corrupted copy"
else
	ok "fio verify detects a corrupted copy"
fi
rm -f "$WORKDIR/bad.raw"

for variant in plain zstd; do
	img=$WORKDIR/fio-$variant.qcow2
	case $variant in
	plain) opts=(-o cluster_size=65536) ;;
	zstd) opts=(-c -o "cluster_size=65536,compression_type=zstd") ;;
	esac
	convert_attach "$variant" "$raw" "$img" "${opts[@]}" || continue
	dev=$DEV
	check "$variant: fio verify_only, libaio direct iodepth 16" \
		fio_verify "$dev" --ioengine=libaio --direct=1 --iodepth=16
	check "$variant: fio verify_only, psync buffered" \
		fio_verify "$dev" --ioengine=psync
	if fio --name=randread --filename="$dev" --rw=randread --bs=4k \
		--ioengine=libaio --direct=1 --iodepth=32 --numjobs=2 \
		--runtime=5 --time_based --group_reporting \
		--output="$WORKDIR/rr.log" >/dev/null 2>&1 &&
	   ! grep -Eq 'err= *[1-9]' "$WORKDIR/rr.log"; then
		diag "$variant randread: $(grep -m1 -E 'IOPS=' "$WORKDIR/rr.log" | sed 's/^ *//')"
		ok "$variant: fio 4k randread, iodepth 32, 2 jobs, 5 s"
	else
		grep -E 'err=|fio:' "$WORKDIR/rr.log" | head -n 5 | diag
		fail "$variant: fio 4k randread, iodepth 32, 2 jobs, 5 s"
	fi
	detach "$dev" || fail "$variant: detach"
	rm -f "$img"
done

finish
