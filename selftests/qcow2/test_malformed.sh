#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Malformed images, one bad field each, made by patching bytes of valid
# qemu-img images.  Header-level damage must make the attach fail: exit 1,
# a "qcowctl: " message, and a kernel message naming qcow2.  Damage in L1/L2
# entries may instead be found at read time: then reading the affected
# range fails with EIO while the rest of the device still reads.  Some
# images are odd but valid (dirty bit, unknown compatible bits...) and must
# attach and read like qemu-img reads them.  The kernel log is checked for
# oopses by run.sh.
#
# Usage: test_malformed.sh [CASE...]   (default: all)

# The case_* functions are called indirectly, as "case_$name".
# shellcheck disable=SC2317

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd qemu-img qemu-io od dd truncate
require_module
{ [ -x "$QCOW2_CMP" ] && [ -x "$CTL_ABI" ]; } ||
	skip_all "qcow2_cmp or ctl_abi not built (make -C selftests/qcow2)"

err=$WORKDIR/stderr
L1E_OFFSET_MASK=$((16#00fffffffffffe00))
HUGE=$((1 << 32))	# cluster aligned, far past the end of every image

# ---------------------------------------------------------------------------
# Base images.  B (v3) and B2 (v2): 64 KiB clusters, 1 GiB, so the L1 table
# has two entries and damage under one of them leaves the other readable.
# Written: 128 KiB at 0 and 64 KiB at 512 MiB.  qemu-img 7.2 lays B out as
# header 0, reftable 0x10000, refblock 0x20000, L1 0x30000, L2 0x40000,
# data 0x50000 and 0x60000, second L2 0x70000, data 0x80000.
B=$WORKDIR/base.qcow2
B2=$WORKDIR/base-v2.qcow2
BS=$WORKDIR/base-snap.qcow2
BC=$WORKDIR/base-compressed.qcow2
BO=$WORKDIR/overlay.qcow2

make_base()
{
	qemu-img create -q -f qcow2 -o "cluster_size=65536$2" "$1" 1G &&
	qemu-io -f qcow2 -c 'write -P 0x5a 0 128k' -c 'write -P 0x6b 512M 64k' \
		"$1" >/dev/null
}

if ! make_base "$B" "" 2>"$err" || ! make_base "$B2" ",compat=0.10" 2>>"$err" ||
   ! cp "$B" "$BS" || ! qemu-img snapshot -c s1 "$BS" 2>>"$err" ||
   ! qemu-img create -q -f qcow2 -b "$B" -F qcow2 "$BO" 2>>"$err"; then
	diag <"$err"
	fail "create base images with qemu-img"
	finish
fi

# Compressed base: text (compressible) at 0..1 MiB, random at 1..2 MiB.
yes 'compressible qcow2 text' | head -c $((1 << 20)) >"$WORKDIR/c.raw"
head -c $((1 << 20)) /dev/urandom >>"$WORKDIR/c.raw"
truncate -s 64M "$WORKDIR/c.raw"
if ! qemu-img convert -c -f raw -O qcow2 -o cluster_size=65536 \
	"$WORKDIR/c.raw" "$BC" 2>"$err"; then
	diag <"$err"
	fail "create compressed base image"
	finish
fi
rm -f "$WORKDIR/c.raw"

l1_offset()
{
	peek_be64 "$1" 40
}

# l1_entry IMG INDEX: file offset of the L1 entry
l1_entry()
{
	echo $(($(l1_offset "$1") + 8 * $2))
}

# l2_entry IMG GUEST_CLUSTER: file offset of the L2 entry (64 KiB clusters)
l2_entry()
{
	local l1e

	l1e=$(peek_be64 "$1" "$(l1_entry "$1" $(($2 / 8192)))")
	echo $(((l1e & L1E_OFFSET_MASK) + 8 * ($2 % 8192)))
}

# Refuse to go on if qemu-img laid B out differently: the byte offsets
# below would then patch something else than the field a case names.
layout_ok()
{
	local want got off

	for want in "0:514649fb" "4:00000003" "20:00000010" "36:00000002" \
		"40:0000000000030000" "48:0000000000010000" \
		"100:00000070" "112:6803f857" \
		"$((0x30000)):80000000000400008000000000070000" \
		"$((0x40000)):80000000000500008000000000060000" \
		"$((0x70000)):8000000000080000"; do
		off=${want%%:*}
		want=${want#*:}
		got=$(peek_hex "$B" "$off" $((${#want} / 2)))
		if [ "$got" != "$want" ]; then
			diag "base image at $off: $got, expected $want"
			return 1
		fi
	done
	# v2: same tables, 72-byte header, no extensions.
	[ "$(peek_hex "$B2" 4 4)" = 00000002 ] &&
	[ "$(peek_hex "$B2" "$(l2_entry "$B2" 0)" 8)" = 8000000000050000 ]
}

if layout_ok; then
	ok "base image layout is what the patches expect"
else
	fail "base image layout is what the patches expect"
	finish
fi

# ---------------------------------------------------------------------------
# Case runners.  Each case copies a base image, patches it, and checks one
# expectation.  One result line per case.

# new_img CASE BASE: the case's copy of BASE
new_img()
{
	cp "$2" "$WORKDIR/$1.qcow2"
	echo "$WORKDIR/$1.qcow2"
}

# refused CASE IMG: qcowctl refuses the image (exit 1, "qcowctl: "
# message), the kernel refuses it too when asked directly (qcowctl checks
# a few things itself first), and the kernel log names qcow2.
refused()
{
	local name=$1 img=$2 mark dev rc msg klog kerr res=0

	mark=$(kmsg_mark)
	dev=$("$QCOWCTL" attach --read-only "$img" 2>"$err")
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "$dev" >>"$ATTACHED_LIST"
		diag "$name: qcowctl attached it as $dev"
		detach "$dev" >/dev/null 2>&1
		res=1
	fi
	msg=$(grep -m1 '^qcowctl: ' "$err")
	if [ "$rc" -ne 1 ] || [ -z "$msg" ]; then
		res=1
	fi
	dev=$("$CTL_ABI" --add "$img")
	case $dev in
	/dev/qcow*)
		echo "$dev" >>"$ATTACHED_LIST"
		kerr="accepted as $dev"
		detach "$dev" >/dev/null 2>&1
		res=1
		;;
	*) kerr=${dev#\# ADD: } ;;
	esac
	# The refusal names the image file (another test may be logging too).
	klog=$(dmesg_since "$mark" | grep -F -m1 "attach $(basename "$img")")
	[ -n "$klog" ] || res=1
	diag "$name: qcowctl rc $rc: ${msg:-no qcowctl: message}"
	diag "$name: raw ADD: $kerr; kernel: ${klog:-nothing}"
	return "$res"
}

expect_refused()
{
	if refused "$1" "$2"; then
		ok "$1: attach refused with messages"
	else
		fail "$1: attach refused with messages"
	fi
}

# expect_eio CASE IMG BAD_OFFSET GOOD_OFFSET: either the attach is refused
# (as expect_refused), or reading 4 KiB at BAD_OFFSET fails with EIO, 4 KiB
# at GOOD_OFFSET reads, and the kernel said why.
expect_eio()
{
	local name=$1 img=$2 bad=$3 good=$4 mark dev rc klog res=0

	mark=$(kmsg_mark)
	dev=$("$QCOWCTL" attach --read-only "$img" 2>"$err")
	rc=$?
	if [ "$rc" -ne 0 ]; then
		if refused "$name" "$img"; then
			ok "$name: refused at attach with messages"
		else
			fail "$name: refused at attach with messages"
		fi
		return
	fi
	echo "$dev" >>"$ATTACHED_LIST"
	"$QCOW2_CMP" --expect-eio "$dev" "$bad" 4096 || res=1
	"$QCOW2_CMP" --read "$dev" "$good" 4096 || res=1
	klog=$(dmesg_since "$mark" | grep -F -m1 "${dev#/dev/}: image is corrupt")
	diag "$name: attached; kernel: ${klog:-nothing}"
	[ -n "$klog" ] || res=1
	if [ "$res" -eq 0 ]; then
		ok "$name: read of the bad range fails with EIO, the rest reads"
	else
		fail "$name: read of the bad range fails with EIO, the rest reads"
	fi
	detach "$dev" >/dev/null 2>&1
}

# expect_reads CASE IMG: attach works and the device equals qemu-img's view.
expect_reads()
{
	local name=$1 img=$2 dev

	if ! qemu-img convert -f qcow2 -O raw "$img" "$WORKDIR/ref.raw" 2>"$err"; then
		diag <"$err"
		fail "$name: qemu-img reads the image"
		return
	fi
	dev=$(attach_ro "$img" 2>"$err")
	if [ -z "$dev" ]; then
		diag <"$err"
		fail "$name: attaches and reads like qemu-img"
		rm -f "$WORKDIR/ref.raw"
		return
	fi
	if "$QCOW2_CMP" --full "$dev" "$WORKDIR/ref.raw" &&
	   "$QCOW2_CMP" "$dev" "$WORKDIR/ref.raw" 200 7; then
		ok "$name: attaches and reads like qemu-img"
	else
		fail "$name: attaches and reads like qemu-img"
	fi
	detach "$dev" >/dev/null 2>&1
	rm -f "$WORKDIR/ref.raw"
}

# ---------------------------------------------------------------------------
# The cases.  case_NAME builds the image and calls one expect_*.

case_control()
{
	expect_reads control "$(new_img control "$B")"
}

case_control_v2()
{
	expect_reads control_v2 "$(new_img control_v2 "$B2")"
}

case_control_compressed()
{
	expect_reads control_compressed "$(new_img control_compressed "$BC")"
}

case_control_snapshot()
{
	expect_reads control_snapshot "$(new_img control_snapshot "$BS")"
}

# hdr32 CASE OFFSET VALUE / hdr64: one header field of B
hdr32()
{
	local img

	img=$(new_img "$1" "$B")
	poke_be32 "$img" "$2" "$3"
	expect_refused "$1" "$img"
}

hdr64()
{
	local img

	img=$(new_img "$1" "$B")
	poke_be64 "$img" "$2" "$3"
	expect_refused "$1" "$img"
}

case_magic()			{ hdr32 magic 0 $((16#514649fa)); }
case_version_1()		{ hdr32 version_1 4 1; }
case_version_4()		{ hdr32 version_4 4 4; }
case_cluster_bits_8()		{ hdr32 cluster_bits_8 20 8; }
case_cluster_bits_22()		{ hdr32 cluster_bits_22 20 22; }
case_header_length_100()	{ hdr32 header_length_100 100 100; }
case_header_length_big()	{ hdr32 header_length_big 100 65544; }
case_l1_size_too_small()	{ hdr32 l1_size_too_small 36 1; }
case_l1_size_over_limit()	{ hdr32 l1_size_over_limit 36 $((1 << 25)); }
case_l1_offset_past_eof()	{ hdr64 l1_offset_past_eof 40 "$HUGE"; }
case_l1_offset_unaligned()	{ hdr64 l1_offset_unaligned 40 $((16#30200)); }
case_reftable_clusters_0()	{ hdr32 reftable_clusters_0 56 0; }
case_reftable_too_large()	{ hdr32 reftable_too_large 56 4096; }
case_reftable_unaligned()	{ hdr64 reftable_unaligned 48 $((16#10200)); }
case_reftable_past_eof()	{ hdr64 reftable_past_eof 48 "$HUGE"; }
case_refcount_order_7()		{ hdr32 refcount_order_7 96 7; }
case_incompat_bit_20()		{ hdr64 incompat_bit_20 72 $((1 << 20)); }
case_crypt_aes()		{ hdr32 crypt_aes 32 1; }
case_crypt_luks_no_ext()	{ hdr32 crypt_luks_no_ext 32 2; }
case_external_data_file()	{ hdr64 external_data_file 72 4; }
case_extended_l2()		{ hdr64 extended_l2 72 16; }
case_compression_bit_type_0()	{ hdr64 compression_bit_type_0 72 8; }
case_backing_offset_big()	{ hdr64 backing_offset_big 8 $((16#20000)); }
case_snapshots_unaligned()	{ hdr64 snapshots_unaligned 64 512; }
case_nb_snapshots_too_many()	{ hdr32 nb_snapshots_too_many 60 70000; }

case_compression_type_2()
{
	local img

	img=$(new_img compression_type_2 "$B")
	poke_be64 "$img" 72 8
	poke_hex "$img" 104 02
	expect_refused compression_type_2 "$img"
}

case_compression_type_without_bit()
{
	local img

	img=$(new_img compression_type_without_bit "$B")
	poke_hex "$img" 104 01
	expect_refused compression_type_without_bit "$img"
}

case_ext_past_cluster()
{
	local img

	img=$(new_img ext_past_cluster "$B")
	# The feature-name table extension at 112: its length at 116.
	poke_be32 "$img" 116 65536
	expect_refused ext_past_cluster "$img"
}

case_backing_format_ext_16()
{
	local img

	img=$(new_img backing_format_ext_16 "$B")
	poke_hex "$img" 112 e2792aca00000010
	expect_refused backing_format_ext_16 "$img"
}

case_snapshot_table_past_eof()
{
	local img

	img=$(new_img snapshot_table_past_eof "$B")
	poke_be32 "$img" 60 1
	poke_be64 "$img" 64 "$HUGE"
	expect_refused snapshot_table_past_eof "$img"
}

case_snapshot_extra_data_2000()
{
	local img off

	img=$(new_img snapshot_extra_data_2000 "$BS")
	off=$(peek_be64 "$img" 64)
	poke_be32 "$img" $((off + 36)) 2000
	expect_refused snapshot_extra_data_2000 "$img"
}

case_snapshot_l1_unaligned()
{
	local img off l1

	img=$(new_img snapshot_l1_unaligned "$BS")
	off=$(peek_be64 "$img" 64)
	l1=$(peek_be64 "$img" "$off")
	poke_be64 "$img" "$off" $((l1 + 512))
	expect_refused snapshot_l1_unaligned "$img"
}

case_backing_file()
{
	expect_refused backing_file "$(new_img backing_file "$BO")"
}

case_truncated()
{
	local img

	img=$(new_img truncated "$B")
	# Cut inside the refcount block: the L1 table is past the end.
	truncate -s $((16#28000)) "$img"
	expect_refused truncated "$img"
}

# patch64 IMG OFFSET OP VALUE: OR ("or") or add ("add") VALUE to the 64-bit
# big-endian value at OFFSET.
patch64()
{
	local v

	v=$(peek_be64 "$1" "$2")
	case $3 in
	or) v=$((v | $4)) ;;
	add) v=$((v + $4)) ;;
	esac
	poke_be64 "$1" "$2" "$v"
}

# Entry-level damage: found at attach or at read time.
l1_case()
{
	local img e

	img=$(new_img "$1" "$B")
	e=$(l1_entry "$img" 0)
	patch64 "$img" "$e" "$2" "$3"
	expect_eio "$1" "$img" 0 $((512 << 20))
}

l2_case()
{
	local img e

	img=$(new_img "$1" "${4:-$B}")
	e=$(l2_entry "$img" 0)
	patch64 "$img" "$e" "$2" "$3"
	expect_eio "$1" "$img" 0 65536
}

case_l1_entry_reserved()	{ l1_case l1_entry_reserved or 1; }
case_l1_entry_reserved_high()	{ l1_case l1_entry_reserved_high or $((1 << 56)); }
case_l1_entry_unaligned()	{ l1_case l1_entry_unaligned add 512; }
case_l1_entry_past_eof()	{ l1_case l1_entry_past_eof or "$HUGE"; }
case_l2_entry_reserved()	{ l2_case l2_entry_reserved or 2; }
case_l2_entry_reserved_high()	{ l2_case l2_entry_reserved_high or $((1 << 57)); }
case_l2_entry_unaligned()	{ l2_case l2_entry_unaligned add 512; }
case_l2_entry_past_eof()	{ l2_case l2_entry_past_eof or "$HUGE"; }
case_zero_flag_v2()		{ l2_case zero_flag_v2 or 1 "$B2"; }

case_compressed_past_eof()
{
	local img e i entry bad=-1 good=-1

	img=$(new_img compressed_past_eof "$BC")
	# Find a compressed entry (bit 62) and another cluster to read.
	for ((i = 0; i < 32; i++)); do
		e=$(l2_entry "$img" "$i")
		entry=$(peek_be64 "$img" "$e")
		if [ "$bad" -lt 0 ] && [ $(((entry >> 62) & 1)) -eq 1 ]; then
			bad=$i
			# 64 KiB clusters: the byte offset is bits 0..53.
			poke_be64 "$img" "$e" \
				$(((entry & ~((1 << 54) - 1)) | (1 << 40)))
		elif [ "$good" -lt 0 ] && [ "$entry" -ne 0 ]; then
			good=$i
		fi
	done
	if [ "$bad" -lt 0 ] || [ "$good" -lt 0 ]; then
		fail "compressed_past_eof: no compressed cluster found in the base image"
		return
	fi
	expect_eio compressed_past_eof "$img" $((bad << 16)) $((good << 16))
}

# Odd but valid: must attach read-only and read like qemu-img.
case_dirty_bit()
{
	local img

	img=$(new_img dirty_bit "$B")
	poke_be64 "$img" 72 1
	expect_reads dirty_bit "$img"
}

case_corrupt_bit()
{
	local img

	img=$(new_img corrupt_bit "$B")
	poke_be64 "$img" 72 2
	# qemu-img refuses to convert a corrupt image read-write, not read-only.
	expect_reads corrupt_bit "$img"
}

case_unknown_compat_bit()
{
	local img

	img=$(new_img unknown_compat_bit "$B")
	poke_be64 "$img" 80 $((1 << 40))
	expect_reads unknown_compat_bit "$img"
}

case_unknown_autoclear_bit()
{
	local img

	img=$(new_img unknown_autoclear_bit "$B")
	poke_be64 "$img" 88 $((1 << 40))
	expect_reads unknown_autoclear_bit "$img"
}

case_unknown_extension()
{
	local img

	img=$(new_img unknown_extension "$B")
	poke_hex "$img" 112 12345678
	expect_reads unknown_extension "$img"
}

CASES="control control_v2 control_compressed control_snapshot
magic version_1 version_4 cluster_bits_8 cluster_bits_22
header_length_100 header_length_big ext_past_cluster backing_format_ext_16
l1_size_too_small l1_size_over_limit l1_offset_past_eof l1_offset_unaligned
reftable_clusters_0 reftable_too_large reftable_unaligned reftable_past_eof
refcount_order_7 incompat_bit_20 crypt_aes crypt_luks_no_ext
external_data_file extended_l2 compression_bit_type_0 compression_type_2
compression_type_without_bit backing_offset_big snapshots_unaligned
nb_snapshots_too_many snapshot_table_past_eof snapshot_extra_data_2000
snapshot_l1_unaligned backing_file truncated
l1_entry_reserved l1_entry_reserved_high l1_entry_unaligned l1_entry_past_eof
l2_entry_reserved l2_entry_reserved_high l2_entry_unaligned l2_entry_past_eof
zero_flag_v2 compressed_past_eof
dirty_bit corrupt_bit unknown_compat_bit unknown_autoclear_bit
unknown_extension"

[ $# -gt 0 ] && CASES=$*

for c in $CASES; do
	"case_$c"
	rm -f "$WORKDIR/$c.qcow2"
done

finish
