// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of drivers/block/qcow2/format.c, built in userspace with ASan
 * and UBSan.  Prints one "ok - name" / "not ok - name" line per case and
 * "# " diagnostics; exits non-zero if any case failed.
 *
 * Headers are built field by field in a buffer, then mutated one field
 * at a time; real images made by qemu-img (when installed) are parsed and
 * compared with what "qemu-img info" reports.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "format.h"

#define CS64K		0x10000ULL
#define BUF_SIZE	(2U << 20)

static unsigned int n_pass, n_fail, n_skip;
static bool case_failed;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
		case_failed = true;					\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	unsigned long long __a = (a), __b = (b);			\
	if (__a != __b) {						\
		printf("# %s:%d: failed: %s == %s (0x%llx != 0x%llx)\n", \
		       __FILE__, __LINE__, #a, #b, __a, __b);		\
		case_failed = true;					\
	}								\
} while (0)

static void begin(void)
{
	case_failed = false;
}

static void __attribute__((format(printf, 1, 2))) end(const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", case_failed ? "not ok" : "ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (case_failed)
		n_fail++;
	else
		n_pass++;
	fflush(stdout);
}

static void skip(const char *name, const char *reason)
{
	printf("ok - %s # SKIP %s\n", name, reason);
	n_skip++;
}

static void put8(u8 *b, size_t off, u64 v, unsigned int width)
{
	switch (width) {
	case 1:
		b[off] = v;
		break;
	case 2:
		put_unaligned_be16(v, b + off);
		break;
	case 4:
		put_unaligned_be32(v, b + off);
		break;
	default:
		put_unaligned_be64(v, b + off);
		break;
	}
}

/* Header field offsets (QCowHeader) */
enum {
	H_MAGIC = 0, H_VERSION = 4, H_BACKING_OFF = 8, H_BACKING_SIZE = 16,
	H_CLUSTER_BITS = 20, H_SIZE = 24, H_CRYPT = 32, H_L1_SIZE = 36,
	H_L1_OFF = 40, H_REFT_OFF = 48, H_REFT_CLUSTERS = 56, H_NB_SN = 60,
	H_SN_OFF = 64, H_INCOMPAT = 72, H_COMPAT = 80, H_AUTOCLEAR = 88,
	H_REFCOUNT_ORDER = 96, H_HEADER_LEN = 100, H_COMPRESSION = 104,
};

/*
 * A consistent header: reftable at cluster 1 (one cluster), refblock at
 * cluster 2, L1 from cluster 3.  Returns the file size that just holds
 * the L1 table, rounded up to a cluster.
 */
static u64 make_header(u8 *b, size_t len, u32 version, u32 cluster_bits,
		       u64 size)
{
	u64 cs = 1ULL << cluster_bits;
	u64 per_l1 = cs * (cs / 8);
	u64 l1_size = size / per_l1 + !!(size % per_l1);
	u64 l1_bytes = l1_size * 8;

	memset(b, 0, len);
	put8(b, H_MAGIC, QCOW2_MAGIC, 4);
	put8(b, H_VERSION, version, 4);
	put8(b, H_CLUSTER_BITS, cluster_bits, 4);
	put8(b, H_SIZE, size, 8);
	put8(b, H_L1_SIZE, l1_size, 4);
	put8(b, H_L1_OFF, 3 * cs, 8);
	put8(b, H_REFT_OFF, cs, 8);
	put8(b, H_REFT_CLUSTERS, 1, 4);
	if (version >= 3) {
		put8(b, H_REFCOUNT_ORDER, 4, 4);
		put8(b, H_HEADER_LEN, QCOW2_V3_HEADER_SIZE, 4);
	}
	return 3 * cs + ((l1_bytes + cs - 1) / cs) * cs + (l1_bytes ? 0 : cs);
}

static u8 *hbuf;

/* ---------------------------------------------------------------- header */

static void test_valid_headers(void)
{
	struct qcow2_layout lay;
	const char *why = NULL;
	u32 v, cb;
	int ret;

	for (v = 2; v <= 3; v++) {
		begin();
		u64 fs = make_header(hbuf, CS64K, v, 16, 64 << 20);

		put8(hbuf, H_NB_SN, 2, 4);
		put8(hbuf, H_SN_OFF, 2 * CS64K, 8);
		ret = qcow2_parse_header(hbuf, CS64K, fs, &lay, &why);
		CHECK_EQ(ret, 0);
		CHECK_EQ(lay.version, v);
		CHECK_EQ(lay.cluster_bits, 16);
		CHECK_EQ(lay.cluster_size, CS64K);
		CHECK_EQ(lay.size, 64 << 20);
		CHECK_EQ(lay.l1_size, 1);
		CHECK_EQ(lay.l1_table_offset, 3 * CS64K);
		CHECK_EQ(lay.refcount_table_offset, CS64K);
		CHECK_EQ(lay.refcount_table_clusters, 1);
		CHECK_EQ(lay.nb_snapshots, 2);
		CHECK_EQ(lay.snapshots_offset, 2 * CS64K);
		CHECK_EQ(lay.refcount_order, 4);
		CHECK_EQ(lay.header_length, v == 2 ? 72 : 112);
		CHECK_EQ(lay.l2_bits, 13);
		CHECK_EQ(lay.csize_shift, 54);
		CHECK_EQ(lay.csize_mask, 0xff);
		CHECK_EQ(lay.coffset_mask, (1ULL << 54) - 1);
		CHECK_EQ(lay.incompatible_features, 0);
		CHECK_EQ(lay.compression_type, 0);
		CHECK_EQ(qcow2_l1_entries_needed(&lay, 64 << 20), 1);
		end("header: valid v%u header decodes every field", v);
	}

	for (cb = 9; cb <= 21; cb++) {
		u64 cs = 1ULL << cb;
		u64 fs;

		begin();
		fs = make_header(hbuf, cs < 4096 ? 4096 : cs, 3, cb, 1ULL << 32);
		ret = qcow2_parse_header(hbuf, cs, fs, &lay, &why);
		CHECK_EQ(ret, 0);
		CHECK_EQ(lay.cluster_size, cs);
		CHECK_EQ(lay.l2_bits, cb - 3);
		CHECK_EQ(lay.csize_shift, 62 - (cb - 8));
		CHECK_EQ(lay.csize_mask, (1ULL << (cb - 8)) - 1);
		CHECK_EQ((lay.csize_mask + 1) * 512, 2 * cs);
		CHECK_EQ(qcow2_l1_entries_needed(&lay, 1ULL << 32),
			 lay.l1_size);
		CHECK_EQ(qcow2_l1_entries_needed(&lay, 0), 0);
		CHECK_EQ(qcow2_l1_entries_needed(&lay, 1), 1);
		CHECK_EQ(qcow2_l1_entries_needed(&lay, ~0ULL),
			 1ULL << (64 - (2 * cb - 3)));
		/* one byte less is one entry short */
		put8(hbuf, H_L1_SIZE, lay.l1_size - 1, 4);
		CHECK_EQ(qcow2_parse_header(hbuf, cs, fs, &lay, &why),
			 -EINVAL);
		end("header: cluster_bits %u accepted with a 4 GiB disk", cb);
	}
}

struct hmut {
	const char *name;
	u32 version;		/* base header */
	u32 off, width;
	u64 value;
	u32 off2, width2;	/* optional second write (width2 != 0) */
	u64 value2;
	u64 file_size;		/* 0: the base file size */
	size_t len;		/* 0: one cluster */
	int err;
};

#define BIG_FILE	(1ULL << 40)

static const struct hmut hmuts[] = {
	{ "magic", 3, H_MAGIC, 4, 0x514649fa, .err = -EINVAL },
	{ "version 1", 3, H_VERSION, 4, 1, .err = -EOPNOTSUPP },
	{ "version 4", 3, H_VERSION, 4, 4, .err = -EOPNOTSUPP },
	{ "version 2 ignores v3 fields", 3, H_VERSION, 4, 2,
	  H_INCOMPAT, 8, ~0ULL, .err = 0 },
	{ "v2 ignores refcount_order", 2, H_REFCOUNT_ORDER, 4, 9, .err = 0 },
	{ "v2 ignores header_length", 2, H_HEADER_LEN, 4, 1, .err = 0 },
	{ "buffer shorter than magic", 3, H_MAGIC, 4, QCOW2_MAGIC, .len = 3,
	  .err = -EINVAL },
	{ "v2 buffer of 71 bytes", 2, H_MAGIC, 4, QCOW2_MAGIC, .len = 71,
	  .err = -EINVAL },
	{ "v2 buffer of 72 bytes", 2, H_MAGIC, 4, QCOW2_MAGIC, .len = 72,
	  .err = 0 },
	{ "v3 buffer of 103 bytes", 3, H_MAGIC, 4, QCOW2_MAGIC, .len = 103,
	  .err = -EINVAL },
	{ "v3 buffer of 111 bytes", 3, H_MAGIC, 4, QCOW2_MAGIC, .len = 111,
	  .err = -EINVAL },
	{ "v3 buffer of 104 bytes, header_length 104", 3, H_HEADER_LEN, 4, 104,
	  .len = 104, .err = 0 },
	{ "backing_file_offset > cluster", 3, H_BACKING_OFF, 8, CS64K + 1,
	  .err = -EINVAL },
	{ "backing_file_offset = cluster, size 0", 3, H_BACKING_OFF, 8, CS64K,
	  .err = 0 },
	{ "backing_file_offset = cluster, size 1", 3, H_BACKING_OFF, 8, CS64K,
	  H_BACKING_SIZE, 4, 1, .err = -EINVAL },
	{ "backing name 1023 bytes", 3, H_BACKING_OFF, 8, 512,
	  H_BACKING_SIZE, 4, 1023, .err = 0 },
	{ "backing name 1024 bytes", 3, H_BACKING_OFF, 8, 512,
	  H_BACKING_SIZE, 4, 1024, .err = -EINVAL },
	{ "backing name ends at cluster end", 3, H_BACKING_OFF, 8, CS64K - 10,
	  H_BACKING_SIZE, 4, 10, .err = 0 },
	{ "backing name past cluster end", 3, H_BACKING_OFF, 8, CS64K - 10,
	  H_BACKING_SIZE, 4, 11, .err = -EINVAL },
	{ "backing_file_size ignored without offset", 3, H_BACKING_SIZE, 4,
	  ~0U, .err = 0 },
	{ "cluster_bits 8", 3, H_CLUSTER_BITS, 4, 8, .err = -EINVAL },
	{ "cluster_bits 22", 3, H_CLUSTER_BITS, 4, 22, .err = -EINVAL },
	{ "cluster_bits 2^32-1", 3, H_CLUSTER_BITS, 4, ~0U, .err = -EINVAL },
	{ "size at L1 coverage", 3, H_SIZE, 8, 512ULL << 20, .err = 0 },
	{ "size past L1 coverage", 3, H_SIZE, 8, (512ULL << 20) + 1,
	  .err = -EINVAL },
	{ "size 0", 3, H_SIZE, 8, 0, .err = 0 },
	{ "size 2^64-1 is too big", 3, H_SIZE, 8, ~0ULL, .err = -EFBIG },
	{ "crypt_method AES", 3, H_CRYPT, 4, 1, .err = -EOPNOTSUPP },
	{ "crypt_method LUKS", 3, H_CRYPT, 4, 2, .err = -EOPNOTSUPP },
	{ "crypt_method 3", 3, H_CRYPT, 4, 3, .err = -EOPNOTSUPP },
	{ "v2 crypt_method AES", 2, H_CRYPT, 4, 1, .err = -EOPNOTSUPP },
	{ "l1_size 0", 3, H_L1_SIZE, 4, 0, .err = -EINVAL },
	{ "l1_size 0 with size 0", 3, H_L1_SIZE, 4, 0, H_SIZE, 8, 0,
	  .err = 0 },
	{ "l1_size 4Mi entries in a big file", 3, H_L1_SIZE, 4, 4194304,
	  .file_size = BIG_FILE, .err = 0 },
	{ "l1_size 4Mi entries past EOF", 3, H_L1_SIZE, 4, 4194304,
	  .err = -EINVAL },
	{ "l1_size 4Mi+1 entries", 3, H_L1_SIZE, 4, 4194305,
	  .file_size = BIG_FILE, .err = -EFBIG },
	{ "l1_size 2^32-1", 3, H_L1_SIZE, 4, ~0U, .err = -EFBIG },
	{ "l1_table_offset +1", 3, H_L1_OFF, 8, 3 * CS64K + 1, .err = -EINVAL },
	{ "l1_table_offset sector aligned only", 3, H_L1_OFF, 8,
	  3 * CS64K + 512, .err = -EINVAL },
	{ "l1_table_offset at EOF", 3, H_L1_OFF, 8, 4 * CS64K, .err = -EINVAL },
	{ "l1_table_offset last cluster", 3, H_L1_OFF, 8, 3 * CS64K,
	  .file_size = 3 * CS64K + 8, .err = 0 },
	{ "l1 table one byte past EOF", 3, H_L1_OFF, 8, 3 * CS64K,
	  .file_size = 3 * CS64K + 7, .err = -EINVAL },
	{ "l1_table_offset wraps", 3, H_L1_OFF, 8, ~0ULL << 16,
	  H_L1_SIZE, 4, 0x2000, .file_size = ~0ULL, .err = -EINVAL },
	{ "refcount_table_offset unaligned", 3, H_REFT_OFF, 8, CS64K + 512,
	  .err = -EINVAL },
	{ "refcount_table_offset at EOF", 3, H_REFT_OFF, 8, 4 * CS64K,
	  .err = -EINVAL },
	{ "refcount_table_offset wraps", 3, H_REFT_OFF, 8, ~0ULL << 16,
	  .file_size = ~0ULL, .err = -EINVAL },
	{ "refcount_table_offset 0", 3, H_REFT_OFF, 8, 0, .err = 0 },
	{ "refcount_table_clusters 0", 3, H_REFT_CLUSTERS, 4, 0,
	  .err = -EINVAL },
	{ "refcount table 8 MiB", 3, H_REFT_CLUSTERS, 4, 128,
	  .file_size = BIG_FILE, .err = 0 },
	{ "refcount table 8 MiB past EOF", 3, H_REFT_CLUSTERS, 4, 128,
	  .err = -EINVAL },
	{ "refcount table 8 MiB + 1 cluster", 3, H_REFT_CLUSTERS, 4, 129,
	  .file_size = BIG_FILE, .err = -EFBIG },
	{ "refcount_table_clusters 2^32-1", 3, H_REFT_CLUSTERS, 4, ~0U,
	  .file_size = ~0ULL, .err = -EFBIG },
	{ "nb_snapshots 65536", 3, H_NB_SN, 4, 65536, H_SN_OFF, 8, 2 * CS64K,
	  .err = 0 },
	{ "nb_snapshots 65537", 3, H_NB_SN, 4, 65537, H_SN_OFF, 8, 2 * CS64K,
	  .err = -EFBIG },
	{ "nb_snapshots 2^32-1", 3, H_NB_SN, 4, ~0U, H_SN_OFF, 8, 2 * CS64K,
	  .err = -EFBIG },
	{ "snapshot table starts at EOF", 3, H_NB_SN, 4, 1, H_SN_OFF, 8,
	  4 * CS64K, .err = -EINVAL },
	{ "empty snapshot table past EOF", 3, H_SN_OFF, 8, 100 * CS64K,
	  .err = 0 },
	{ "snapshots_offset unaligned, no snapshots", 3, H_SN_OFF, 8, 512,
	  .err = -EINVAL },
	{ "snapshots_offset unaligned", 3, H_NB_SN, 4, 1, H_SN_OFF, 8,
	  CS64K + 8, .err = -EINVAL },
	{ "snapshots_offset wraps", 3, H_NB_SN, 4, 2000, H_SN_OFF, 8,
	  ~0ULL << 16, .file_size = ~0ULL, .err = -EINVAL },
	{ "incompatible dirty", 3, H_INCOMPAT, 8, QCOW2_INCOMPAT_DIRTY,
	  .err = 0 },
	{ "incompatible corrupt", 3, H_INCOMPAT, 8, QCOW2_INCOMPAT_CORRUPT,
	  .err = 0 },
	{ "incompatible data file", 3, H_INCOMPAT, 8, QCOW2_INCOMPAT_DATA_FILE,
	  .err = -EOPNOTSUPP },
	{ "incompatible compression without type", 3, H_INCOMPAT, 8,
	  QCOW2_INCOMPAT_COMPRESSION, .err = -EINVAL },
	{ "incompatible extended L2", 3, H_INCOMPAT, 8, QCOW2_INCOMPAT_EXTL2,
	  .err = -EOPNOTSUPP },
	{ "incompatible bit 5", 3, H_INCOMPAT, 8, 1ULL << 5,
	  .err = -EOPNOTSUPP },
	{ "incompatible bit 63", 3, H_INCOMPAT, 8, 1ULL << 63,
	  .err = -EOPNOTSUPP },
	{ "compatible all bits", 3, H_COMPAT, 8, ~0ULL, .err = 0 },
	{ "autoclear bitmaps", 3, H_AUTOCLEAR, 8, 1, .err = 0 },
	{ "autoclear unknown bits", 3, H_AUTOCLEAR, 8, ~3ULL, .err = 0 },
	{ "autoclear data-file-raw without data file", 3, H_AUTOCLEAR, 8, 2,
	  .err = -EINVAL },
	{ "refcount_order 0", 3, H_REFCOUNT_ORDER, 4, 0, .err = 0 },
	{ "refcount_order 6", 3, H_REFCOUNT_ORDER, 4, 6, .err = 0 },
	{ "refcount_order 7", 3, H_REFCOUNT_ORDER, 4, 7, .err = -EINVAL },
	{ "refcount_order 2^32-1", 3, H_REFCOUNT_ORDER, 4, ~0U,
	  .err = -EINVAL },
	{ "header_length 72", 3, H_HEADER_LEN, 4, 72, .err = -EINVAL },
	{ "header_length 103", 3, H_HEADER_LEN, 4, 103, .err = -EINVAL },
	{ "header_length 104", 3, H_HEADER_LEN, 4, 104, .err = 0 },
	{ "header_length 104 hides compression byte", 3, H_HEADER_LEN, 4, 104,
	  H_COMPRESSION, 1, 1, .err = 0 },
	{ "header_length 105 shows compression byte", 3, H_HEADER_LEN, 4, 105,
	  H_COMPRESSION, 1, 1, .err = -EINVAL },
	{ "header_length 105 hides padding", 3, H_HEADER_LEN, 4, 105,
	  106, 1, 0xff, .err = 0 },
	{ "header_length = cluster size", 3, H_HEADER_LEN, 4, CS64K, .err = 0 },
	{ "header_length > cluster size", 3, H_HEADER_LEN, 4, CS64K + 1,
	  .err = -EINVAL },
	{ "header_length 2^32-1", 3, H_HEADER_LEN, 4, ~0U, .err = -EINVAL },
	{ "compression zstd without bit 3", 3, H_COMPRESSION, 1, 1,
	  .err = -EINVAL },
	{ "compression zstd with bit 3", 3, H_COMPRESSION, 1, 1,
	  H_INCOMPAT, 8, QCOW2_INCOMPAT_COMPRESSION, .err = 0 },
	{ "compression type 2", 3, H_COMPRESSION, 1, 2,
	  H_INCOMPAT, 8, QCOW2_INCOMPAT_COMPRESSION, .err = -EOPNOTSUPP },
	{ "compression type 255 without bit 3", 3, H_COMPRESSION, 1, 255,
	  .err = -EOPNOTSUPP },
	{ "padding byte 105", 3, 105, 1, 1, .err = -EINVAL },
	{ "padding byte 106", 3, 106, 1, 0x80, .err = -EINVAL },
	{ "padding byte 107", 3, 107, 1, 1, .err = -EINVAL },
	{ "padding byte 108", 3, 108, 1, 1, .err = -EINVAL },
	{ "padding byte 109", 3, 109, 1, 1, .err = -EINVAL },
	{ "padding byte 110", 3, 110, 1, 1, .err = -EINVAL },
	{ "padding byte 111", 3, 111, 1, 1, .err = -EINVAL },
	{ "byte 112 is an unknown field", 3, 112, 1, 0xff,
	  H_HEADER_LEN, 4, 120, .err = 0 },
};

static void test_header_mutations(void)
{
	const char *why;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hmuts); i++) {
		const struct hmut *m = &hmuts[i];
		struct qcow2_layout lay;
		u64 fs;
		int ret;

		begin();
		fs = make_header(hbuf, CS64K, m->version, 16, 64 << 20);
		put8(hbuf, m->off, m->value, m->width);
		if (m->width2)
			put8(hbuf, m->off2, m->value2, m->width2);
		why = NULL;
		ret = qcow2_parse_header(hbuf, m->len ? m->len : CS64K,
					 m->file_size ? m->file_size : fs,
					 &lay, &why);
		CHECK_EQ(ret, m->err);
		if (ret)
			CHECK(why && *why);
		if (ret != m->err)
			printf("# why: %s\n", why ? why : "(none)");
		end("header v%u: %s -> %s", m->version, m->name,
		    m->err ? strerror(-m->err) : "accepted");
	}
}

/* ------------------------------------------------------------ extensions */

static size_t put_ext(u8 *b, size_t off, u32 type, u32 len, const void *data)
{
	put8(b, off, type, 4);
	put8(b, off + 4, len, 4);
	if (data)
		memcpy(b + off + 8, data, len);
	return off + 8 + ((len + 7) & ~7U);
}

static int ext_parse(u32 version, u64 autoclear, u32 crypt, size_t len,
		     struct qcow2_layout *lay, const char **why)
{
	int ret;

	CHECK_EQ(get_unaligned_be32(hbuf + H_VERSION), version);
	ret = qcow2_parse_header(hbuf, CS64K, 4 * CS64K, lay, why);
	if (ret)
		return 1000 + ret;
	lay->autoclear_features = autoclear;
	lay->crypt_method = crypt;
	return qcow2_parse_extensions(hbuf, len, lay, why);
}

/* make_header() clears the buffer, so headers are written first */
static void ext_reset(u32 version)
{
	make_header(hbuf, CS64K, version, 16, 64 << 20);
}

static u8 bitmaps_ext[24];

static void set_bitmaps(u32 nb, u32 reserved, u64 dir_size, u64 dir_off)
{
	put8(bitmaps_ext, 0, nb, 4);
	put8(bitmaps_ext, 4, reserved, 4);
	put8(bitmaps_ext, 8, dir_size, 8);
	put8(bitmaps_ext, 16, dir_off, 8);
}

static void test_extensions(void)
{
	struct qcow2_layout lay;
	const char *why;
	u8 data[512];
	size_t off;
	int ret;

	memset(data, 'a', sizeof(data));

	begin();
	ext_reset(3);
	ret = ext_parse(3, 0, 0, CS64K, &lay, &why);
	CHECK_EQ(ret, 0);
	CHECK_EQ(lay.ext_end, 120);
	CHECK(!lay.has_backing_format && !lay.has_feature_table &&
	      !lay.has_bitmaps_ext && !lay.has_crypto_ext &&
	      !lay.has_data_file_ext);
	end("ext: v3 end marker at header_length");

	begin();
	ext_reset(2);
	off = put_ext(hbuf, 72, QCOW2_EXT_BACKING_FORMAT, 5, "qcow2");
	ret = ext_parse(2, 0, 0, CS64K, &lay, &why);
	CHECK_EQ(ret, 0);
	CHECK(lay.has_backing_format);
	CHECK_EQ(lay.ext_end, off + 8);
	end("ext: v2 extensions start at 72");

	begin();
	ext_reset(3);
	put8(hbuf, H_HEADER_LEN, 120, 4);
	put_ext(hbuf, 112, QCOW2_EXT_BACKING_FORMAT, 3, "raw");
	put_ext(hbuf, 120, QCOW2_EXT_BACKING_FORMAT, 3, "raw");
	ret = ext_parse(3, 0, 0, CS64K, &lay, &why);
	CHECK_EQ(ret, 0);
	CHECK(lay.has_backing_format);
	CHECK_EQ(lay.ext_end, 144);
	end("ext: v3 extensions start at header_length, not 112");

	begin();
	ext_reset(3);
	off = put_ext(hbuf, 112, QCOW2_EXT_BACKING_FORMAT, 15, data);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), 0);
	CHECK(lay.has_backing_format);
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_BACKING_FORMAT, 16, data);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	end("ext: backing format length 15 ok, 16 refused");

	begin();
	ext_reset(3);
	off = put_ext(hbuf, 112, QCOW2_EXT_FEATURE_TABLE, 384, NULL);
	off = put_ext(hbuf, off, QCOW2_EXT_DATA_FILE, 7, data);
	ret = ext_parse(3, 0, 0, CS64K, &lay, &why);
	CHECK_EQ(ret, 0);
	CHECK(lay.has_feature_table);
	CHECK(lay.has_data_file_ext);
	CHECK_EQ(lay.ext_end, off + 8);
	end("ext: feature table and data file name");

	begin();
	ext_reset(3);
	off = put_ext(hbuf, 112, 0x12345678, 5, data);
	off = put_ext(hbuf, off, 0xdeadbeef, 0, NULL);
	off = put_ext(hbuf, off, QCOW2_EXT_BACKING_FORMAT, 5, "qcow2");
	ret = ext_parse(3, 0, 0, CS64K, &lay, &why);
	CHECK_EQ(ret, 0);
	CHECK(lay.has_backing_format);
	CHECK_EQ(lay.ext_end, off + 8);
	end("ext: unknown types skipped with padding");

	begin();
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_FEATURE_TABLE, 48, NULL);
	put_ext(hbuf, 168, QCOW2_EXT_FEATURE_TABLE, 48, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	end("ext: duplicate known type refused");

	{
		static const struct {
			const char *name;
			u32 nb, reserved;
			u64 dir_size, dir_off;
			u32 len;
			u64 autoclear;
			int err;
			u32 nb_expect;
		} bm[] = {
			{ "1 bitmap", 1, 0, 4096, CS64K, 24, 1, 0, 1 },
			{ "65535 bitmaps", 65535, 0, 4096, CS64K, 24, 1, 0, 65535 },
			{ "0 bitmaps", 0, 0, 4096, CS64K, 24, 1, -EINVAL, 0 },
			{ "65536 bitmaps", 65536, 0, 4096, CS64K, 24, 1, -EINVAL, 0 },
			{ "reserved field set", 1, 1, 4096, CS64K, 24, 1, -EINVAL, 0 },
			{ "directory unaligned", 1, 0, 4096, CS64K + 8, 24, 1,
			  -EINVAL, 0 },
			{ "directory max size", 1, 0, 1024ULL * 65535, CS64K, 24, 1,
			  0, 1 },
			{ "directory too large", 1, 0, 1024ULL * 65535 + 1, CS64K,
			  24, 1, -EINVAL, 0 },
			{ "length 23", 1, 0, 4096, CS64K, 23, 1, -EINVAL, 0 },
			{ "length 25", 1, 0, 4096, CS64K, 25, 1, -EINVAL, 0 },
			{ "length 24, autoclear bit clear: ignored", 0, 7, 0, 1, 24,
			  0, 0, 0 },
			{ "length 23, autoclear bit clear", 1, 0, 0, 0, 23, 0,
			  -EINVAL, 0 },
		};
		size_t i;

		for (i = 0; i < ARRAY_SIZE(bm); i++) {
			u8 big[32] = { 0 };

			begin();
			ext_reset(3);
			set_bitmaps(bm[i].nb, bm[i].reserved, bm[i].dir_size,
				    bm[i].dir_off);
			memcpy(big, bitmaps_ext, sizeof(bitmaps_ext));
			put_ext(hbuf, 112, QCOW2_EXT_BITMAPS, bm[i].len, big);
			ret = ext_parse(3, bm[i].autoclear, 0, CS64K, &lay,
					&why);
			CHECK_EQ(ret, bm[i].err);
			if (!ret) {
				CHECK(lay.has_bitmaps_ext);
				CHECK_EQ(lay.nb_bitmaps, bm[i].nb_expect);
			}
			end("ext: bitmaps %s", bm[i].name);
		}
	}

	begin();
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_CRYPTO, 16, data);
	CHECK_EQ(ext_parse(3, 0, QCOW2_CRYPT_NONE, CS64K, &lay, &why), -EINVAL);
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_CRYPTO, 16, data);
	CHECK_EQ(ext_parse(3, 0, QCOW2_CRYPT_LUKS, CS64K, &lay, &why), 0);
	CHECK(lay.has_crypto_ext);
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_CRYPTO, 8, data);
	CHECK_EQ(ext_parse(3, 0, QCOW2_CRYPT_LUKS, CS64K, &lay, &why), -EINVAL);
	ext_reset(3);
	put_ext(hbuf, 112, QCOW2_EXT_CRYPTO, 24, data);
	CHECK_EQ(ext_parse(3, 0, QCOW2_CRYPT_LUKS, CS64K, &lay, &why), -EINVAL);
	end("ext: crypto header needs LUKS and length 16");

	begin();
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, CS64K - 120, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), 0);
	CHECK_EQ(lay.ext_end, CS64K);
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, CS64K - 119, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, ~0U, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, CS64K - 128, NULL);
	put8(hbuf, CS64K - 8, 0x2, 4);
	put8(hbuf, CS64K - 4, 1, 4);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	ext_reset(3);
	/* an unaligned header_length leaves 4 bytes for the last header */
	put8(hbuf, H_HEADER_LEN, 116, 4);
	put_ext(hbuf, 116, 0x1, CS64K - 128, NULL);
	put8(hbuf, CS64K - 4, 0x2, 4);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	end("ext: extension filling cluster 0 ok, one byte more refused");

	begin();
	ext_reset(3);
	put8(hbuf, H_BACKING_OFF, 256, 8);
	put8(hbuf, H_BACKING_SIZE, 4, 4);
	put_ext(hbuf, 112, 0x1, 256 - 120, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), 0);
	make_header(hbuf, CS64K, 3, 16, 64 << 20);
	put8(hbuf, H_BACKING_OFF, 256, 8);
	put8(hbuf, H_BACKING_SIZE, 4, 4);
	put_ext(hbuf, 112, 0x1, 256 - 119, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, CS64K, &lay, &why), -EINVAL);
	end("ext: area ends at backing_file_offset");

	begin();
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, 200 - 120, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, 200, &lay, &why), 0);
	ext_reset(3);
	put_ext(hbuf, 112, 0x1, 201 - 120, NULL);
	CHECK_EQ(ext_parse(3, 0, 0, 200, &lay, &why), -EINVAL);
	ext_reset(3);
	CHECK_EQ(ext_parse(3, 0, 0, 116, &lay, &why), -EINVAL);
	CHECK_EQ(ext_parse(3, 0, 0, 112, &lay, &why), 0);
	end("ext: area ends at the end of the buffer");
}

/* --------------------------------------------------------------- entries */

static void layout_for(struct qcow2_layout *lay, u32 version, u32 cb)
{
	const char *why;
	u64 fs = make_header(hbuf, 4096, version, cb, 1 << 20);

	if (qcow2_parse_header(hbuf, 4096, fs, lay, &why)) {
		printf("# cannot build layout: %s\n", why);
		case_failed = true;
	}
}

static void test_l1_entries(void)
{
	u32 cb, bit;

	for (cb = 9; cb <= 21; cb++) {
		struct qcow2_layout lay;
		u64 cs = 1ULL << cb, off;
		const char *why;

		begin();
		layout_for(&lay, 3, cb);
		CHECK_EQ(qcow2_decode_l1_entry(&lay, 0, &off, &why), 0);
		CHECK_EQ(off, 0);
		CHECK_EQ(qcow2_decode_l1_entry(&lay, 5 * cs, &off, &why), 0);
		CHECK_EQ(off, 5 * cs);
		CHECK_EQ(qcow2_decode_l1_entry(&lay, QCOW2_OFLAG_COPIED | 7 * cs,
					       &off, &why), 0);
		CHECK_EQ(off, 7 * cs);
		CHECK_EQ(qcow2_decode_l1_entry(&lay, QCOW2_L1E_OFFSET_MASK &
					       ~(cs - 1), &off, &why), 0);
		CHECK_EQ(off, QCOW2_L1E_OFFSET_MASK & ~(cs - 1));
		for (bit = 0; bit < 64; bit++) {
			u64 e = (1ULL << bit) | cs;
			bool bad = (1ULL << bit) & QCOW2_L1E_RESERVED_MASK;

			if ((1ULL << bit) & QCOW2_L1E_OFFSET_MASK)
				bad = (1ULL << bit) < cs;
			CHECK_EQ(qcow2_decode_l1_entry(&lay, e, &off, &why),
				 bad ? -EUCLEAN : 0);
			if (bad)
				CHECK_EQ(off, 0);
		}
		end("l1: entries for cluster size %llu", cs);
	}
}

static void test_l2_entries(void)
{
	u32 cb, bit, v;

	for (v = 2; v <= 3; v++) {
		for (cb = 9; cb <= 21; cb++) {
			struct qcow2_layout lay;
			struct qcow2_mapping m;
			u64 cs = 1ULL << cb;
			const char *why;
			int zerr = v == 2 ? -EUCLEAN : 0;

			begin();
			layout_for(&lay, v, cb);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, 0, &m, &why), 0);
			CHECK_EQ(m.type, QCOW2_CLUSTER_UNALLOCATED);
			CHECK(!m.copied);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COPIED,
						       &m, &why), 0);
			CHECK_EQ(m.type, QCOW2_CLUSTER_UNALLOCATED);
			CHECK(m.copied);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, 3 * cs, &m, &why), 0);
			CHECK_EQ(m.type, QCOW2_CLUSTER_NORMAL);
			CHECK_EQ(m.host_offset, 3 * cs);
			CHECK(!m.copied);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COPIED |
						       9 * cs, &m, &why), 0);
			CHECK_EQ(m.type, QCOW2_CLUSTER_NORMAL);
			CHECK_EQ(m.host_offset, 9 * cs);
			CHECK(m.copied);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_L2E_OFFSET_MASK &
						       ~(cs - 1), &m, &why), 0);
			CHECK_EQ(m.host_offset, QCOW2_L2E_OFFSET_MASK & ~(cs - 1));
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_ZERO,
						       &m, &why), zerr);
			if (!zerr)
				CHECK_EQ(m.type, QCOW2_CLUSTER_ZERO_PLAIN);
			else
				CHECK(strstr(why, "pre-v3"));
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COPIED |
						       QCOW2_OFLAG_ZERO | 4 * cs,
						       &m, &why), zerr);
			if (!zerr) {
				CHECK_EQ(m.type, QCOW2_CLUSTER_ZERO_ALLOC);
				CHECK_EQ(m.host_offset, 4 * cs);
				CHECK(m.copied);
			}
			if (cs > 512) {
				CHECK_EQ(qcow2_decode_l2_entry(&lay, 4 * cs + 512,
							       &m, &why),
					 -EUCLEAN);
				CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_ZERO |
							       512, &m, &why),
					 v == 2 ? -EUCLEAN : -EUCLEAN);
			}
			for (bit = 0; bit < 62; bit++) {
				u64 b = 1ULL << bit;
				int err = 0;

				if (b & QCOW2_L2E_STD_RESERVED_MASK)
					err = -EUCLEAN;
				else if ((b & QCOW2_L2E_OFFSET_MASK) && b < cs)
					err = -EUCLEAN;
				else if (b == QCOW2_OFLAG_ZERO)
					err = zerr;
				CHECK_EQ(qcow2_decode_l2_entry(&lay, b | 2 * cs,
							       &m, &why), err);
			}
			end("l2: v%u standard entries for cluster size %llu",
			    v, cs);
		}
	}
}

static void test_compressed(void)
{
	struct qcow2_layout lay;
	struct qcow2_mapping m;
	const char *why;
	u32 cb;

	begin();
	layout_for(&lay, 3, 16);
	CHECK_EQ(qcow2_decode_l2_entry(&lay, 0x40400000001501e0ULL, &m, &why), 0);
	CHECK_EQ(m.type, QCOW2_CLUSTER_COMPRESSED);
	CHECK_EQ(m.host_offset, 0x1501e0);
	CHECK_EQ(m.csize, 1024 - 0x1e0);
	CHECK(!m.copied);
	end("compressed: worked example 0x40400000001501e0 (64K)");

	for (cb = 9; cb <= 21; cb++) {
		u32 x = 62 - (cb - 8);
		u64 cs = 1ULL << cb, field, off, max_off;
		u64 offs[] = { 0, 1, 511, 512, 0x1501e0, cs + 17 };
		size_t i;

		begin();
		layout_for(&lay, 2, cb);
		CHECK_EQ(lay.csize_shift, x);
		max_off = x > 56 ? QCOW2_MAX_HOST_OFFSET : (1ULL << x) - 1;
		for (field = 0; field <= lay.csize_mask;
		     field = field ? field * 2 + 1 : 1) {
			for (i = 0; i <= ARRAY_SIZE(offs); i++) {
				u64 e;

				off = i < ARRAY_SIZE(offs) ? offs[i] : max_off;
				e = QCOW2_OFLAG_COMPRESSED | field << x | off;
				CHECK_EQ(qcow2_decode_l2_entry(&lay, e, &m, &why),
					 0);
				CHECK_EQ(m.type, QCOW2_CLUSTER_COMPRESSED);
				CHECK_EQ(m.host_offset, off);
				CHECK_EQ(m.csize, (field + 1) * 512 - (off & 511));
				/* compressed entries never carry COPIED */
				CHECK_EQ(qcow2_decode_l2_entry(&lay,
							       e | QCOW2_OFLAG_COPIED,
							       &m, &why), -EUCLEAN);
			}
		}
		/* the largest descriptor covers two clusters of data */
		CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COMPRESSED |
					       lay.csize_mask << x, &m, &why), 0);
		CHECK_EQ(m.csize, 2 * cs);
		/* reserved L2 bits are part of the descriptor here */
		CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COMPRESSED | 1,
					       &m, &why), 0);
		if (x > 56) {
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COMPRESSED |
						       1ULL << 56, &m, &why),
				 -EUCLEAN);
			CHECK_EQ(qcow2_decode_l2_entry(&lay, QCOW2_OFLAG_COMPRESSED |
						       1ULL << (x - 1), &m, &why),
				 -EUCLEAN);
		}
		end("compressed: descriptor arithmetic for cluster size %llu",
		    cs);
	}

	begin();
	layout_for(&lay, 3, 16);
	m = (struct qcow2_mapping){ .type = QCOW2_CLUSTER_COMPRESSED,
				    .host_offset = 0x1501e0, .csize = 544 };
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0x150400, &why), 0);
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0x150201, &why), 0);
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0x150200, &why), -EUCLEAN);
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0x1501e1, &why), -EUCLEAN);
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0x1501e0, &why), -EUCLEAN);
	CHECK_EQ(qcow2_check_compressed(&lay, &m, 0, &why), -EUCLEAN);
	m.host_offset = ~0ULL - 100;
	CHECK_EQ(qcow2_check_compressed(&lay, &m, ~0ULL, &why), -EUCLEAN);
	m.host_offset = ~0ULL - 1000;
	CHECK_EQ(qcow2_check_compressed(&lay, &m, ~0ULL, &why), 0);
	m.type = QCOW2_CLUSTER_NORMAL;
	CHECK_EQ(qcow2_check_compressed(&lay, &m, ~0ULL, &why), -EINVAL);
	end("compressed: range checked against the file size");
}

static void test_reftable_entries(void)
{
	u32 cb, bit;

	for (cb = 9; cb <= 21; cb++) {
		struct qcow2_layout lay;
		u64 cs = 1ULL << cb, off;
		const char *why;

		begin();
		layout_for(&lay, 3, cb);
		CHECK_EQ(qcow2_decode_reftable_entry(&lay, 0, &off, &why), 0);
		CHECK_EQ(off, 0);
		CHECK_EQ(qcow2_decode_reftable_entry(&lay, 7 * cs, &off, &why),
			 0);
		CHECK_EQ(off, 7 * cs);
		CHECK_EQ(qcow2_decode_reftable_entry(&lay, QCOW2_MAX_HOST_OFFSET &
						     ~(cs - 1), &off, &why), 0);
		for (bit = 0; bit < 64; bit++) {
			u64 b = 1ULL << bit;
			bool bad = b < cs || b > QCOW2_MAX_HOST_OFFSET;

			CHECK_EQ(qcow2_decode_reftable_entry(&lay, b | cs, &off,
							     &why),
				 bad ? -EUCLEAN : 0);
		}
		end("reftable: entries for cluster size %llu", cs);
	}
}

/* -------------------------------------------------------------- refcounts */

static void test_refcounts(void)
{
	enum { BLOCK = 4096 };
	static u8 block[BLOCK], orig[BLOCK];
	u32 order;

	for (order = 0; order <= 6; order++) {
		u64 n = (u64)BLOCK * 8 >> order;
		u64 max = order == 6 ? ~0ULL : (1ULL << (1U << order)) - 1;
		u64 idx[] = { 0, 1, 2, 3, 7, 8, 9, 63, n / 2 + 1, n - 2, n - 1 };
		size_t i;
		u64 j;

		begin();
		srand(order + 1);
		for (i = 0; i < BLOCK; i++)
			orig[i] = rand();
		for (i = 0; i < ARRAY_SIZE(idx); i++) {
			u64 vals[] = { max, 0, 1, max >> 1, max - 1 };
			size_t k;

			for (k = 0; k < ARRAY_SIZE(vals); k++) {
				memcpy(block, orig, BLOCK);
				qcow2_refcount_set(block, order, idx[i], vals[k]);
				CHECK_EQ(qcow2_refcount_get(block, order, idx[i]),
					 vals[k]);
				for (j = 0; j < n; j++) {
					if (j == idx[i])
						continue;
					if (qcow2_refcount_get(block, order, j) !=
					    qcow2_refcount_get(orig, order, j)) {
						printf("# order %u: set %llu changed %llu\n",
						       order,
						       (unsigned long long)idx[i],
						       (unsigned long long)j);
						case_failed = true;
						break;
					}
				}
			}
		}
		end("refcount: %u-bit entries round trip, neighbours intact",
		    1U << order);
	}

	begin();
	memset(block, 0, BLOCK);
	qcow2_refcount_set(block, 0, 0, 1);
	CHECK_EQ(block[0], 0x01);
	qcow2_refcount_set(block, 0, 9, 1);
	CHECK_EQ(block[1], 0x02);
	qcow2_refcount_set(block, 1, 5, 3);
	CHECK_EQ(block[1], 0x0e);
	qcow2_refcount_set(block, 2, 5, 0xa);
	CHECK_EQ(block[2], 0xa0);
	qcow2_refcount_set(block, 3, 3, 0x42);
	CHECK_EQ(block[3], 0x42);
	qcow2_refcount_set(block, 4, 2, 0x1234);
	CHECK_EQ(block[4], 0x12);
	CHECK_EQ(block[5], 0x34);
	qcow2_refcount_set(block, 5, 2, 0x01020304);
	CHECK(!memcmp(block + 8, "\x01\x02\x03\x04", 4));
	qcow2_refcount_set(block, 6, 2, 0x0102030405060708ULL);
	CHECK(!memcmp(block + 16, "\x01\x02\x03\x04\x05\x06\x07\x08", 8));
	CHECK_EQ(qcow2_refcount_get(block, 7, 0), 0);
	end("refcount: on-disk layout (LSB-first sub-byte, big endian)");
}

/* ------------------------------------------------------------ table check */

static void test_check_table(void)
{
	struct qcow2_layout lay;
	const char *why;

	begin();
	layout_for(&lay, 3, 16);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, 8, 8, 64, 2 * CS64K, &why), 0);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, 9, 8, 64, 2 * CS64K, &why),
		 -EFBIG);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, 1ULL << 61, 8, ~0ULL, ~0ULL,
				   &why), -EFBIG);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, ~0ULL, ~0ULL, ~0ULL, ~0ULL,
				   &why), -EFBIG);
	CHECK_EQ(qcow2_check_table(&lay, CS64K + 512, 1, 8, 64, 2 * CS64K,
				   &why), -EINVAL);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, CS64K / 8, 8, ~0ULL, 2 * CS64K,
				   &why), 0);
	CHECK_EQ(qcow2_check_table(&lay, CS64K, CS64K / 8 + 1, 8, ~0ULL,
				   2 * CS64K, &why), -EINVAL);
	CHECK_EQ(qcow2_check_table(&lay, ~0ULL << 16, 1ULL << 14, 8, ~0ULL,
				   ~0ULL, &why), -EINVAL);
	CHECK_EQ(qcow2_check_table(&lay, 100 * CS64K, 0, 8, 64, CS64K, &why), 0);
	CHECK_EQ(qcow2_check_table(&lay, 100 * CS64K + 1, 0, 8, 64, CS64K,
				   &why), -EINVAL);
	end("check_table: size limit, alignment, file bounds, overflow");
}

/* -------------------------------------------------------------- snapshots */

static size_t put_snapshot(u8 *b, u64 l1_off, u32 l1_size, const char *id,
			   const char *name, u32 extra_size, const u8 *extra)
{
	size_t idl = strlen(id), nl = strlen(name);

	memset(b, 0, 40);
	put8(b, 0, l1_off, 8);
	put8(b, 8, l1_size, 4);
	put8(b, 12, idl, 2);
	put8(b, 14, nl, 2);
	put8(b, 16, 1700000000, 4);
	put8(b, 20, 123456789, 4);
	put8(b, 24, 0x1122334455667788ULL, 8);
	put8(b, 32, 0xabcd, 4);
	put8(b, 36, extra_size, 4);
	if (extra_size)
		memcpy(b + 40, extra, extra_size);
	memcpy(b + 40 + extra_size, id, idl);
	memcpy(b + 40 + extra_size + idl, name, nl);
	return 40 + extra_size + idl + nl;
}

static void test_snapshots(void)
{
	struct qcow2_snapshot_info sn;
	struct qcow2_layout v2, v3;
	u8 sbuf[4096], extra[1100];
	const char *why;
	size_t n;

	memset(extra, 0, sizeof(extra));
	put8(extra, 0, 0x123456789ULL, 8);	/* vm_state_size_large */
	put8(extra, 8, 1 << 30, 8);		/* disk_size */
	put8(extra, 16, 42, 8);			/* icount */

	begin();
	layout_for(&v2, 2, 16);
	memset(sbuf, 0, sizeof(sbuf));
	CHECK_EQ(qcow2_parse_snapshot(&v2, sbuf, 40, 0, &sn, &why), 0);
	CHECK_EQ(sn.entry_len, 40);
	CHECK_EQ(sn.disk_size, v2.size);
	CHECK_EQ(sn.icount, -1);
	CHECK_EQ(sn.vm_state_size, 0);
	CHECK_EQ(sn.id_len + sn.name_len, 0);
	CHECK_EQ(qcow2_parse_snapshot(&v2, sbuf, 39, 0, &sn, &why), -EINVAL);
	end("snapshot: v2 all-zero entry");

	begin();
	layout_for(&v3, 3, 16);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 40, 0, &sn, &why), -EINVAL);
	end("snapshot: v3 entry without extra data refused");

	begin();
	n = put_snapshot(sbuf, 5 * CS64K, 16, "1", "snap", 24, extra);
	CHECK_EQ(n, 69);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, 6 * CS64K, &sn, &why), 0);
	CHECK_EQ(sn.l1_table_offset, 5 * CS64K);
	CHECK_EQ(sn.l1_size, 16);
	CHECK_EQ(sn.date_sec, 1700000000);
	CHECK_EQ(sn.date_nsec, 123456789);
	CHECK_EQ(sn.vm_clock_nsec, 0x1122334455667788ULL);
	CHECK_EQ(sn.vm_state_size, 0x123456789ULL);
	CHECK_EQ(sn.disk_size, 1 << 30);
	CHECK_EQ(sn.icount, 42);
	CHECK_EQ(sn.extra_data_size, 24);
	CHECK_EQ(sn.id_offset, 64);
	CHECK_EQ(sn.id_len, 1);
	CHECK_EQ(sn.name_offset, 65);
	CHECK_EQ(sn.name_len, 4);
	CHECK_EQ(sn.entry_len, 72);
	CHECK(!memcmp(sbuf + sn.name_offset, "snap", 4));
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n - 1, 6 * CS64K, &sn, &why),
		 -EINVAL);
	end("snapshot: v3 entry with 24 bytes of extra data");

	begin();
	n = put_snapshot(sbuf, 5 * CS64K, 16, "7", "x", 16, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, 6 * CS64K, &sn, &why), 0);
	CHECK_EQ(sn.icount, -1);
	CHECK_EQ(sn.disk_size, 1 << 30);
	CHECK_EQ(sn.entry_len, 64);
	n = put_snapshot(sbuf, 5 * CS64K, 16, "7", "x", 8, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, 6 * CS64K, &sn, &why),
		 -EINVAL);
	CHECK_EQ(qcow2_parse_snapshot(&v2, sbuf, n, 6 * CS64K, &sn, &why), 0);
	CHECK_EQ(sn.vm_state_size, 0x123456789ULL);
	CHECK_EQ(sn.disk_size, v2.size);
	n = put_snapshot(sbuf, 5 * CS64K, 16, "7", "x", 4, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v2, sbuf, n, 6 * CS64K, &sn, &why), 0);
	CHECK_EQ(sn.vm_state_size, 0xabcd);
	end("snapshot: partial extra data (16, 8, 4 bytes)");

	begin();
	n = put_snapshot(sbuf, 0, 0, "12", "big", 1024, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, CS64K, &sn, &why), 0);
	CHECK_EQ(sn.id_offset, 40 + 1024);
	CHECK_EQ(sn.entry_len, 40 + 1024 + 8);
	n = put_snapshot(sbuf, 0, 0, "12", "big", 1025, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, CS64K, &sn, &why), -EFBIG);
	put8(sbuf, 36, ~0U, 4);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, sizeof(sbuf), CS64K, &sn,
				      &why), -EFBIG);
	end("snapshot: 1024 bytes of extra data ok, 1025 too much");

	begin();
	n = put_snapshot(sbuf, 0, 0, "1", "name", 24, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 63, CS64K, &sn, &why), -EINVAL);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 64, CS64K, &sn, &why), -EINVAL);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 65, CS64K, &sn, &why), -EINVAL);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 68, CS64K, &sn, &why), -EINVAL);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, 69, CS64K, &sn, &why), 0);
	put8(sbuf, 12, 0xffff, 2);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, sizeof(sbuf), CS64K, &sn,
				      &why), -EINVAL);
	put8(sbuf, 12, 1, 2);
	put8(sbuf, 14, 0xffff, 2);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, sizeof(sbuf), CS64K, &sn,
				      &why), -EINVAL);
	end("snapshot: extra data, ID or name past the end refused");

	begin();
	n = put_snapshot(sbuf, 5 * CS64K, 4194304, "1", "a", 24, extra);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, 5 * CS64K + (32 << 20),
				      &sn, &why), 0);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, 5 * CS64K + (32 << 20) - 1,
				      &sn, &why), -EINVAL);
	put8(sbuf, 8, 4194305, 4);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, ~0ULL, &sn, &why), -EFBIG);
	put8(sbuf, 8, 1, 4);
	put8(sbuf, 0, 5 * CS64K + 512, 8);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, ~0ULL, &sn, &why), -EINVAL);
	put8(sbuf, 0, ~0ULL << 16, 8);
	put8(sbuf, 8, 1 << 14, 4);
	CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, n, ~0ULL, &sn, &why), -EINVAL);
	end("snapshot: L1 table size, alignment and bounds");

	begin();
	{
		size_t a, b;

		memset(sbuf, 0, sizeof(sbuf));
		a = put_snapshot(sbuf, CS64K, 1, "1", "first", 24, extra);
		a = (a + 7) & ~7UL;
		b = put_snapshot(sbuf + a, 2 * CS64K, 1, "22", "second one",
				 32, extra);
		CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf, a + b, 3 * CS64K, &sn,
					      &why), 0);
		CHECK_EQ(sn.entry_len, a);
		CHECK_EQ(qcow2_parse_snapshot(&v3, sbuf + sn.entry_len,
					      a + b - sn.entry_len, 3 * CS64K,
					      &sn, &why), 0);
		CHECK_EQ(sn.l1_table_offset, 2 * CS64K);
		CHECK_EQ(sn.id_offset, 72);
		CHECK(!memcmp(sbuf + a + sn.name_offset, "second one", 10));
	}
	end("snapshot: walking two entries with unknown extra data");
}

/* --------------------------------------------------------- real images */

static char tmpdir[64];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = system(cmd);
	if (ret)
		printf("# command failed (%d): %s\n", ret, cmd);
	return ret;
}

static char *slurp_cmd(const char *cmd)
{
	static char out[1 << 16];
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	if (pclose(f))
		return NULL;
	return out;
}

/* First value of "key": in qemu-img's JSON, as a number or a string. */
static bool json_get(const char *json, const char *key, char *val, size_t sz)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(json, pat);
	if (!p)
		return false;
	p += strlen(pat);
	if (*p == '"')
		p++;
	while (*p && *p != '"' && *p != ',' && *p != '\n' && *p != '}' &&
	       n + 1 < sz)
		val[n++] = *p++;
	val[n] = 0;
	return true;
}

static u8 *read_file(const char *path, size_t max, size_t *len, u64 *fsize)
{
	struct stat st;
	FILE *f;
	u8 *b;

	if (stat(path, &st))
		return NULL;
	*fsize = st.st_size;
	b = calloc(1, max);
	f = fopen(path, "rb");
	if (!b || !f) {
		free(b);
		if (f)
			fclose(f);
		return NULL;
	}
	*len = fread(b, 1, max, f);
	fclose(f);
	return b;
}

static u64 be64_at(const u8 *b)
{
	return get_unaligned_be64(b);
}

/*
 * Walk L1 -> L2 of the image and count cluster types; every entry must
 * decode, and compressed ranges must lie in the file.
 */
static void walk_image(const u8 *img, size_t len, u64 fsize,
		       const struct qcow2_layout *lay, unsigned int *counts)
{
	const char *why = NULL;
	u64 i, j;

	for (i = 0; i < lay->l1_size; i++) {
		u64 l1o = lay->l1_table_offset + i * 8, l2o;

		if (l1o + 8 > len) {
			printf("# L1 outside what was read\n");
			case_failed = true;
			return;
		}
		if (qcow2_decode_l1_entry(lay, be64_at(img + l1o), &l2o, &why)) {
			printf("# L1[%llu]: %s\n", (unsigned long long)i, why);
			case_failed = true;
			continue;
		}
		if (!l2o)
			continue;
		if (l2o + lay->cluster_size > len) {
			printf("# L2 outside what was read\n");
			case_failed = true;
			continue;
		}
		for (j = 0; j < qcow2_l2_entries(lay); j++) {
			struct qcow2_mapping m;

			if (qcow2_decode_l2_entry(lay, be64_at(img + l2o + j * 8),
						  &m, &why)) {
				printf("# L2 entry: %s\n", why);
				case_failed = true;
				continue;
			}
			counts[m.type]++;
			if (m.type == QCOW2_CLUSTER_COMPRESSED &&
			    qcow2_check_compressed(lay, &m, fsize, &why)) {
				printf("# %s\n", why);
				case_failed = true;
			}
		}
	}
}

struct real_image {
	const char *name;
	const char *create;	/* shell commands; $I is the image path */
	u32 version;
	u64 cluster_size;
	u32 refcount_bits;
	u32 compression;
	u32 nb_snapshots;
	bool backing;
	int want_type;		/* a cluster type that must be present, or -1 */
};

static const struct real_image images[] = {
	{ "v2 compat=0.10", "qemu-img create -q -f qcow2 -o compat=0.10 $I 64M && "
	  "qemu-io -c 'write -P 0x5a 0 8k' $I", 2, 65536, 16, 0, 0, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v3 default", "qemu-img create -q -f qcow2 $I 1G && "
	  "qemu-io -c 'write -P 1 1M 64k' -c 'write -z 4M 64k' $I", 3, 65536,
	  16, 0, 0, false, QCOW2_CLUSTER_ZERO_PLAIN },
	{ "v3 cluster_size=512", "qemu-img create -q -f qcow2 -o cluster_size=512 $I 8M && "
	  "qemu-io -c 'write -P 2 0 4k' $I", 3, 512, 16, 0, 0, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v3 cluster_size=2M", "qemu-img create -q -f qcow2 -o cluster_size=2M $I 1G && "
	  "qemu-io -c 'write -P 3 0 4k' $I", 3, 2 << 20, 16, 0, 0, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v3 refcount_bits=1", "qemu-img create -q -f qcow2 -o refcount_bits=1 $I 64M && "
	  "qemu-io -c 'write 0 64k' $I", 3, 65536, 1, 0, 0, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v3 refcount_bits=64", "qemu-img create -q -f qcow2 -o refcount_bits=64 $I 64M && "
	  "qemu-io -c 'write 0 64k' $I", 3, 65536, 64, 0, 0, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v3 zstd compressed", "qemu-img create -q -f raw $I.raw 4M && "
	  "qemu-io -f raw -c 'write -P 7 0 1M' $I.raw && "
	  "qemu-img convert -c -O qcow2 -o compression_type=zstd $I.raw $I",
	  3, 65536, 16, 1, 0, false, QCOW2_CLUSTER_COMPRESSED },
	{ "v3 zlib compressed 4K", "qemu-img create -q -f raw $I.raw 4M && "
	  "qemu-io -f raw -c 'write -P 7 0 1M' $I.raw && "
	  "qemu-img convert -c -O qcow2 -o cluster_size=4k $I.raw $I",
	  3, 4096, 16, 0, 0, false, QCOW2_CLUSTER_COMPRESSED },
	{ "v3 with snapshots", "qemu-img create -q -f qcow2 $I 64M && "
	  "qemu-io -c 'write 0 64k' $I && qemu-img snapshot -c first $I && "
	  "qemu-img snapshot -c second-snapshot $I", 3, 65536, 16, 0, 2, false,
	  QCOW2_CLUSTER_NORMAL },
	{ "v2 with snapshot", "qemu-img create -q -f qcow2 -o compat=0.10 $I 64M && "
	  "qemu-io -c 'write 0 64k' $I && qemu-img snapshot -c s1 $I",
	  2, 65536, 16, 0, 1, false, QCOW2_CLUSTER_NORMAL },
	{ "v3 with backing file", "qemu-img create -q -f qcow2 $I.base 64M && "
	  "qemu-img create -q -f qcow2 -b $I.base -F qcow2 $I", 3, 65536, 16, 0,
	  0, true, -1 },
	{ "v3 lazy_refcounts", "qemu-img create -q -f qcow2 -o lazy_refcounts=on $I 64M",
	  3, 65536, 16, 0, 0, false, -1 },
	{ "v3 size 0", "qemu-img create -q -f qcow2 $I 0", 3, 65536, 16, 0, 0,
	  false, -1 },
};

static void test_real_image(const struct real_image *ri, int idx)
{
	char path[128], cmd[1024], val[64], *json;
	unsigned int counts[QCOW2_CLUSTER_COMPRESSED + 1] = { 0 };
	struct qcow2_layout lay;
	const char *why = NULL;
	u64 fsize = 0, i;
	size_t len = 0;
	u8 *img;
	int ret;

	begin();
	snprintf(path, sizeof(path), "%s/img%d.qcow2", tmpdir, idx);
	if (run("I=%s; ( %s ) >/dev/null", path, ri->create))
		goto out;
	img = read_file(path, 64 << 20, &len, &fsize);
	if (!img) {
		case_failed = true;
		goto out;
	}
	ret = qcow2_parse_header(img, len, fsize, &lay, &why);
	CHECK_EQ(ret, 0);
	if (ret) {
		printf("# %s\n", why);
		goto free;
	}
	ret = qcow2_parse_extensions(img, len < lay.cluster_size ? len :
				     lay.cluster_size, &lay, &why);
	CHECK_EQ(ret, 0);
	if (ret)
		printf("# %s\n", why);

	snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json %s", path);
	json = slurp_cmd(cmd);
	CHECK(json);
	if (!json)
		goto free;
	CHECK(json_get(json, "cluster-size", val, sizeof(val)));
	CHECK_EQ(strtoull(val, NULL, 0), lay.cluster_size);
	CHECK(json_get(json, "virtual-size", val, sizeof(val)));
	CHECK_EQ(strtoull(val, NULL, 0), lay.size);
	CHECK(json_get(json, "refcount-bits", val, sizeof(val)));
	CHECK_EQ(strtoull(val, NULL, 0), 1U << lay.refcount_order);
	CHECK(json_get(json, "compat", val, sizeof(val)));
	CHECK(!strcmp(val, lay.version == 2 ? "0.10" : "1.1"));
	if (lay.version == 3) {
		CHECK(json_get(json, "compression-type", val, sizeof(val)));
		CHECK(!strcmp(val, lay.compression_type ? "zstd" : "zlib"));
		CHECK(json_get(json, "lazy-refcounts", val, sizeof(val)));
		CHECK_EQ(!strcmp(val, "true"), !!(lay.compatible_features &
						   QCOW2_COMPAT_LAZY_REFCOUNTS));
	}

	CHECK_EQ(lay.version, ri->version);
	CHECK_EQ(lay.cluster_size, ri->cluster_size);
	CHECK_EQ(1U << lay.refcount_order, ri->refcount_bits);
	CHECK_EQ(lay.compression_type, ri->compression);
	CHECK_EQ(lay.nb_snapshots, ri->nb_snapshots);
	CHECK_EQ(!!lay.backing_file_offset, ri->backing);
	CHECK_EQ(lay.has_backing_format, ri->backing);
	CHECK_EQ(lay.has_feature_table,
		 lay.version == 3 && lay.cluster_size > 4096);
	if (ri->backing)
		CHECK(lay.backing_file_size == strlen(path) + 5 &&
		      !memcmp(img + lay.backing_file_offset, path,
			      strlen(path)));

	walk_image(img, len, fsize, &lay, counts);
	if (ri->want_type >= 0)
		CHECK(counts[ri->want_type] > 0);

	/* Snapshot names must match qemu-img's list, in order. */
	{
		u64 off = lay.snapshots_offset;
		const char *p = json;

		for (i = 0; i < lay.nb_snapshots; i++) {
			struct qcow2_snapshot_info sn;

			CHECK(off < len);
			if (off >= len)
				break;
			ret = qcow2_parse_snapshot(&lay, img + off, len - off,
						   fsize, &sn, &why);
			CHECK_EQ(ret, 0);
			if (ret) {
				printf("# %s\n", why);
				break;
			}
			p = strstr(p, "\"name\": \"");
			CHECK(p);
			if (!p)
				break;
			p += strlen("\"name\": \"");
			CHECK(!strncmp(p, (char *)img + off + sn.name_offset,
				       sn.name_len) && p[sn.name_len] == '"');
			CHECK_EQ(sn.disk_size, lay.size);
			CHECK_EQ(sn.extra_data_size, 24);
			off += sn.entry_len;
		}
	}
free:
	free(img);
out:
	end("qemu-img %s: parse matches qemu-img info", ri->name);
}

static void test_real_images(void)
{
	size_t i;

	if (system("qemu-img --version >/dev/null 2>&1") ||
	    system("qemu-io --version >/dev/null 2>&1")) {
		for (i = 0; i < ARRAY_SIZE(images); i++) {
			char name[128];

			snprintf(name, sizeof(name),
				 "qemu-img %s: parse matches qemu-img info",
				 images[i].name);
			skip(name, "qemu-img/qemu-io not installed");
		}
		return;
	}
	strcpy(tmpdir, "/tmp/qcow2-test-format.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		begin();
		case_failed = true;
		end("qemu-img: temporary directory");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(images); i++)
		test_real_image(&images[i], (int)i);
	run("rm -rf %s", tmpdir);
}

/* Big-endian field of @width bytes at @off. */
static u64 get8(const u8 *b, size_t off, unsigned int width)
{
	u64 v = 0;

	while (width--)
		v = v << 8 | b[off++];
	return v;
}

/* The encoder writes what the parser reads back, as QEMU writes it. */
static void test_snapshot_encode(void)
{
	struct qcow2_snapshot_info in, out;
	struct qcow2_layout v3;
	u8 buf[2048], unknown[40];
	char name[256];
	const char *why;
	u32 n, off;

	layout_for(&v3, 3, 16);
	memset(&in, 0, sizeof(in));
	in.l1_table_offset = 5 * CS64K;
	in.l1_size = 16;
	in.date_sec = 1700000000;
	in.date_nsec = 999999999;
	in.vm_clock_nsec = 7;
	in.vm_state_size = 0x100000000ULL;	/* does not fit 32 bits */
	in.disk_size = 1 << 30;
	in.icount = -1;

	begin();
	memset(buf, 0xee, sizeof(buf));
	n = qcow2_encode_snapshot(buf, &in, NULL, 0, "1", 1, "snap", 4);
	CHECK_EQ(n, qcow2_snapshot_entry_size(0, 1, 4));
	CHECK_EQ(n, 72);
	CHECK_EQ(get8(buf, 32, 4), 0);		/* 32-bit VM state size */
	CHECK_EQ(get8(buf, 36, 4), 24);		/* extra_data_size */
	CHECK_EQ(buf[69] | buf[70] | buf[71], 0);	/* padding zeroed */
	CHECK_EQ(qcow2_parse_snapshot(&v3, buf, n, 6 * CS64K, &out, &why), 0);
	CHECK_EQ(out.l1_table_offset, in.l1_table_offset);
	CHECK_EQ(out.l1_size, in.l1_size);
	CHECK_EQ(out.date_sec, in.date_sec);
	CHECK_EQ(out.date_nsec, in.date_nsec);
	CHECK_EQ(out.vm_clock_nsec, in.vm_clock_nsec);
	CHECK_EQ(out.vm_state_size, in.vm_state_size);
	CHECK_EQ(out.disk_size, in.disk_size);
	CHECK_EQ(out.icount, -1);
	CHECK_EQ(out.entry_len, n);
	CHECK(!memcmp(buf + out.id_offset, "1", 1));
	CHECK(!memcmp(buf + out.name_offset, "snap", 4));
	CHECK_EQ(qcow2_snapshot_unknown_extra(&out, &off), 0);
	end("snapshot encode: round trip, 24 bytes of extra data");

	begin();
	memset(unknown, 0xab, sizeof(unknown));
	memset(name, 'n', 255);
	in.vm_state_size = 4096;
	n = qcow2_encode_snapshot(buf, &in, unknown, sizeof(unknown), "65536",
				  5, name, 255);
	CHECK_EQ(n, qcow2_snapshot_entry_size(sizeof(unknown), 5, 255));
	CHECK_EQ(get8(buf, 32, 4), 4096);
	CHECK_EQ(qcow2_parse_snapshot(&v3, buf, n, 6 * CS64K, &out, &why), 0);
	CHECK_EQ(out.extra_data_size, 24 + sizeof(unknown));
	CHECK_EQ(out.name_len, 255);
	CHECK_EQ(qcow2_snapshot_unknown_extra(&out, &off), sizeof(unknown));
	CHECK_EQ(off, 64);
	CHECK(!memcmp(buf + off, unknown, sizeof(unknown)));
	CHECK_EQ(out.entry_len, n);
	end("snapshot encode: unknown extra data kept, 255-byte name");
}

int main(void)
{
	hbuf = calloc(1, BUF_SIZE);
	if (!hbuf)
		return 2;

	test_valid_headers();
	test_header_mutations();
	test_extensions();
	test_l1_entries();
	test_l2_entries();
	test_compressed();
	test_reftable_entries();
	test_refcounts();
	test_check_table();
	test_snapshots();
	test_snapshot_encode();
	test_real_images();

	printf("# %u passed, %u failed, %u skipped\n", n_pass, n_fail, n_skip);
	free(hbuf);
	return n_fail ? 1 : 0;
}
