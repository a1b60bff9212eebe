// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target over drivers/block/qcow2/format.c.
 *
 * The input is the start of an image file.  Everything the driver would
 * derive from those bytes is decoded the way the driver does it, and the
 * promises format.h makes about accepted input are asserted, so a logic
 * bug (not only a memory error) ends the run with a saved reproducer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

#define FUZZ_ASSERT(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "assertion failed at %s:%d: %s\n",	\
			__FILE__, __LINE__, #cond);			\
		abort();						\
	}								\
} while (0)

/* Rejections must explain themselves with one of the documented errnos. */
static void check_err(int ret, const char *why)
{
	if (!ret)
		return;
	FUZZ_ASSERT(ret == -EINVAL || ret == -EOPNOTSUPP || ret == -EFBIG ||
		    ret == -EUCLEAN);
	FUZZ_ASSERT(why && *why);
}

static u64 aligned(const struct qcow2_layout *lay, u64 off)
{
	return !(off & (lay->cluster_size - 1));
}

static void check_layout(const struct qcow2_layout *lay, u64 file_size)
{
	FUZZ_ASSERT(lay->version == 2 || lay->version == 3);
	FUZZ_ASSERT(lay->cluster_bits >= QCOW2_MIN_CLUSTER_BITS &&
		    lay->cluster_bits <= QCOW2_MAX_CLUSTER_BITS);
	FUZZ_ASSERT(lay->refcount_order <= QCOW2_MAX_REFCOUNT_ORDER);
	FUZZ_ASSERT(lay->header_length <= lay->cluster_size);
	FUZZ_ASSERT(!(lay->incompatible_features &
		      ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
			QCOW2_INCOMPAT_COMPRESSION)));
	FUZZ_ASSERT(lay->crypt_method == QCOW2_CRYPT_NONE);
	FUZZ_ASSERT((u64)lay->l1_size * 8 <= QCOW2_MAX_L1_BYTES);
	FUZZ_ASSERT(lay->l1_size >= qcow2_l1_entries_needed(lay, lay->size));
	FUZZ_ASSERT(aligned(lay, lay->l1_table_offset));
	FUZZ_ASSERT(!lay->l1_size ||
		    lay->l1_table_offset + lay->l1_size * 8ULL <= file_size);
	FUZZ_ASSERT(lay->refcount_table_clusters &&
		    (u64)lay->refcount_table_clusters * lay->cluster_size <=
		    QCOW2_MAX_REFTABLE_BYTES);
	FUZZ_ASSERT(aligned(lay, lay->refcount_table_offset));
	FUZZ_ASSERT(lay->refcount_table_offset +
		    (u64)lay->refcount_table_clusters * lay->cluster_size <=
		    file_size);
	FUZZ_ASSERT(lay->nb_snapshots <= QCOW2_MAX_SNAPSHOTS);
	FUZZ_ASSERT(aligned(lay, lay->snapshots_offset));
	FUZZ_ASSERT(!lay->nb_snapshots || lay->snapshots_offset < file_size);
	FUZZ_ASSERT(lay->backing_file_offset <= lay->cluster_size);
	FUZZ_ASSERT(!lay->backing_file_offset ||
		    lay->backing_file_offset + lay->backing_file_size <=
		    lay->cluster_size);
	FUZZ_ASSERT(lay->compression_type <= QCOW2_COMPRESSION_ZSTD);
}

static void fuzz_entries(const struct qcow2_layout *lay, const u8 *data,
			 size_t size, u64 file_size)
{
	size_t off;

	for (off = lay->header_length; off + 8 <= size; off += 8) {
		u64 e = get_unaligned_be64(data + off);
		struct qcow2_mapping m;
		const char *why = NULL;
		u64 l2_off, block;
		int ret;

		ret = qcow2_decode_l1_entry(lay, e, &l2_off, &why);
		check_err(ret, why);
		if (!ret)
			FUZZ_ASSERT(aligned(lay, l2_off) &&
				    l2_off <= QCOW2_MAX_HOST_OFFSET);

		ret = qcow2_decode_reftable_entry(lay, e, &block, &why);
		check_err(ret, why);
		if (!ret)
			FUZZ_ASSERT(aligned(lay, block) &&
				    block <= QCOW2_MAX_HOST_OFFSET);

		ret = qcow2_decode_l2_entry(lay, e, &m, &why);
		check_err(ret, why);
		if (ret)
			continue;
		switch (m.type) {
		case QCOW2_CLUSTER_NORMAL:
		case QCOW2_CLUSTER_ZERO_ALLOC:
			FUZZ_ASSERT(m.host_offset && aligned(lay, m.host_offset));
			FUZZ_ASSERT(m.host_offset <= QCOW2_MAX_HOST_OFFSET);
			FUZZ_ASSERT(lay->version >= 3 ||
				    m.type == QCOW2_CLUSTER_NORMAL);
			break;
		case QCOW2_CLUSTER_COMPRESSED:
			FUZZ_ASSERT(!m.copied);
			FUZZ_ASSERT(m.host_offset <= QCOW2_MAX_HOST_OFFSET);
			FUZZ_ASSERT(m.csize >= 1 && m.csize <= 2 * lay->cluster_size);
			ret = qcow2_check_compressed(lay, &m, file_size, &why);
			check_err(ret, why);
			if (!ret)
				FUZZ_ASSERT(m.host_offset < file_size &&
					    (unsigned __int128)m.host_offset +
					    m.csize <=
					    (unsigned __int128)file_size + 511);
			break;
		case QCOW2_CLUSTER_ZERO_PLAIN:
			FUZZ_ASSERT(lay->version >= 3);
			/* fallthrough */
		case QCOW2_CLUSTER_UNALLOCATED:
			FUZZ_ASSERT(!m.host_offset);
			break;
		default:
			FUZZ_ASSERT(0);
		}

		ret = qcow2_check_table(lay, e, e >> 40, 8, QCOW2_MAX_L1_BYTES,
					file_size, &why);
		check_err(ret, why);
	}
}

/* Read refcounts out of the input, then write them into a copy. */
static void fuzz_refcounts(const u8 *data, size_t size)
{
	static u8 copy[1 << 16];
	size_t n = size < sizeof(copy) ? size : sizeof(copy);
	u32 order;

	if (!n)
		return;
	memcpy(copy, data, n);
	for (order = 0; order <= QCOW2_MAX_REFCOUNT_ORDER; order++) {
		u64 entries = (u64)n * 8 >> order;
		u64 max = order == 6 ? ~0ULL : (1ULL << (1U << order)) - 1;
		u64 seed = n >= 8 ? get_unaligned_be64(data) : n;
		int k;

		for (k = 0; k < 8 && entries; k++) {
			u64 idx = (seed >> (k * 7)) % entries;
			u64 before = qcow2_refcount_get(copy, order, idx);
			u64 val = (seed ^ (seed >> (k * 5)) ^ k) & max;
			u64 nb = idx + 1 < entries ? idx + 1 : idx;
			u64 neighbour = qcow2_refcount_get(copy, order, nb);

			FUZZ_ASSERT(before <= max);
			qcow2_refcount_set(copy, order, idx, val);
			FUZZ_ASSERT(qcow2_refcount_get(copy, order, idx) == val);
			if (nb != idx)
				FUZZ_ASSERT(qcow2_refcount_get(copy, order, nb) ==
					    neighbour);
		}
	}
}

static void fuzz_snapshots(const struct qcow2_layout *lay, const u8 *data,
			   size_t size, u64 off, u32 count, u64 file_size)
{
	u32 i;

	for (i = 0; i < count && i < 4096 && off < size; i++) {
		struct qcow2_snapshot_info sn;
		const char *why = NULL;
		int ret;

		ret = qcow2_parse_snapshot(lay, data + off, size - off,
					   file_size, &sn, &why);
		check_err(ret, why);
		if (ret)
			return;
		FUZZ_ASSERT(sn.entry_len >= 40 && !(sn.entry_len & 7));
		FUZZ_ASSERT(sn.extra_data_size <= QCOW2_MAX_SNAPSHOT_EXTRA);
		FUZZ_ASSERT(sn.id_offset == 40 + sn.extra_data_size);
		FUZZ_ASSERT(sn.name_offset == sn.id_offset + sn.id_len);
		FUZZ_ASSERT(sn.name_offset + sn.name_len <= size - off);
		FUZZ_ASSERT(lay->version < 3 || sn.extra_data_size >= 16);
		FUZZ_ASSERT((u64)sn.l1_size * 8 <= QCOW2_MAX_L1_BYTES);
		FUZZ_ASSERT(aligned(lay, sn.l1_table_offset));
		off += sn.entry_len;
	}
}

static void fuzz_image(const u8 *data, size_t size, u64 file_size)
{
	struct qcow2_layout lay;
	const char *why = NULL;
	size_t len;
	int ret;

	ret = qcow2_parse_header(data, size, file_size, &lay, &why);
	check_err(ret, why);
	if (ret)
		return;
	check_layout(&lay, file_size);

	len = size < lay.cluster_size ? size : lay.cluster_size;
	ret = qcow2_parse_extensions(data, len, &lay, &why);
	check_err(ret, why);
	if (!ret) {
		FUZZ_ASSERT(lay.ext_end <= len);
		FUZZ_ASSERT(!lay.has_crypto_ext);
		FUZZ_ASSERT(lay.nb_bitmaps <= 65535);
		FUZZ_ASSERT(!lay.nb_bitmaps || lay.has_bitmaps_ext);
	}

	fuzz_entries(&lay, data, size, file_size);
	if (lay.nb_snapshots)
		fuzz_snapshots(&lay, data, size, lay.snapshots_offset,
			       lay.nb_snapshots, file_size);
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct qcow2_layout lay = { 0 };
	u64 big;

	fuzz_image(data, size, size);
	/*
	 * A file much larger than what was read: tables past the input are
	 * then in bounds, as they are for the driver that reads a header
	 * cluster of a big image.
	 */
	big = size >= 8 ? get_unaligned_be64(data + size - 8) : 0;
	if (big > size)
		fuzz_image(data, size, big);
	fuzz_image(data, size, ~0ULL);

	fuzz_refcounts(data, size);

	/* Snapshot entries straight from the input, for both versions. */
	lay.cluster_bits = 16;
	lay.cluster_size = 1ULL << 16;
	lay.l2_bits = 13;
	lay.size = 1ULL << 30;
	lay.version = 2;
	fuzz_snapshots(&lay, data, size, 0, ~0U, ~0ULL);
	lay.version = 3;
	fuzz_snapshots(&lay, data, size, 0, ~0U, size);
	return 0;
}
