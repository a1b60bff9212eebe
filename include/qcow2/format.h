/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * qcow2 on-disk format (QEMU docs/interop/qcow2.rst).  Every multi-byte
 * field is big endian.  Shared by the kernel module and the userspace
 * tools; it only needs <linux/types.h>.
 *
 * The structures are __packed: header extensions start wherever
 * header_length says (QEMU does not enforce its multiple of 8), so they
 * are read from any address.  Userspace builds get __packed from
 * tools/include/qcow2_kcompat.h; format.c asserts the sizes.
 */
#ifndef _QCOW2_FORMAT_H
#define _QCOW2_FORMAT_H

#include <linux/const.h>
#include <linux/types.h>

#define QCOW2_MAGIC			0x514649fbU	/* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS		9
#define QCOW2_MAX_CLUSTER_BITS		21
#define QCOW2_V2_HEADER_SIZE		72
#define QCOW2_V3_HEADER_MIN_SIZE	104
#define QCOW2_V3_HEADER_SIZE		112	/* what QEMU writes */
#define QCOW2_MAX_REFCOUNT_ORDER	6

/* QEMU's limits (block/qcow2.h) */
#define QCOW2_MAX_L1_BYTES		(32ULL << 20)
#define QCOW2_MAX_REFTABLE_BYTES	(8ULL << 20)
#define QCOW2_MAX_SNAPSHOTS		65536U
#define QCOW2_MAX_SNAPSHOTS_BYTES	(1024ULL * QCOW2_MAX_SNAPSHOTS)
#define QCOW2_MAX_SNAPSHOT_EXTRA	1024U
#define QCOW2_MAX_BACKING_NAME		1023U
#define QCOW2_MAX_HOST_OFFSET		(_BITULL(56) - 1)

/* Incompatible feature bits (header offset 72) */
#define QCOW2_INCOMPAT_DIRTY		_BITULL(0)
#define QCOW2_INCOMPAT_CORRUPT		_BITULL(1)
#define QCOW2_INCOMPAT_DATA_FILE	_BITULL(2)
#define QCOW2_INCOMPAT_COMPRESSION	_BITULL(3)
#define QCOW2_INCOMPAT_EXTL2		_BITULL(4)
#define QCOW2_INCOMPAT_KNOWN		0x1fULL

/* Compatible feature bits (offset 80) */
#define QCOW2_COMPAT_LAZY_REFCOUNTS	_BITULL(0)

/* Autoclear feature bits (offset 88) */
#define QCOW2_AUTOCLEAR_BITMAPS		_BITULL(0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW	_BITULL(1)
#define QCOW2_AUTOCLEAR_KNOWN		0x3ULL

#define QCOW2_CRYPT_NONE		0
#define QCOW2_CRYPT_AES			1
#define QCOW2_CRYPT_LUKS		2

#define QCOW2_COMPRESSION_DEFLATE	0
#define QCOW2_COMPRESSION_ZSTD		1

/* Header extension types */
#define QCOW2_EXT_END			0x00000000U
#define QCOW2_EXT_BACKING_FORMAT	0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE		0x6803f857U
#define QCOW2_EXT_BITMAPS		0x23852875U
#define QCOW2_EXT_CRYPTO		0x0537be77U
#define QCOW2_EXT_DATA_FILE		0x44415441U

/* L1, L2 and refcount-table entries */
#define QCOW2_OFLAG_COPIED		_BITULL(63)
#define QCOW2_OFLAG_COMPRESSED		_BITULL(62)
#define QCOW2_OFLAG_ZERO		_BITULL(0)
#define QCOW2_L1E_OFFSET_MASK		0x00fffffffffffe00ULL
#define QCOW2_L1E_RESERVED_MASK		0x7f000000000001ffULL
#define QCOW2_L2E_OFFSET_MASK		0x00fffffffffffe00ULL
#define QCOW2_L2E_STD_RESERVED_MASK	0x3f000000000001feULL
#define QCOW2_REFT_OFFSET_MASK		0xfffffffffffffe00ULL
#define QCOW2_REFT_RESERVED_MASK	0x1ffULL

/**
 * struct qcow2_header_disk - the fixed header, v2 part and v3 additions
 *
 * A v2 header ends at @incompatible_features (72 bytes).
 */
struct qcow2_header_disk {
	__be32 magic;
	__be32 version;
	__be64 backing_file_offset;
	__be32 backing_file_size;
	__be32 cluster_bits;
	__be64 size;
	__be32 crypt_method;
	__be32 l1_size;
	__be64 l1_table_offset;
	__be64 refcount_table_offset;
	__be32 refcount_table_clusters;
	__be32 nb_snapshots;
	__be64 snapshots_offset;
	/* v3 */
	__be64 incompatible_features;
	__be64 compatible_features;
	__be64 autoclear_features;
	__be32 refcount_order;
	__be32 header_length;
	__u8 compression_type;
	__u8 padding[7];
} __packed;

/* Header extension header; @len bytes of data follow, padded to 8. */
struct qcow2_ext_disk {
	__be32 type;
	__be32 len;
} __packed;

/* One entry of the feature name table extension. */
struct qcow2_feature_name_disk {
	__u8 type;	/* 0 incompatible, 1 compatible, 2 autoclear */
	__u8 bit;
	char name[46];
} __packed;

/* Bitmaps extension data (autoclear bit 0). */
struct qcow2_bitmaps_ext_disk {
	__be32 nb_bitmaps;
	__be32 reserved;
	__be64 bitmap_directory_size;
	__be64 bitmap_directory_offset;
} __packed;

/*
 * Fixed part of a snapshot table entry.  Extra data (@extra_data_size
 * bytes), the ID string and the name follow; the entry is padded to 8.
 */
struct qcow2_snapshot_disk {
	__be64 l1_table_offset;
	__be32 l1_size;
	__be16 id_str_size;
	__be16 name_size;
	__be32 date_sec;
	__be32 date_nsec;
	__be64 vm_clock_nsec;
	__be32 vm_state_size;
	__be32 extra_data_size;
} __packed;

/* The extra data QEMU knows (each field present if extra_data_size covers it). */
struct qcow2_snapshot_extra_disk {
	__be64 vm_state_size_large;
	__be64 disk_size;
	__be64 icount;
} __packed;

#endif /* _QCOW2_FORMAT_H */
