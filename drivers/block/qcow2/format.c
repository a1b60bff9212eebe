// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 metadata decoding and validation.
 *
 * Every byte read from an image goes through here before the rest of the
 * driver looks at it, so the checks follow QEMU's qcow2_do_open() order
 * and wording, plus bounds against the real file size that QEMU leaves to
 * later reads.  The same file is compiled into the userspace unit tests
 * and the fuzzer (see format_deps.h), which is why it must stay free of
 * allocation, I/O, logging and global state.
 */
#include "format.h"

static_assert(sizeof(struct qcow2_header_disk) == QCOW2_V3_HEADER_SIZE);
static_assert(sizeof(struct qcow2_ext_disk) == 8);
static_assert(sizeof(struct qcow2_feature_name_disk) == 48);
static_assert(sizeof(struct qcow2_bitmaps_ext_disk) == 24);
static_assert(sizeof(struct qcow2_snapshot_disk) == 40);
static_assert(sizeof(struct qcow2_snapshot_extra_disk) == 24);

#define QCOW2_SNAPSHOT_HDR_SIZE		((u32)sizeof(struct qcow2_snapshot_disk))
#define QCOW2_EXT_HDR_SIZE		((u32)sizeof(struct qcow2_ext_disk))

/* Offsets of the v3 fields that may or may not be covered by header_length */
#define QCOW2_HDR_COMPRESSION_TYPE	104U
#define QCOW2_HDR_PADDING		105U

/* Snapshot extra data fields are present when extra_data_size covers them */
#define QCOW2_SN_EXTRA_VMSTATE_END	8U
#define QCOW2_SN_EXTRA_DISK_SIZE_END	16U
#define QCOW2_SN_EXTRA_ICOUNT_END	24U

#define QCOW2_BACKING_FORMAT_MAX	16U
#define QCOW2_MAX_BITMAPS		65535U
#define QCOW2_MAX_BITMAP_DIRECTORY	(1024ULL * QCOW2_MAX_BITMAPS)

static inline bool qcow2_unaligned(const struct qcow2_layout *lay, u64 off)
{
	return off & (lay->cluster_size - 1);
}

u64 qcow2_l1_entries_needed(const struct qcow2_layout *lay, u64 size)
{
	u32 shift = lay->cluster_bits + lay->l2_bits;
	u64 mask = (1ULL << shift) - 1;

	/* Rounding up by adding first would overflow for sizes near 2^64. */
	return (size >> shift) + !!(size & mask);
}

/*
 * Size and placement of a table are checked separately because QEMU
 * validates the active L1 size, then the virtual size against it, and
 * only then the L1 offset.
 */
static int qcow2_table_bytes(u64 entries, u64 entry_size, u64 max_bytes,
			     u64 *bytes)
{
	if (check_mul_overflow(entries, entry_size, bytes) || *bytes > max_bytes)
		return -EFBIG;
	return 0;
}

static int qcow2_table_place(const struct qcow2_layout *lay, u64 offset,
			     u64 bytes, u64 file_size)
{
	u64 end;

	if (qcow2_unaligned(lay, offset))
		return -EINVAL;
	/* An empty table is never read, wherever it claims to be. */
	if (!bytes)
		return 0;
	if (check_add_overflow(offset, bytes, &end) || end > file_size)
		return -EINVAL;
	return 0;
}

int qcow2_check_table(const struct qcow2_layout *lay, u64 offset, u64 entries,
		      u64 entry_size, u64 max_bytes, u64 file_size,
		      const char **why)
{
	u64 bytes;

	if (qcow2_table_bytes(entries, entry_size, max_bytes, &bytes)) {
		*why = "Metadata table too large";
		return -EFBIG;
	}
	if (qcow2_table_place(lay, offset, bytes, file_size)) {
		*why = "Metadata table offset invalid";
		return -EINVAL;
	}
	return 0;
}

static int qcow2_check_features(const struct qcow2_layout *lay,
				const char **why)
{
	u64 incompat = lay->incompatible_features;

	if (incompat & ~QCOW2_INCOMPAT_KNOWN) {
		*why = "Unsupported qcow2 feature(s): unknown incompatible feature bits";
		return -EOPNOTSUPP;
	}
	if (incompat & QCOW2_INCOMPAT_DATA_FILE) {
		*why = "Unsupported qcow2 feature(s): external data file";
		return -EOPNOTSUPP;
	}
	if (incompat & QCOW2_INCOMPAT_EXTL2) {
		*why = "Unsupported qcow2 feature(s): extended L2 entries";
		return -EOPNOTSUPP;
	}
	return 0;
}

static int qcow2_check_compression(const struct qcow2_layout *lay,
				   const char **why)
{
	bool bit = lay->incompatible_features & QCOW2_INCOMPAT_COMPRESSION;

	switch (lay->compression_type) {
	case QCOW2_COMPRESSION_DEFLATE:
		if (bit) {
			*why = "qcow2: Compression type incompatible feature bit must not be set";
			return -EINVAL;
		}
		return 0;
	case QCOW2_COMPRESSION_ZSTD:
		if (!bit) {
			*why = "qcow2: Compression type incompatible feature bit must be set";
			return -EINVAL;
		}
		return 0;
	default:
		*why = "qcow2: unknown compression type";
		return -EOPNOTSUPP;
	}
}

/* The v3 fields after the 72-byte v2 header, as far as header_length says. */
static int qcow2_parse_v3_fields(const struct qcow2_header_disk *h,
				 size_t len, struct qcow2_layout *lay,
				 const char **why)
{
	const u8 *raw = (const u8 *)h;
	u32 i;

	if (len < QCOW2_V3_HEADER_MIN_SIZE) {
		*why = "qcow2 header truncated";
		return -EINVAL;
	}
	lay->header_length = be32_to_cpu(h->header_length);
	if (lay->header_length < QCOW2_V3_HEADER_MIN_SIZE) {
		*why = "qcow2 header too short";
		return -EINVAL;
	}
	if (lay->header_length > lay->cluster_size) {
		*why = "qcow2 header exceeds cluster size";
		return -EINVAL;
	}
	if (len < lay->header_length && len < QCOW2_V3_HEADER_SIZE) {
		*why = "qcow2 header truncated";
		return -EINVAL;
	}
	lay->incompatible_features = be64_to_cpu(h->incompatible_features);
	lay->compatible_features = be64_to_cpu(h->compatible_features);
	lay->autoclear_features = be64_to_cpu(h->autoclear_features);
	lay->refcount_order = be32_to_cpu(h->refcount_order);
	if (lay->header_length > QCOW2_HDR_COMPRESSION_TYPE)
		lay->compression_type = h->compression_type;

	/* Only the padding that header_length actually covers is read. */
	for (i = QCOW2_HDR_PADDING;
	     i < QCOW2_V3_HEADER_SIZE && i < lay->header_length; i++) {
		if (raw[i]) {
			*why = "qcow2 header padding bytes must be zero";
			return -EINVAL;
		}
	}
	return 0;
}

int qcow2_parse_header(const void *buf, size_t len, u64 file_size,
		       struct qcow2_layout *lay, const char **why)
{
	const struct qcow2_header_disk *h = buf;
	u64 l1_bytes, l1_needed, reft_bytes, sn_bytes, end;
	int ret;

	*lay = (struct qcow2_layout){ 0 };

	if (len < sizeof(h->magic) || be32_to_cpu(h->magic) != QCOW2_MAGIC) {
		*why = "Image is not in qcow2 format";
		return -EINVAL;
	}
	if (len < QCOW2_V2_HEADER_SIZE) {
		*why = "qcow2 header truncated";
		return -EINVAL;
	}
	lay->version = be32_to_cpu(h->version);
	if (lay->version != 2 && lay->version != 3) {
		*why = "Unsupported qcow2 version";
		return -EOPNOTSUPP;
	}
	lay->cluster_bits = be32_to_cpu(h->cluster_bits);
	if (lay->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    lay->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		*why = "Unsupported cluster size";
		return -EINVAL;
	}
	lay->cluster_size = 1ULL << lay->cluster_bits;
	lay->l2_bits = lay->cluster_bits - 3;
	lay->csize_shift = 62 - (lay->cluster_bits - 8);
	lay->csize_mask = (1ULL << (lay->cluster_bits - 8)) - 1;
	lay->coffset_mask = (1ULL << lay->csize_shift) - 1;

	lay->backing_file_offset = be64_to_cpu(h->backing_file_offset);
	lay->backing_file_size = be32_to_cpu(h->backing_file_size);
	lay->size = be64_to_cpu(h->size);
	lay->crypt_method = be32_to_cpu(h->crypt_method);
	lay->l1_size = be32_to_cpu(h->l1_size);
	lay->l1_table_offset = be64_to_cpu(h->l1_table_offset);
	lay->refcount_table_offset = be64_to_cpu(h->refcount_table_offset);
	lay->refcount_table_clusters = be32_to_cpu(h->refcount_table_clusters);
	lay->nb_snapshots = be32_to_cpu(h->nb_snapshots);
	lay->snapshots_offset = be64_to_cpu(h->snapshots_offset);

	if (lay->version == 2) {
		lay->refcount_order = 4;
		lay->header_length = QCOW2_V2_HEADER_SIZE;
	} else {
		ret = qcow2_parse_v3_fields(h, len, lay, why);
		if (ret)
			return ret;
	}

	if (lay->backing_file_offset > lay->cluster_size) {
		*why = "Invalid backing file offset";
		return -EINVAL;
	}
	ret = qcow2_check_features(lay, why);
	if (ret)
		return ret;
	if (lay->refcount_order > QCOW2_MAX_REFCOUNT_ORDER) {
		*why = "Reference count entry width too large; may not exceed 64 bits";
		return -EINVAL;
	}
	ret = qcow2_check_compression(lay, why);
	if (ret)
		return ret;
	if (lay->crypt_method != QCOW2_CRYPT_NONE) {
		*why = "Unsupported qcow2 feature(s): encryption";
		return -EOPNOTSUPP;
	}

	if (!lay->refcount_table_clusters) {
		*why = "Image does not contain a reference count table";
		return -EINVAL;
	}
	if (qcow2_table_bytes(lay->refcount_table_clusters, lay->cluster_size,
			      QCOW2_MAX_REFTABLE_BYTES, &reft_bytes)) {
		*why = "Reference count table too large";
		return -EFBIG;
	}
	if (qcow2_table_place(lay, lay->refcount_table_offset, reft_bytes,
			      file_size)) {
		*why = "Reference count table offset invalid";
		return -EINVAL;
	}

	if (qcow2_table_bytes(lay->nb_snapshots, QCOW2_SNAPSHOT_HDR_SIZE,
			      QCOW2_SNAPSHOT_HDR_SIZE * QCOW2_MAX_SNAPSHOTS,
			      &sn_bytes)) {
		*why = "Snapshot table too large";
		return -EFBIG;
	}
	/*
	 * Entries are variable-sized, so only the start of the table can be
	 * checked here; qcow2_parse_snapshot() bounds each entry.
	 */
	if (qcow2_unaligned(lay, lay->snapshots_offset) ||
	    check_add_overflow(lay->snapshots_offset, sn_bytes, &end) ||
	    (lay->nb_snapshots && lay->snapshots_offset >= file_size)) {
		*why = "Snapshot table offset invalid";
		return -EINVAL;
	}

	if (qcow2_table_bytes(lay->l1_size, sizeof(u64), QCOW2_MAX_L1_BYTES,
			      &l1_bytes)) {
		*why = "Active L1 table too large";
		return -EFBIG;
	}
	l1_needed = qcow2_l1_entries_needed(lay, lay->size);
	if (l1_needed > INT_MAX) {
		*why = "Image is too big";
		return -EFBIG;
	}
	if (lay->l1_size < l1_needed) {
		*why = "L1 table is too small";
		return -EINVAL;
	}
	if (qcow2_table_place(lay, lay->l1_table_offset, l1_bytes, file_size)) {
		*why = "Active L1 table offset invalid";
		return -EINVAL;
	}

	/*
	 * The name lies inside cluster 0, and the file reaches past it since
	 * the refcount table is at least one cluster inside the file.
	 */
	if (lay->backing_file_offset &&
	    (lay->backing_file_size > QCOW2_MAX_BACKING_NAME ||
	     lay->backing_file_size >
	     lay->cluster_size - lay->backing_file_offset)) {
		*why = "Backing file name too long";
		return -EINVAL;
	}

	if ((lay->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    !(lay->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)) {
		*why = "data-file-raw requires a data file";
		return -EINVAL;
	}
	return 0;
}

static int qcow2_parse_bitmaps_ext(const u8 *data, struct qcow2_layout *lay,
				   const char **why)
{
	const struct qcow2_bitmaps_ext_disk *b = (const void *)data;
	u32 nb = be32_to_cpu(b->nb_bitmaps);

	/*
	 * With the autoclear bit clear, a program without bitmap support
	 * wrote the image: QEMU ignores the bitmaps, so they are not
	 * validated either.  The extension is still reported as present.
	 */
	if (!(lay->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	if (be32_to_cpu(b->reserved)) {
		*why = "bitmaps_ext: Reserved field is not zero";
		return -EINVAL;
	}
	if (!nb) {
		*why = "found bitmaps extension with zero bitmaps";
		return -EINVAL;
	}
	if (nb > QCOW2_MAX_BITMAPS) {
		*why = "bitmaps_ext: Image has too many bitmaps";
		return -EINVAL;
	}
	if (qcow2_unaligned(lay, be64_to_cpu(b->bitmap_directory_offset))) {
		*why = "bitmaps_ext: invalid bitmap directory offset";
		return -EINVAL;
	}
	if (be64_to_cpu(b->bitmap_directory_size) > QCOW2_MAX_BITMAP_DIRECTORY) {
		*why = "bitmaps_ext: bitmap directory size exceeds the maximum supported size";
		return -EINVAL;
	}
	lay->nb_bitmaps = nb;
	return 0;
}

static int qcow2_parse_one_ext(u32 type, u32 ext_len, const u8 *data,
			       struct qcow2_layout *lay, const char **why)
{
	bool *seen;

	switch (type) {
	case QCOW2_EXT_BACKING_FORMAT:
		if (ext_len >= QCOW2_BACKING_FORMAT_MAX) {
			*why = "ext_backing_format: len too large (>=16)";
			return -EINVAL;
		}
		seen = &lay->has_backing_format;
		break;
	case QCOW2_EXT_FEATURE_TABLE:
		seen = &lay->has_feature_table;
		break;
	case QCOW2_EXT_CRYPTO:
		if (lay->crypt_method != QCOW2_CRYPT_LUKS) {
			*why = "CRYPTO header extension only expected with LUKS encryption method";
			return -EINVAL;
		}
		if (ext_len != 2 * sizeof(u64)) {
			*why = "CRYPTO header extension size is not 16 bytes";
			return -EINVAL;
		}
		seen = &lay->has_crypto_ext;
		break;
	case QCOW2_EXT_BITMAPS:
		if (ext_len != sizeof(struct qcow2_bitmaps_ext_disk)) {
			*why = "bitmaps_ext: Invalid extension length";
			return -EINVAL;
		}
		seen = &lay->has_bitmaps_ext;
		break;
	case QCOW2_EXT_DATA_FILE:
		seen = &lay->has_data_file_ext;
		break;
	default:
		/* Unknown extensions are the caller's to preserve. */
		return 0;
	}

	if (*seen) {
		*why = "Duplicate header extension";
		return -EINVAL;
	}
	*seen = true;
	if (type == QCOW2_EXT_BITMAPS)
		return qcow2_parse_bitmaps_ext(data, lay, why);
	return 0;
}

int qcow2_parse_extensions(const void *buf, size_t len,
			   struct qcow2_layout *lay, const char **why)
{
	const u8 *p = buf;
	u64 off, end;
	int ret;

	lay->has_backing_format = false;
	lay->has_feature_table = false;
	lay->has_bitmaps_ext = false;
	lay->has_crypto_ext = false;
	lay->has_data_file_ext = false;
	lay->nb_bitmaps = 0;

	off = lay->version == 2 ? QCOW2_V2_HEADER_SIZE : lay->header_length;
	end = lay->backing_file_offset ? lay->backing_file_offset :
		lay->cluster_size;
	/* Bytes beyond the buffer are beyond the file: nothing to parse. */
	if (end > len)
		end = len;

	while (off < end) {
		const struct qcow2_ext_disk *ext = (const void *)(p + off);
		u32 type, ext_len;

		if (end - off < QCOW2_EXT_HDR_SIZE) {
			*why = "Header extension too large";
			return -EINVAL;
		}
		type = be32_to_cpu(ext->type);
		ext_len = be32_to_cpu(ext->len);
		off += QCOW2_EXT_HDR_SIZE;
		if (ext_len > end - off) {
			*why = "Header extension too large";
			return -EINVAL;
		}
		if (type == QCOW2_EXT_END) {
			lay->ext_end = off;
			return 0;
		}
		ret = qcow2_parse_one_ext(type, ext_len, p + off, lay, why);
		if (ret)
			return ret;
		/* off + ext_len <= end <= len, so rounding up cannot overflow */
		off += ((u64)ext_len + 7) & ~7ULL;
	}
	lay->ext_end = off < end ? off : end;
	return 0;
}

int qcow2_decode_l1_entry(const struct qcow2_layout *lay, u64 l1e,
			  u64 *l2_offset, const char **why)
{
	u64 off = l1e & QCOW2_L1E_OFFSET_MASK;

	*l2_offset = 0;
	if (l1e & QCOW2_L1E_RESERVED_MASK) {
		*why = "L1 entry has reserved bits set";
		return -EUCLEAN;
	}
	if (qcow2_unaligned(lay, off)) {
		*why = "L2 table offset unaligned";
		return -EUCLEAN;
	}
	*l2_offset = off;
	return 0;
}

static int qcow2_decode_compressed(const struct qcow2_layout *lay, u64 l2e,
				   struct qcow2_mapping *map, const char **why)
{
	u64 off = l2e & lay->coffset_mask;
	u64 sectors;

	if (l2e & QCOW2_OFLAG_COPIED) {
		*why = "copied flag must never be set for compressed clusters";
		return -EUCLEAN;
	}
	if (off > QCOW2_MAX_HOST_OFFSET) {
		*why = "Compressed cluster offset beyond the maximum host offset";
		return -EUCLEAN;
	}
	sectors = ((l2e >> lay->csize_shift) & lay->csize_mask) + 1;
	map->type = QCOW2_CLUSTER_COMPRESSED;
	map->host_offset = off;
	map->csize = sectors * 512 - (off & 511);
	return 0;
}

int qcow2_decode_l2_entry(const struct qcow2_layout *lay, u64 l2e,
			  struct qcow2_mapping *map, const char **why)
{
	u64 off = l2e & QCOW2_L2E_OFFSET_MASK;

	*map = (struct qcow2_mapping){ .type = QCOW2_CLUSTER_UNALLOCATED };
	map->copied = l2e & QCOW2_OFLAG_COPIED;

	if (l2e & QCOW2_OFLAG_COMPRESSED)
		return qcow2_decode_compressed(lay, l2e, map, why);

	if (l2e & QCOW2_L2E_STD_RESERVED_MASK) {
		*why = "L2 entry has reserved bits set";
		return -EUCLEAN;
	}
	if (l2e & QCOW2_OFLAG_ZERO) {
		if (lay->version < 3) {
			*why = "Zero cluster entry found in pre-v3 image";
			return -EUCLEAN;
		}
		map->type = off ? QCOW2_CLUSTER_ZERO_ALLOC :
			QCOW2_CLUSTER_ZERO_PLAIN;
	} else if (off) {
		map->type = QCOW2_CLUSTER_NORMAL;
	} else {
		/* COPIED without an offset only means something with a data file */
		return 0;
	}
	if (qcow2_unaligned(lay, off)) {
		*why = "Cluster allocation offset unaligned";
		return -EUCLEAN;
	}
	map->host_offset = off;
	return 0;
}

int qcow2_decode_reftable_entry(const struct qcow2_layout *lay, u64 e,
				u64 *block_offset, const char **why)
{
	u64 off = e & QCOW2_REFT_OFFSET_MASK;

	*block_offset = 0;
	if (e & QCOW2_REFT_RESERVED_MASK) {
		*why = "Refcount table entry has reserved bits set";
		return -EUCLEAN;
	}
	if (qcow2_unaligned(lay, off)) {
		*why = "Refblock offset unaligned";
		return -EUCLEAN;
	}
	if (off > QCOW2_MAX_HOST_OFFSET) {
		*why = "Refblock offset beyond the maximum host offset";
		return -EUCLEAN;
	}
	*block_offset = off;
	return 0;
}

u64 qcow2_refcount_get(const void *block, u32 refcount_order, u64 index)
{
	const u8 *p = block;
	u32 bits, shift;

	switch (refcount_order) {
	case 0:
	case 1:
	case 2:
		bits = 1U << refcount_order;
		/* Sub-byte entries fill each byte from its least significant bit. */
		shift = (index << refcount_order) & 7;
		return (p[index >> (3 - refcount_order)] >> shift) &
			((1U << bits) - 1);
	case 3:
		return p[index];
	case 4:
		return get_unaligned_be16(p + index * 2);
	case 5:
		return get_unaligned_be32(p + index * 4);
	case 6:
		return get_unaligned_be64(p + index * 8);
	default:
		return 0;
	}
}

void qcow2_refcount_set(void *block, u32 refcount_order, u64 index, u64 value)
{
	u8 *p = block;
	u32 bits, shift;
	u8 mask;

	switch (refcount_order) {
	case 0:
	case 1:
	case 2:
		bits = 1U << refcount_order;
		shift = (index << refcount_order) & 7;
		mask = ((1U << bits) - 1) << shift;
		p += index >> (3 - refcount_order);
		*p = (u8)((*p & ~mask) | ((value << shift) & mask));
		break;
	case 3:
		p[index] = (u8)value;
		break;
	case 4:
		put_unaligned_be16(value, p + index * 2);
		break;
	case 5:
		put_unaligned_be32(value, p + index * 4);
		break;
	case 6:
		put_unaligned_be64(value, p + index * 8);
		break;
	default:
		break;
	}
}

int qcow2_parse_snapshot(const struct qcow2_layout *lay, const void *buf,
			 size_t len, u64 file_size,
			 struct qcow2_snapshot_info *sn, const char **why)
{
	const struct qcow2_snapshot_disk *h = buf;
	const u8 *extra = (const u8 *)buf + QCOW2_SNAPSHOT_HDR_SIZE;
	u64 l1_bytes;
	u32 end;

	*sn = (struct qcow2_snapshot_info){ 0 };
	if (len < QCOW2_SNAPSHOT_HDR_SIZE) {
		*why = "Snapshot table entry truncated";
		return -EINVAL;
	}
	sn->l1_table_offset = be64_to_cpu(h->l1_table_offset);
	sn->l1_size = be32_to_cpu(h->l1_size);
	sn->id_len = be16_to_cpu(h->id_str_size);
	sn->name_len = be16_to_cpu(h->name_size);
	sn->date_sec = be32_to_cpu(h->date_sec);
	sn->date_nsec = be32_to_cpu(h->date_nsec);
	sn->vm_clock_nsec = be64_to_cpu(h->vm_clock_nsec);
	sn->vm_state_size = be32_to_cpu(h->vm_state_size);
	sn->extra_data_size = be32_to_cpu(h->extra_data_size);

	if (sn->extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA) {
		*why = "Too much extra metadata in snapshot table entry";
		return -EFBIG;
	}
	if (lay->version >= 3 &&
	    sn->extra_data_size < QCOW2_SN_EXTRA_DISK_SIZE_END) {
		*why = "Snapshot table entry lacks the disk size required in v3";
		return -EINVAL;
	}
	/* Bounded by 40 + 1024 + 2 * 65535: no u32 overflow below. */
	sn->id_offset = QCOW2_SNAPSHOT_HDR_SIZE + sn->extra_data_size;
	if (sn->id_offset > len) {
		*why = "Snapshot extra data lies past the end of the table";
		return -EINVAL;
	}
	sn->name_offset = sn->id_offset + sn->id_len;
	end = sn->name_offset + sn->name_len;
	if (end > len) {
		*why = "Snapshot ID or name lies past the end of the table";
		return -EINVAL;
	}
	sn->entry_len = (end + 7) & ~7U;

	if (sn->extra_data_size >= QCOW2_SN_EXTRA_VMSTATE_END)
		sn->vm_state_size = get_unaligned_be64(extra);
	if (sn->extra_data_size >= QCOW2_SN_EXTRA_DISK_SIZE_END)
		sn->disk_size = get_unaligned_be64(extra + 8);
	else
		sn->disk_size = lay->size;
	if (sn->extra_data_size >= QCOW2_SN_EXTRA_ICOUNT_END)
		sn->icount = (s64)get_unaligned_be64(extra + 16);
	else
		sn->icount = -1;

	if (qcow2_table_bytes(sn->l1_size, sizeof(u64), QCOW2_MAX_L1_BYTES,
			      &l1_bytes)) {
		*why = "Snapshot L1 table too large";
		return -EFBIG;
	}
	if (qcow2_table_place(lay, sn->l1_table_offset, l1_bytes, file_size)) {
		*why = "Snapshot L1 table offset invalid";
		return -EINVAL;
	}
	return 0;
}

int qcow2_check_compressed(const struct qcow2_layout *lay,
			   const struct qcow2_mapping *map, u64 file_size,
			   const char **why)
{
	u64 end;

	if (map->type != QCOW2_CLUSTER_COMPRESSED) {
		*why = "Not a compressed cluster";
		return -EINVAL;
	}
	/*
	 * QEMU's writer may end the file inside the last sector of the
	 * compressed data, so the range may reach up to the end of the
	 * sector holding the last byte of the file, and no further.
	 * (file_size - 1) | 511 is that sector's last byte, computed without
	 * the overflow of rounding file_size up.
	 */
	if (!map->csize || map->host_offset >= file_size ||
	    check_add_overflow(map->host_offset, map->csize, &end) ||
	    end - 1 > ((file_size - 1) | 511)) {
		*why = "Compressed cluster descriptor points past the end of the file";
		return -EUCLEAN;
	}
	return 0;
}

u32 qcow2_snapshot_entry_size(u32 extra_len, u32 id_len, u32 name_len)
{
	u32 extra = QCOW2_SN_EXTRA_ICOUNT_END + extra_len;

	return (QCOW2_SNAPSHOT_HDR_SIZE + extra + id_len + name_len + 7) & ~7U;
}

u32 qcow2_encode_snapshot(void *buf, const struct qcow2_snapshot_info *sn,
			  const void *extra, u32 extra_len, const char *id,
			  u32 id_len, const char *name, u32 name_len)
{
	struct qcow2_snapshot_disk *h = buf;
	u8 *p = (u8 *)buf + QCOW2_SNAPSHOT_HDR_SIZE;
	u32 len = qcow2_snapshot_entry_size(extra_len, id_len, name_len);

	memset(buf, 0, len);
	h->l1_table_offset = cpu_to_be64(sn->l1_table_offset);
	h->l1_size = cpu_to_be32(sn->l1_size);
	h->id_str_size = cpu_to_be16(id_len);
	h->name_size = cpu_to_be16(name_len);
	h->date_sec = cpu_to_be32(sn->date_sec);
	h->date_nsec = cpu_to_be32(sn->date_nsec);
	h->vm_clock_nsec = cpu_to_be64(sn->vm_clock_nsec);
	/* The 32-bit field is 0 when the size does not fit, as in QEMU. */
	h->vm_state_size = cpu_to_be32(sn->vm_state_size > U32_MAX ? 0 :
					sn->vm_state_size);
	h->extra_data_size = cpu_to_be32(QCOW2_SN_EXTRA_ICOUNT_END + extra_len);
	put_unaligned_be64(sn->vm_state_size, p);
	put_unaligned_be64(sn->disk_size, p + 8);
	put_unaligned_be64((u64)sn->icount, p + 16);
	p += QCOW2_SN_EXTRA_ICOUNT_END;
	if (extra_len)
		memcpy(p, extra, extra_len);
	p += extra_len;
	memcpy(p, id, id_len);
	memcpy(p + id_len, name, name_len);
	return len;
}

u32 qcow2_snapshot_unknown_extra(const struct qcow2_snapshot_info *sn,
				 u32 *offset)
{
	*offset = QCOW2_SNAPSHOT_HDR_SIZE + QCOW2_SN_EXTRA_ICOUNT_END;
	if (sn->extra_data_size <= QCOW2_SN_EXTRA_ICOUNT_END)
		return 0;
	return sn->extra_data_size - QCOW2_SN_EXTRA_ICOUNT_END;
}
