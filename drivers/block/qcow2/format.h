/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Decoding and validation of qcow2 metadata: the only code that interprets
 * image bytes.  Pure functions: no I/O, no locks, no allocation, no
 * logging.  Built into the module and, through tools/include/, into the
 * userspace unit tests and fuzzers.
 *
 * Every function that can reject input returns 0 or a negative errno and,
 * on failure, points *why at a static string that says what is wrong (the
 * wording follows QEMU's messages where QEMU has one).
 */
#ifndef _QCOW2_PARSE_H
#define _QCOW2_PARSE_H

#include "format_deps.h"
#include <qcow2/format.h>

/**
 * struct qcow2_layout - validated, host-endian view of an image header
 *
 * Filled by qcow2_parse_header() and completed by qcow2_parse_extensions().
 */
struct qcow2_layout {
	u32 version;
	u32 cluster_bits;
	u64 cluster_size;
	u64 size;			/* virtual size in bytes */
	u64 backing_file_offset;
	u32 backing_file_size;
	u32 crypt_method;
	u32 l1_size;			/* entries */
	u64 l1_table_offset;
	u64 refcount_table_offset;
	u32 refcount_table_clusters;
	u32 nb_snapshots;
	u64 snapshots_offset;
	u64 incompatible_features;
	u64 compatible_features;
	u64 autoclear_features;
	u32 refcount_order;
	u32 header_length;		/* 72 for v2 */
	u32 compression_type;
	u32 l2_bits;			/* log2 of L2 entries per table */
	u32 csize_shift;		/* compressed descriptor: x = 62 - (cluster_bits - 8) */
	u64 csize_mask;
	u64 coffset_mask;
	/* from the header extensions */
	u32 ext_end;			/* offset just past the extension area */
	bool has_backing_format;
	bool has_feature_table;
	bool has_bitmaps_ext;
	bool has_crypto_ext;
	bool has_data_file_ext;
	u32 nb_bitmaps;
};

/**
 * qcow2_parse_header() - decode and validate the fixed header
 * @buf: the first bytes of the image
 * @len: bytes valid at @buf; at least 512, normally min(file size, 2 MiB)
 * @file_size: size of the image file in bytes
 * @lay: filled on success
 * @why: set to a message on failure
 *
 * Checks every field as QEMU's qcow2_do_open() does, plus bounds of the
 * L1 table, refcount table and snapshot table against @file_size.
 * Features the driver does not implement (encryption, external data file,
 * extended L2, unknown incompatible bits) give -EOPNOTSUPP; malformed
 * fields give -EINVAL, tables over QEMU's size limits -EFBIG.  Dirty and
 * corrupt bits are reported in @lay, not rejected: that is policy.
 *
 * Return: 0 or negative errno.
 */
int qcow2_parse_header(const void *buf, size_t len, u64 file_size,
		       struct qcow2_layout *lay, const char **why);

/**
 * qcow2_parse_extensions() - walk the header extensions
 * @buf: the image's first cluster (or the part of it inside the file)
 * @len: bytes valid at @buf
 * @lay: header already parsed; extension facts are added
 * @why: set to a message on failure
 *
 * Return: 0, -EINVAL for a malformed area (an extension running past the
 * end of the area, a bad length for a known type, a duplicate type).
 */
int qcow2_parse_extensions(const void *buf, size_t len,
			   struct qcow2_layout *lay, const char **why);

/**
 * qcow2_l1_entries_needed() - L1 entries needed to map @size bytes
 * @lay: the image (cluster_bits and l2_bits used)
 * @size: virtual size in bytes
 *
 * Return: QEMU's size_to_l1().
 */
u64 qcow2_l1_entries_needed(const struct qcow2_layout *lay, u64 size);

enum qcow2_cluster_type {
	QCOW2_CLUSTER_UNALLOCATED,
	QCOW2_CLUSTER_ZERO_PLAIN,
	QCOW2_CLUSTER_ZERO_ALLOC,
	QCOW2_CLUSTER_NORMAL,
	QCOW2_CLUSTER_COMPRESSED,
};

/**
 * struct qcow2_mapping - what one L2 entry says about one guest cluster
 * @type: cluster type, QEMU's qcow2_get_cluster_type() order
 * @host_offset: NORMAL/ZERO_ALLOC: cluster-aligned host offset;
 *	COMPRESSED: byte offset of the compressed data
 * @csize: COMPRESSED only: bytes of compressed data to read
 * @copied: the COPIED flag
 */
struct qcow2_mapping {
	enum qcow2_cluster_type type;
	u64 host_offset;
	u64 csize;
	bool copied;
};

/**
 * qcow2_decode_l1_entry() - decode an L1 entry (host endian)
 * @lay: the image
 * @l1e: the entry, already converted from big endian
 * @l2_offset: 0 when no L2 table is allocated, else its host offset
 * @why: set on failure
 *
 * Return: 0; -EUCLEAN for reserved bits set or an unaligned offset.
 */
int qcow2_decode_l1_entry(const struct qcow2_layout *lay, u64 l1e,
			  u64 *l2_offset, const char **why);

/**
 * qcow2_decode_l2_entry() - decode a standard (64-bit) L2 entry
 * @lay: the image
 * @l2e: the entry, host endian
 * @map: filled on success
 * @why: set on failure
 *
 * Return: 0; -EUCLEAN for reserved bits, an unaligned host offset, a zero
 * flag in a v2 image, COPIED on a compressed entry, or a compressed
 * offset beyond QCOW2_MAX_HOST_OFFSET.
 */
int qcow2_decode_l2_entry(const struct qcow2_layout *lay, u64 l2e,
			  struct qcow2_mapping *map, const char **why);

/**
 * qcow2_decode_reftable_entry() - decode a refcount-table entry
 * @lay: the image
 * @e: entry, host endian
 * @block_offset: 0 if unallocated, else the refcount block's offset
 * @why: set on failure
 *
 * Return: 0; -EUCLEAN for reserved bits or an unaligned offset.
 */
int qcow2_decode_reftable_entry(const struct qcow2_layout *lay, u64 e,
				u64 *block_offset, const char **why);

/**
 * qcow2_refcount_get() - read entry @index of a refcount block
 * @block: one cluster of refcount block
 * @refcount_order: log2 of the entry width in bits (0..6)
 * @index: entry index, < cluster_size * 8 >> refcount_order
 *
 * Sub-byte entries are packed from the least significant bit; 16, 32 and
 * 64-bit entries are big endian.
 */
u64 qcow2_refcount_get(const void *block, u32 refcount_order, u64 index);

/**
 * qcow2_refcount_set() - set entry @index of a refcount block
 * @block: one cluster of refcount block
 * @refcount_order: log2 of the entry width in bits
 * @index: entry index
 * @value: new refcount; must fit the width
 */
void qcow2_refcount_set(void *block, u32 refcount_order, u64 index, u64 value);

/* Guest offset helpers */
static inline u64 qcow2_l2_entries(const struct qcow2_layout *lay)
{
	return 1ULL << lay->l2_bits;
}

static inline u64 qcow2_l1_index(const struct qcow2_layout *lay, u64 off)
{
	return off >> (lay->cluster_bits + lay->l2_bits);
}

static inline u64 qcow2_l2_index(const struct qcow2_layout *lay, u64 off)
{
	return (off >> lay->cluster_bits) & (qcow2_l2_entries(lay) - 1);
}

/**
 * qcow2_check_table() - bounds of an on-disk table
 * @lay: the image
 * @offset: host offset of the table
 * @entries: number of entries
 * @entry_size: bytes per entry
 * @max_bytes: QEMU's limit for this table
 * @file_size: image file size
 * @why: set on failure
 *
 * Return: 0; -EFBIG over @max_bytes; -EINVAL when unaligned to a cluster
 * or reaching past @file_size.
 */
int qcow2_check_table(const struct qcow2_layout *lay, u64 offset, u64 entries,
		      u64 entry_size, u64 max_bytes, u64 file_size,
		      const char **why);

/**
 * struct qcow2_snapshot_info - one decoded snapshot table entry
 * @l1_table_offset: host offset of the snapshot's L1 table
 * @l1_size: entries in that table
 * @date_sec: creation time, seconds
 * @date_nsec: creation time, nanoseconds
 * @vm_clock_nsec: guest clock at creation
 * @vm_state_size: VM state bytes (the 64-bit field if present)
 * @disk_size: virtual size at creation (the current size if absent)
 * @icount: instruction count, or -1
 * @extra_data_size: bytes of extra data in the entry
 * @id_offset: offset of the ID string within the entry
 * @id_len: bytes of ID string (not NUL-terminated in the image)
 * @name_offset: offset of the name within the entry
 * @name_len: bytes of name
 * @entry_len: bytes the entry occupies, padding to 8 included
 */
struct qcow2_snapshot_info {
	u64 l1_table_offset;
	u32 l1_size;
	u32 date_sec;
	u32 date_nsec;
	u64 vm_clock_nsec;
	u64 vm_state_size;
	u64 disk_size;
	s64 icount;
	u32 extra_data_size;
	u32 id_offset;
	u32 id_len;
	u32 name_offset;
	u32 name_len;
	u32 entry_len;
};

/**
 * qcow2_parse_snapshot() - decode one snapshot table entry
 * @lay: the image
 * @buf: start of the entry
 * @len: bytes available from @buf to the end of the table buffer
 * @file_size: image file size, to check the snapshot's L1 table
 * @sn: filled on success
 * @why: set on failure
 *
 * Checks the extra-data size (<= 1024, >= 16 in v3 as QEMU's check
 * requires), that ID and name lie within @len, and the snapshot's L1
 * table as qcow2_check_table() does.
 *
 * Return: 0, -EINVAL, -EFBIG.
 */
int qcow2_parse_snapshot(const struct qcow2_layout *lay, const void *buf,
			 size_t len, u64 file_size,
			 struct qcow2_snapshot_info *sn, const char **why);

/**
 * qcow2_snapshot_entry_size() - bytes of a snapshot table entry as written
 * @extra_len: unknown extra data kept past the 24 bytes QEMU knows
 * @id_len: bytes of the ID
 * @name_len: bytes of the name
 *
 * Return: the size, padded to 8 bytes.
 */
u32 qcow2_snapshot_entry_size(u32 extra_len, u32 id_len, u32 name_len);

/**
 * qcow2_encode_snapshot() - write one snapshot table entry as QEMU does
 * @buf: room for qcow2_snapshot_entry_size() bytes; padding is zeroed
 * @sn: l1_table_offset, l1_size, date_sec, date_nsec, vm_clock_nsec,
 *	vm_state_size, disk_size and icount are used
 * @extra: unknown extra data to keep, or NULL
 * @extra_len: its length
 * @id: the ID (not NUL-terminated on disk)
 * @id_len: its length, at most 65535
 * @name: the name
 * @name_len: its length, at most 65535
 *
 * The extra data is always at least the 24 bytes QEMU writes (64-bit VM
 * state size, disk size, icount).
 *
 * Return: bytes written.
 */
u32 qcow2_encode_snapshot(void *buf, const struct qcow2_snapshot_info *sn,
			  const void *extra, u32 extra_len, const char *id,
			  u32 id_len, const char *name, u32 name_len);

/**
 * qcow2_snapshot_unknown_extra() - where a parsed entry's unknown extra
 *	data is
 * @sn: a parsed entry
 * @offset: set to its offset within the entry
 *
 * Return: its length (0 when the entry has no more than QEMU knows).
 */
u32 qcow2_snapshot_unknown_extra(const struct qcow2_snapshot_info *sn,
				 u32 *offset);

/**
 * qcow2_check_compressed() - check the host range of a compressed cluster
 * @lay: the image
 * @map: a COMPRESSED mapping
 * @file_size: image file size
 * @why: set on failure
 *
 * Return: 0 when [host_offset, host_offset + csize) lies inside the file
 * (the last sector may run past the end, as QEMU's writer may end the
 * file there), -EUCLEAN otherwise.
 */
int qcow2_check_compressed(const struct qcow2_layout *lay,
			   const struct qcow2_mapping *map, u64 file_size,
			   const char **why);

#endif /* _QCOW2_PARSE_H */
