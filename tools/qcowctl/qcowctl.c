// SPDX-License-Identifier: GPL-2.0
/*
 * Attach qcow2 image files as /dev/qcowN block devices.
 *
 * This file turns argv into calls of libqcowctl and words the results;
 * the ioctls themselves live in libqcowctl.c.  Output and error
 * conventions follow losetup: "qcowctl: object: what failed: reason",
 * exit 0 on success, 1 on failure, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libqcowctl.h"
#include "strutils.h"

#define QCOWCTL_VERSION	"0.1"
#define BAD_DEVICE_FMT	"'%s' is not a qcow device (expected /dev/qcowN, qcowN or N)"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;	/* one line per form, each after "qcowctl NAME " */
	const char *summary;
	const char *options;
};

static const struct command *cur_cmd;
static const char *cur_sub;	/* "create" in "qcowctl snapshot create" */

/* ---- messages ---------------------------------------------------------- */

static void __attribute__((format(printf, 1, 2))) errmsg(const char *fmt, ...)
{
	va_list ap;

	fputs("qcowctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "qcowctl: OBJ: WHAT: strerror (HINT)" */
static void report(const char *obj, const char *what, int err,
		   const char *hint)
{
	errmsg("%s: %s: %s%s%s%s", obj, what, strerror(err),
	       hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
}

/* After getopt has already said what was wrong. */
static int try_help(void)
{
	const char *name = cur_cmd ? cur_cmd->name : NULL;

	fprintf(stderr, "Try 'qcowctl%s%s --help' for more information.\n",
		name ? " " : "", name ? name : "");
	return EXIT_USAGE;
}

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt,
							     ...)
{
	const char *name = cur_cmd ? cur_cmd->name : NULL;
	va_list ap;

	fprintf(stderr, "qcowctl%s%s%s%s: ", name ? " " : "", name ? name : "",
		cur_sub ? " " : "", cur_sub ? cur_sub : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return try_help();
}

/* The driver's answers for an index that has no device (any more). */
static bool no_such_device(int err)
{
	return err == ENXIO || err == ENODEV || err == ENOENT;
}

/* Hints for errnos whose strerror() alone sends the user the wrong way. */
static const char *ioctl_hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return "this needs CAP_SYS_ADMIN; are you root?";
	case ENOTTY:
		return "the loaded driver does not know this request; is it older than qcowctl?";
	default:
		return NULL;
	}
}

static const char *device_hint(int err)
{
	/* ENODEV says it well enough; the others read like path errors. */
	if (err == ENOENT || err == ENXIO)
		return "no such qcow device";
	return ioctl_hint(err);
}

static int open_control(struct qc_ctx *ctx)
{
	int ret = qc_open_control(ctx);
	const char *hint = NULL;

	if (!ret)
		return 0;
	if (ret == -ENOENT)
		hint = "is the qcow2 module loaded?";
	else if (ret == -EACCES || ret == -EPERM)
		hint = "are you root?";
	report(ctx->ctl_path, "cannot open control device", -ret, hint);
	return ret;
}

/* ---- output helpers ---------------------------------------------------- */

struct name_bit {
	unsigned int bit;
	const char *name;
};

static const struct name_bit incompat_names[] = {
	{ 0, "dirty" }, { 1, "corrupt" }, { 2, "data-file" },
	{ 3, "compression-type" }, { 4, "extended-l2" }, { 0, NULL },
};

static const struct name_bit compat_names[] = {
	{ 0, "lazy-refcounts" }, { 0, NULL },
};

static const struct name_bit autoclear_names[] = {
	{ 0, "bitmaps" }, { 1, "data-file-raw" }, { 0, NULL },
};

static const struct name_bit driver_feature_names[] = {
	{ 0, "read" }, { 1, "compressed-zlib" }, { 2, "compressed-zstd" },
	{ 3, "v2" }, { 4, "deferred-remove" }, { 5, "write" },
	{ 6, "snapshots" }, { 7, "snapshot-view" }, { 0, NULL },
};

static const struct name_bit add_flag_names[] = {
	{ 0, "read-only" }, { 1, "snapshot" }, { 0, NULL },
};

/*
 * Print the names of the bits set in @val, unknown ones as one hex mask.
 * Text: "a, b, 0x60" or "none".  JSON: ["a", "b", "0x60"].
 */
static void print_bits(const struct name_bit *names, uint64_t val, bool json)
{
	const char *sep = "";

	if (json)
		putchar('[');
	for (; names->name; names++) {
		if (!(val & (1ULL << names->bit)))
			continue;
		val &= ~(1ULL << names->bit);
		printf(json ? "%s\"%s\"" : "%s%s", sep, names->name);
		sep = ", ";
	}
	if (val)
		printf(json ? "%s\"0x%" PRIx64 "\"" : "%s0x%" PRIx64, sep, val);
	else if (!json && !*sep)
		fputs("none", stdout);
	if (json)
		putchar(']');
}

/* Keyed JSON members with the separators handled in one place. */
struct json_obj {
	const char *sep;	/* between members */
	bool first;
};

static void json_key(struct json_obj *o, const char *key)
{
	if (!o->first)
		fputs(o->sep, stdout);
	o->first = false;
	printf("\"%s\": ", key);
}

static void json_str(struct json_obj *o, const char *key, const char *val)
{
	json_key(o, key);
	if (val)
		json_print_string(stdout, val);
	else
		fputs("null", stdout);
}

static void json_u64(struct json_obj *o, const char *key, uint64_t val)
{
	json_key(o, key);
	printf("%" PRIu64, val);
}

static void json_bool(struct json_obj *o, const char *key, bool val)
{
	json_key(o, key);
	fputs(val ? "true" : "false", stdout);
}

static uint64_t pow2(uint32_t bits)
{
	return bits < 64 ? 1ULL << bits : 0;
}

static const char *compression_name(uint32_t type)
{
	switch (type) {
	case 0:
		return "zlib";
	case 1:
		return "zstd";
	default:
		return NULL;
	}
}

static const char *compat_level(uint32_t version)
{
	switch (version) {
	case 2:
		return "0.10";
	case 3:
		return "1.1";
	default:
		return NULL;
	}
}

/* Image path from sysfs, or NULL (text output shows "-", JSON null). */
static const char *image_path(uint32_t index, char *buf, size_t len)
{
	return qc_read_image_path(index, buf, len) ? NULL : buf;
}

/*
 * A snapshot ID or name from the command line: 1 to @max bytes.  0, or
 * the usage error already reported.
 */
static int check_snapshot_key(const char *what, const char *key, size_t max)
{
	size_t len = strlen(key);

	if (!len)
		return usage_error("%s must not be empty", what);
	if (len > max)
		return usage_error("%s is %zu bytes long; the limit is %zu bytes",
				   what, len, max);
	return 0;
}

/* ---- attach ------------------------------------------------------------ */

static int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-only",  no_argument,       NULL, 'r' },
		{ "cache-size", required_argument, NULL, 'c' },
		{ "direct-io",  no_argument,       NULL, 'D' },
		{ "snapshot",   required_argument, NULL, 's' },
		{ "help",       no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool read_only = false, direct_io = false;
	uint64_t cache_size = 0;
	const char *image, *why, *snapshot = NULL;
	uint32_t flags;
	struct qc_ctx ctx;
	uint32_t index;
	int c, fd, ret;

	while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			read_only = true;
			break;
		case 'c':
			ret = parse_size(optarg, &cache_size);
			if (ret)
				return usage_error("invalid --cache-size '%s': %s",
						   optarg, ret == -ERANGE ?
						   "too large" :
						   "expected a number with an optional K, M, G or T suffix");
			break;
		case 'D':
			direct_io = true;
			break;
		case 's':
			ret = check_snapshot_key("--snapshot", optarg,
						 QCOW2_SNAPSHOT_NAME_MAX);
			if (ret)
				return ret;
			snapshot = optarg;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	if (optind >= argc)
		return usage_error("missing IMAGE");
	if (argc - optind > 1)
		return usage_error("too many arguments: '%s'", argv[optind + 1]);
	image = argv[optind];
	qc_init(&ctx);
	/* A snapshot view is read-only: open and lock the image as a reader. */
	if (snapshot)
		read_only = true;
	flags = read_only ? QCOW2_ADD_READ_ONLY : 0;
	if (snapshot)
		flags |= QCOW2_ADD_SNAPSHOT;

	fd = qc_open_image(image, read_only, direct_io);
	if (fd == -EMEDIUMTYPE) {
		errmsg("%s: cannot attach: not a regular file", image);
		return EXIT_FAIL;
	}
	if (fd < 0) {
		const char *hint = NULL;

		if (fd == -EINVAL && direct_io)
			hint = "the file system does not support direct I/O; drop --direct-io";
		else if ((fd == -EROFS || fd == -EACCES) && !read_only)
			hint = "use --read-only to attach it read-only";
		report(image, "cannot open image", -fd, hint);
		return EXIT_FAIL;
	}

	ret = qc_check_image(fd, &why);
	if (ret && why) {
		errmsg("%s: cannot attach: %s", image, why);
		goto fail;
	} else if (ret) {
		report(image, "cannot read image", -ret, NULL);
		goto fail;
	}

	ret = qc_lock_image(fd, read_only ? QC_LOCK_READ_ONLY : 0);
	/*
	 * A snapshot view of an image that one of our devices has open
	 * read-write: that device's write lock is no conflict.
	 */
	if (ret == -EBUSY && snapshot && !qc_open_control(&ctx) &&
	    !qc_find_writer(&ctx, fd, &index))
		ret = qc_lock_image(fd, QC_LOCK_BESIDE_WRITER);
	if (ret == -EBUSY) {
		errmsg("%s: cannot lock image: it is in use by another process (qemu?)",
		       image);
		goto fail;
	} else if (ret) {
		report(image, "cannot lock image", -ret, NULL);
		goto fail;
	}

	if (open_control(&ctx))
		goto fail;
	ret = qc_add(&ctx, fd, flags, cache_size, snapshot, 0, &index);
	qc_close(&ctx);
	if (ret) {
		const char *hint = ioctl_hint(-ret);

		if (snapshot && ret == -ENOENT)
			hint = "no such snapshot";
		else if (snapshot && ret == -E2BIG)
			hint = "the loaded driver has no snapshot views; is it older than qcowctl?";
		else if (ret == -EOPNOTSUPP && read_only)
			hint = "see dmesg for the feature the driver refused";
		else if (ret == -EOPNOTSUPP)
			hint = "see dmesg for the feature the driver refused; try --read-only";
		else if (ret == -EROFS && !read_only)
			hint = "see dmesg; try --read-only";
		else if (!hint)
			hint = "see dmesg for details";
		report(image, "attach failed", -ret, hint);
		goto fail;
	}

	/*
	 * The driver holds its own reference to the open file description,
	 * and with it our OFD locks, until the device goes away.
	 */
	close(fd);
	printf("%s%u\n", QCOW2_DEVICE_PREFIX, index);
	return EXIT_OK;
fail:
	qc_close(&ctx);
	close(fd);
	return EXIT_FAIL;
}

/* ---- detach ------------------------------------------------------------ */

static int detach_one(struct qc_ctx *ctx, uint32_t index, bool ignore_gone)
{
	char dev[32];
	bool deferred;
	int ret;

	snprintf(dev, sizeof(dev), "%s%u", QCOW2_DEVICE_PREFIX, index);
	ret = qc_remove(ctx, index, &deferred);
	if (ret) {
		/* With --all, a device removed meanwhile is no failure. */
		if (ignore_gone && no_such_device(-ret))
			return EXIT_OK;
		report(dev, "detach failed", -ret,
		       ret == -EBUSY ? "a detach is already pending" :
		       device_hint(-ret));
		return EXIT_FAIL;
	}
	if (deferred)
		errmsg("%s: device is busy; it will be detached when the last user closes it",
		       dev);
	return EXIT_OK;
}

static int cmd_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all",  no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	uint32_t *indexes = NULL, count, i;
	struct qc_ctx ctx;
	bool all = false;
	int c, ret, rc = EXIT_OK;

	while ((c = getopt_long(argc, argv, "ah", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	if (all && optind < argc)
		return usage_error("--all takes no DEVICE");
	if (!all && optind >= argc)
		return usage_error("missing DEVICE");

	/* Check every name first so a typo does not leave half the work done. */
	count = all ? 0 : argc - optind;
	if (count) {
		indexes = calloc(count, sizeof(*indexes));
		if (!indexes) {
			errmsg("out of memory");
			return EXIT_FAIL;
		}
	}
	for (i = 0; i < count; i++) {
		if (qc_parse_device(argv[optind + i], &indexes[i])) {
			free(indexes);
			return usage_error(BAD_DEVICE_FMT, argv[optind + i]);
		}
	}

	qc_init(&ctx);
	if (open_control(&ctx)) {
		free(indexes);
		return EXIT_FAIL;
	}
	if (all) {
		ret = qc_list(&ctx, &indexes, &count);
		if (ret) {
			report(ctx.ctl_path, "cannot list devices", -ret,
			       ioctl_hint(-ret));
			rc = EXIT_FAIL;
			count = 0;
		}
	}
	for (i = 0; i < count; i++)
		if (detach_one(&ctx, indexes[i], all) != EXIT_OK)
			rc = EXIT_FAIL;
	qc_close(&ctx);
	free(indexes);
	return rc;
}

/* ---- list -------------------------------------------------------------- */

enum { COL_NAME, COL_SIZE, COL_RO, COL_CLUSTER, COL_VERSION, COL_IMAGE,
	NR_COLS };

static const struct {
	const char *header;
	bool right;
} list_cols[NR_COLS] = {
	[COL_NAME]    = { "NAME",    false },
	[COL_SIZE]    = { "SIZE",    true },
	[COL_RO]      = { "RO",      true },
	[COL_CLUSTER] = { "CLUSTER", true },
	[COL_VERSION] = { "VERSION", true },
	[COL_IMAGE]   = { "IMAGE",   false },
};

struct list_row {
	char name[32], size[32], ro[4], cluster[32], version[16];
	const char *cells[NR_COLS];
};

/* Every column but IMAGE, which only the printing loop reads from sysfs. */
static void list_fill_row(struct list_row *row, uint32_t index,
			  const struct qcow2_info *info)
{
	snprintf(row->name, sizeof(row->name), "%s%u", QCOW2_DEVICE_PREFIX,
		 index);
	size_to_human(info->virtual_size, row->size, sizeof(row->size));
	snprintf(row->ro, sizeof(row->ro), "%d",
		 !!(info->flags & QCOW2_INFO_READ_ONLY));
	snprintf(row->cluster, sizeof(row->cluster), "%" PRIu64,
		 pow2(info->cluster_bits));
	snprintf(row->version, sizeof(row->version), "%u", info->version);
	row->cells[COL_NAME] = row->name;
	row->cells[COL_SIZE] = row->size;
	row->cells[COL_RO] = row->ro;
	row->cells[COL_CLUSTER] = row->cluster;
	row->cells[COL_VERSION] = row->version;
	row->cells[COL_IMAGE] = "-";
}

static void print_row(const char *const cells[NR_COLS],
		      const int width[NR_COLS])
{
	int c;

	for (c = 0; c < NR_COLS; c++) {
		const char *sep = c ? " " : "";

		if (c == NR_COLS - 1)	/* no trailing blanks */
			printf("%s%s", sep, cells[c]);
		else
			printf("%s%*s", sep,
			       list_cols[c].right ? width[c] : -width[c],
			       cells[c]);
	}
	putchar('\n');
}

static void list_json_row(uint32_t index, const struct qcow2_info *info,
			  const char *image, bool last)
{
	struct json_obj o = { .sep = ", ", .first = true };
	char dev[32];

	snprintf(dev, sizeof(dev), "%s%u", QCOW2_DEVICE_PREFIX, index);
	fputs("      {", stdout);
	json_str(&o, "name", dev);
	json_u64(&o, "size", info->virtual_size);
	json_bool(&o, "ro", info->flags & QCOW2_INFO_READ_ONLY);
	json_u64(&o, "cluster-size", pow2(info->cluster_bits));
	json_u64(&o, "version", info->version);
	json_str(&o, "image", image);
	printf("}%s\n", last ? "" : ",");
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",       no_argument, NULL, 'J' },
		{ "noheadings", no_argument, NULL, 'n' },
		{ "help",       no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool json = false, headings = true;
	uint32_t *indexes = NULL, count, i, nrows = 0;
	struct qcow2_info *infos = NULL;
	char path[PATH_MAX + 1];
	int width[NR_COLS];
	struct qc_ctx ctx;
	int c, ret, rc = EXIT_OK;

	while ((c = getopt_long(argc, argv, "Jnh", opts, NULL)) != -1) {
		switch (c) {
		case 'J':
			json = true;
			break;
		case 'n':
			headings = false;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	qc_init(&ctx);
	if (open_control(&ctx))
		return EXIT_FAIL;
	ret = qc_list(&ctx, &indexes, &count);
	if (ret) {
		report(ctx.ctl_path, "cannot list devices", -ret,
		       ioctl_hint(-ret));
		qc_close(&ctx);
		return EXIT_FAIL;
	}
	if (count) {
		infos = calloc(count, sizeof(*infos));
		if (!infos) {
			errmsg("out of memory");
			rc = EXIT_FAIL;
			count = 0;
		}
	}
	for (i = 0; i < count; i++) {
		ret = qc_get_info(&ctx, indexes[i], &infos[nrows]);
		if (no_such_device(-ret))
			continue;	/* removed since the list was taken */
		if (ret) {
			char dev[32];

			snprintf(dev, sizeof(dev), "%s%u", QCOW2_DEVICE_PREFIX,
				 indexes[i]);
			report(dev, "cannot get device info", -ret,
			       ioctl_hint(-ret));
			rc = EXIT_FAIL;
			continue;
		}
		indexes[nrows++] = indexes[i];
	}
	qc_close(&ctx);

	if (json) {
		printf("{\n   \"qcowdevices\": [%s", nrows ? "\n" : "");
		for (i = 0; i < nrows; i++)
			list_json_row(indexes[i], &infos[i],
				      image_path(indexes[i], path, sizeof(path)),
				      i == nrows - 1);
		printf("%s]\n}\n", nrows ? "   " : "");
		goto out;
	}

	/* Like losetup, print nothing at all when there are no devices. */
	if (!nrows)
		goto out;
	for (c = 0; c < NR_COLS; c++)
		width[c] = headings ? (int)strlen(list_cols[c].header) : 0;
	for (i = 0; i < nrows; i++) {
		struct list_row row;

		list_fill_row(&row, indexes[i], &infos[i]);
		/* IMAGE is last and not padded: its width does not matter. */
		for (c = 0; c < COL_IMAGE; c++)
			if ((int)strlen(row.cells[c]) > width[c])
				width[c] = strlen(row.cells[c]);
	}
	if (headings) {
		const char *hdr[NR_COLS];

		for (c = 0; c < NR_COLS; c++)
			hdr[c] = list_cols[c].header;
		print_row(hdr, width);
	}
	for (i = 0; i < nrows; i++) {
		struct list_row row;
		const char *image = image_path(indexes[i], path, sizeof(path));

		list_fill_row(&row, indexes[i], &infos[i]);
		row.cells[COL_IMAGE] = image ? image : "-";
		print_row(row.cells, width);
	}
out:
	free(infos);
	free(indexes);
	return rc;
}

/* ---- info -------------------------------------------------------------- */

static void label(const char *name)
{
	printf("%s:%*s", name, 24 - (int)strlen(name) - 1, "");
}

static void line_u64(const char *name, uint64_t val)
{
	label(name);
	printf("%" PRIu64 "\n", val);
}

static void line_str(const char *name, const char *val)
{
	label(name);
	printf("%s\n", val);
}

/* "1.5G (1610612736 bytes)" */
static void line_size(const char *name, uint64_t bytes)
{
	char h[32];

	size_to_human(bytes, h, sizeof(h));
	label(name);
	printf("%s (%" PRIu64 " bytes)\n", h, bytes);
}

static void line_bits(const char *name, const struct name_bit *names,
		      uint64_t val)
{
	label(name);
	print_bits(names, val, false);
	putchar('\n');
}

static void info_text(const char *dev, const char *image,
		      const struct qcow2_info *info)
{
	uint64_t lookups = info->cache_hits + info->cache_misses;
	const char *comp = compression_name(info->compression_type);
	const char *compat = compat_level(info->version);

	line_str("device", dev);
	line_str("image", image ? image : "-");
	line_size("virtual size", info->virtual_size);
	line_u64("cluster size", pow2(info->cluster_bits));
	label("version");
	if (compat)
		printf("%u (compat %s)\n", info->version, compat);
	else
		printf("%u\n", info->version);
	line_u64("refcount bits", pow2(info->refcount_order));
	label("compression type");
	if (comp)
		printf("%s\n", comp);
	else
		printf("unknown (%u)\n", info->compression_type);
	line_u64("snapshots", info->nb_snapshots);
	line_u64("L1 entries", info->l1_size);
	line_bits("incompatible features", incompat_names,
		  info->incompatible_features);
	line_bits("compatible features", compat_names,
		  info->compatible_features);
	line_bits("autoclear features", autoclear_names,
		  info->autoclear_features);
	line_str("read-only", info->flags & QCOW2_INFO_READ_ONLY ? "yes" : "no");
	line_str("dirty", info->flags & QCOW2_INFO_DIRTY ? "yes" : "no");
	line_str("corrupt", info->flags & QCOW2_INFO_CORRUPT ? "yes" : "no");
	line_str("state",
		 info->flags & QCOW2_INFO_REMOVING ? "removing" : "active");
	line_size("cache size", info->cache_size);
	line_u64("cache slice size", info->cache_slice_size);
	line_size("cache used", info->cache_used);
	line_u64("cache hits", info->cache_hits);
	line_u64("cache misses", info->cache_misses);
	line_u64("cache evictions", info->cache_evictions);
	label("cache hit rate");
	if (lookups)
		printf("%.1f%%\n", 100.0 * info->cache_hits / lookups);
	else
		printf("-\n");
}

static void info_json(const char *dev, const char *image,
		      const struct qcow2_info *info)
{
	struct json_obj o = { .sep = ",\n  ", .first = true };
	uint64_t lookups = info->cache_hits + info->cache_misses;

	fputs("{\n  ", stdout);
	json_str(&o, "device", dev);
	json_str(&o, "image", image);
	json_u64(&o, "virtual-size", info->virtual_size);
	json_u64(&o, "cluster-size", pow2(info->cluster_bits));
	json_u64(&o, "version", info->version);
	json_str(&o, "compat", compat_level(info->version));
	json_u64(&o, "refcount-bits", pow2(info->refcount_order));
	json_str(&o, "compression-type",
		 compression_name(info->compression_type));
	json_u64(&o, "snapshots", info->nb_snapshots);
	json_u64(&o, "l1-size", info->l1_size);
	json_key(&o, "incompatible-features");
	print_bits(incompat_names, info->incompatible_features, true);
	json_key(&o, "compatible-features");
	print_bits(compat_names, info->compatible_features, true);
	json_key(&o, "autoclear-features");
	print_bits(autoclear_names, info->autoclear_features, true);
	json_bool(&o, "read-only", info->flags & QCOW2_INFO_READ_ONLY);
	json_bool(&o, "dirty", info->flags & QCOW2_INFO_DIRTY);
	json_bool(&o, "corrupt", info->flags & QCOW2_INFO_CORRUPT);
	json_str(&o, "state",
		 info->flags & QCOW2_INFO_REMOVING ? "removing" : "active");
	json_u64(&o, "cache-size", info->cache_size);
	json_u64(&o, "cache-slice-size", info->cache_slice_size);
	json_u64(&o, "cache-used", info->cache_used);
	json_u64(&o, "cache-hits", info->cache_hits);
	json_u64(&o, "cache-misses", info->cache_misses);
	json_u64(&o, "cache-evictions", info->cache_evictions);
	json_key(&o, "cache-hit-rate");
	if (lookups)
		printf("%.4f", (double)info->cache_hits / lookups);
	else
		fputs("null", stdout);
	fputs("\n}\n", stdout);
}

/*
 * Options of the commands that take only --json and --help: 0, or the
 * command's return value (-1 for --help, usage error otherwise).
 */
static int parse_json_opts(int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	*json = false;
	while ((c = getopt_long(argc, argv, "Jh", opts, NULL)) != -1) {
		switch (c) {
		case 'J':
			*json = true;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	char dev[32], path[PATH_MAX + 1];
	struct qcow2_info info;
	struct qc_ctx ctx;
	uint32_t index;
	bool json;
	int ret;

	ret = parse_json_opts(argc, argv, &json);
	if (ret)
		return ret;
	if (optind >= argc)
		return usage_error("missing DEVICE");
	if (argc - optind > 1)
		return usage_error("too many arguments: '%s'", argv[optind + 1]);
	if (qc_parse_device(argv[optind], &index))
		return usage_error(BAD_DEVICE_FMT, argv[optind]);
	snprintf(dev, sizeof(dev), "%s%u", QCOW2_DEVICE_PREFIX, index);

	qc_init(&ctx);
	if (open_control(&ctx))
		return EXIT_FAIL;
	ret = qc_get_info(&ctx, index, &info);
	qc_close(&ctx);
	if (ret) {
		report(dev, "cannot get device info", -ret, device_hint(-ret));
		return EXIT_FAIL;
	}
	if (json)
		info_json(dev, image_path(index, path, sizeof(path)), &info);
	else
		info_text(dev, image_path(index, path, sizeof(path)), &info);
	return EXIT_OK;
}

/* ---- features ---------------------------------------------------------- */

static int cmd_features(int argc, char **argv)
{
	struct qcow2_features feat;
	struct qc_ctx ctx;
	bool json;
	int ret;

	ret = parse_json_opts(argc, argv, &json);
	if (ret)
		return ret;
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	qc_init(&ctx);
	if (open_control(&ctx))
		return EXIT_FAIL;
	ret = qc_get_features(&ctx, &feat);
	qc_close(&ctx);
	if (ret) {
		report(ctx.ctl_path, "cannot get driver features", -ret,
		       ioctl_hint(-ret));
		return EXIT_FAIL;
	}

	if (json) {
		struct json_obj o = { .sep = ",\n  ", .first = true };

		fputs("{\n  ", stdout);
		json_u64(&o, "abi-version", feat.abi_version);
		json_key(&o, "features");
		print_bits(driver_feature_names, feat.features, true);
		json_key(&o, "attach-flags");
		print_bits(add_flag_names, feat.add_flags, true);
		fputs("\n}\n", stdout);
	} else {
		printf("%-15s%u\n", "ABI version:", feat.abi_version);
		printf("%-15s", "features:");
		print_bits(driver_feature_names, feat.features, false);
		printf("\n%-15s", "attach flags:");
		print_bits(add_flag_names, feat.add_flags, false);
		putchar('\n');
	}
	return EXIT_OK;
}

/* ---- snapshot ---------------------------------------------------------- */

enum snap_op { SNAP_CREATE, SNAP_LIST, SNAP_DELETE, SNAP_REVERT };

/* Hints for what the snapshot ioctls answer. */
static const char *snapshot_hint(enum snap_op op, int err)
{
	switch (err) {
	case ENOENT:
		return "no such snapshot";
	case EBUSY:
		if (op == SNAP_REVERT)
			return "device is in use; unmount it first, or detach a view of the snapshot";
		if (op == SNAP_DELETE)
			return "a snapshot view shows it; detach the view first";
		return "see dmesg";
	case EROFS:
		return "device is read-only";
	case ENOTTY:
		return "driver too old for snapshots";
	case EFBIG:
		return "the image holds as many snapshots as qcow2 allows";
	case EOPNOTSUPP:
	case EINVAL:
	case ENAMETOOLONG:
		return "see dmesg";
	default:
		return device_hint(err);
	}
}

/*
 * DEVICE operand: the index and "/dev/qcowN" in @dev.  0, or the usage
 * error already reported.
 */
static int parse_device_arg(const char *arg, uint32_t *index, char *dev,
			    size_t len)
{
	if (qc_parse_device(arg, index))
		return usage_error(BAD_DEVICE_FMT, arg);
	snprintf(dev, len, "%s%u", QCOW2_DEVICE_PREFIX, *index);
	return 0;
}

/* Exactly @n operands left after the options; else a usage error. */
static int want_operands(int argc, char **argv, int n, const char *missing)
{
	if (argc - optind < n)
		return usage_error("missing %s", missing);
	if (argc - optind > n)
		return usage_error("too many arguments: '%s'", argv[optind + n]);
	return 0;
}

static int open_device(const char *dev, uint32_t index)
{
	int fd = qc_open_device(index);

	if (fd < 0)
		report(dev, "cannot open device", -fd,
		       fd == -EACCES || fd == -EPERM ? "are you root?" :
		       device_hint(-fd));
	return fd;
}

static int snapshot_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "freeze", no_argument, NULL, 'F' },
		{ "help",   no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char dev[32], id[QCOW2_SNAPSHOT_ID_MAX + 1];
	uint32_t index, flags = 0;
	const char *name;
	int c, fd, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'F':
			flags |= QCOW2_SNAP_CREATE_FREEZE;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	ret = want_operands(argc, argv, 2,
			    optind < argc ? "NAME" : "DEVICE and NAME");
	if (ret)
		return ret;
	ret = parse_device_arg(argv[optind], &index, dev, sizeof(dev));
	if (ret)
		return ret;
	name = argv[optind + 1];
	ret = check_snapshot_key("NAME", name, QCOW2_SNAPSHOT_NAME_MAX);
	if (ret)
		return ret;

	fd = open_device(dev, index);
	if (fd < 0)
		return EXIT_FAIL;
	ret = qc_snapshot_create(fd, name, flags, id);
	close(fd);
	if (ret) {
		report(dev, "cannot create snapshot", -ret,
		       snapshot_hint(SNAP_CREATE, -ret));
		return EXIT_FAIL;
	}
	printf("%s\n", id);
	return EXIT_OK;
}

/* "Snapshot list:" as qemu-img snapshot -l (QEMU 7 and 8) prints it. */
static void snapshot_list_text(const struct qcow2_snapshot_entry *e,
			       uint32_t count)
{
	uint32_t i;

	/* qemu-img prints nothing at all for an image without snapshots. */
	if (!count)
		return;
	printf("Snapshot list:\n%-10s%-17s%8s%20s%13s%11s\n",
	       "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (i = 0; i < count; i++, e++) {
		char size[32], date[32], clock[48], icount[24] = "";
		uint64_t secs = e->vm_clock_nsec / 1000000000;
		time_t t = e->date_sec;
		struct tm tm;

		size_to_qemu(e->vm_state_size, size, sizeof(size));
		if (!localtime_r(&t, &tm) ||
		    !strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(date, sizeof(date), "%" PRIu64,
				 (uint64_t)e->date_sec);
		snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02u:%02u.%03u",
			 secs / 3600, (unsigned int)(secs / 60 % 60),
			 (unsigned int)(secs % 60),
			 (unsigned int)(e->vm_clock_nsec / 1000000 % 1000));
		/* -1: not recorded (disk-only snapshots, old images) */
		if (e->icount != -1)
			snprintf(icount, sizeof(icount), "%" PRId64,
				 (int64_t)e->icount);
		printf("%-9s %-16s %8s%20s%13s%11s\n", e->id, e->name, size,
		       date, clock, icount);
	}
}

/*
 * An array of objects with the keys of qemu-img info's "snapshots",
 * which splits the guest clock into vm-clock-sec and vm-clock-nsec, plus
 * disk-size; icount is null where qemu-img leaves it out.
 */
static void snapshot_list_json(const struct qcow2_snapshot_entry *e,
			       uint32_t count)
{
	uint32_t i;

	printf("[%s", count ? "\n" : "");
	for (i = 0; i < count; i++, e++) {
		struct json_obj o = { .sep = ",\n    ", .first = true };

		fputs("  {\n    ", stdout);
		json_str(&o, "id", e->id);
		json_str(&o, "name", e->name);
		json_u64(&o, "date-sec", e->date_sec);
		json_u64(&o, "date-nsec", e->date_nsec);
		json_u64(&o, "vm-clock-sec", e->vm_clock_nsec / 1000000000);
		json_u64(&o, "vm-clock-nsec", e->vm_clock_nsec % 1000000000);
		json_u64(&o, "vm-state-size", e->vm_state_size);
		json_u64(&o, "disk-size", e->disk_size);
		json_key(&o, "icount");
		if (e->icount == -1)
			fputs("null", stdout);
		else
			printf("%" PRId64, (int64_t)e->icount);
		printf("\n  }%s\n", i + 1 < count ? "," : "");
	}
	puts("]");
}

static int snapshot_list(int argc, char **argv)
{
	struct qcow2_snapshot_entry *entries;
	uint32_t index, count;
	char dev[32];
	bool json;
	int fd, ret;

	ret = parse_json_opts(argc, argv, &json);
	if (ret)
		return ret;
	ret = want_operands(argc, argv, 1, "DEVICE");
	if (!ret)
		ret = parse_device_arg(argv[optind], &index, dev, sizeof(dev));
	if (ret)
		return ret;

	fd = open_device(dev, index);
	if (fd < 0)
		return EXIT_FAIL;
	ret = qc_snapshot_list(fd, &entries, &count);
	close(fd);
	if (ret) {
		report(dev, "cannot list snapshots", -ret,
		       snapshot_hint(SNAP_LIST, -ret));
		return EXIT_FAIL;
	}
	if (json)
		snapshot_list_json(entries, count);
	else
		snapshot_list_text(entries, count);
	free(entries);
	return EXIT_OK;
}

/* delete and revert: [--id|--name] DEVICE ID|NAME */
static int snapshot_ref(int argc, char **argv, enum snap_op op)
{
	static const struct option opts[] = {
		{ "id",   no_argument, NULL, 'I' },
		{ "name", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *key, *what = "ID|NAME";
	size_t max = QCOW2_SNAPSHOT_NAME_MAX;
	uint32_t index, flags = 0;
	char dev[32];
	int c, fd, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'I':
			flags |= QCOW2_SNAP_BY_ID;
			break;
		case 'N':
			flags |= QCOW2_SNAP_BY_NAME;
			break;
		case 'h':
			return -1;
		default:
			return try_help();
		}
	}
	if (flags == (QCOW2_SNAP_BY_ID | QCOW2_SNAP_BY_NAME))
		return usage_error("--id and --name exclude each other");
	if (flags == QCOW2_SNAP_BY_ID) {
		what = "ID";
		max = QCOW2_SNAPSHOT_ID_MAX;
	} else if (flags == QCOW2_SNAP_BY_NAME) {
		what = "NAME";
	}
	ret = want_operands(argc, argv, 2, optind < argc ? what : "DEVICE");
	if (ret)
		return ret;
	ret = parse_device_arg(argv[optind], &index, dev, sizeof(dev));
	if (ret)
		return ret;
	key = argv[optind + 1];
	ret = check_snapshot_key(what, key, max);
	if (ret)
		return ret;

	fd = open_device(dev, index);
	if (fd < 0)
		return EXIT_FAIL;
	if (op == SNAP_DELETE)
		ret = qc_snapshot_delete(fd, key, flags);
	else
		ret = qc_snapshot_revert(fd, key, flags);
	close(fd);
	if (ret) {
		char what_failed[QCOW2_SNAPSHOT_NAME_MAX + 64];

		snprintf(what_failed, sizeof(what_failed), "cannot %s snapshot '%s'",
			 op == SNAP_DELETE ? "delete" : "revert to", key);
		report(dev, what_failed, -ret, snapshot_hint(op, -ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int snapshot_delete(int argc, char **argv)
{
	return snapshot_ref(argc, argv, SNAP_DELETE);
}

static int snapshot_revert(int argc, char **argv)
{
	return snapshot_ref(argc, argv, SNAP_REVERT);
}

static int cmd_snapshot(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
		{ "create", snapshot_create },
		{ "list",   snapshot_list },
		{ "delete", snapshot_delete },
		{ "revert", snapshot_revert },
	};
	static char progname[48];
	size_t i;

	if (argc < 2)
		return usage_error("missing snapshot command (create, list, delete or revert)");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return -1;
	for (i = 0; i < ARRAY_SIZE(subs); i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		/* getopt names "qcowctl snapshot create" in its messages. */
		snprintf(progname, sizeof(progname), "qcowctl snapshot %s",
			 subs[i].name);
		argv[1] = progname;
		cur_sub = subs[i].name;
		optind = 0;
		return subs[i].run(argc - 1, argv + 1);
	}
	return usage_error("unknown snapshot command '%s'", argv[1]);
}

/* ---- command table, help, main ----------------------------------------- */

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{
		"attach", cmd_attach,
		"[--read-only] [--cache-size SIZE] [--direct-io] IMAGE\n"
		"--snapshot ID|NAME [--cache-size SIZE] [--direct-io] IMAGE",
		"Map the qcow2 file IMAGE as a new /dev/qcowN and print its name.",
		" -r, --read-only        expose the image read-only\n"
		"     --snapshot ID|NAME expose snapshot ID|NAME of IMAGE, read-only\n"
		"                        (implies --read-only)\n"
		"     --cache-size SIZE  L2 cache of the device, in bytes or with a\n"
		"                        K, M, G or T suffix (powers of 1024);\n"
		"                        default: the module's l2_cache_size\n"
		"     --direct-io        open IMAGE with O_DIRECT (bypass the page cache)\n",
	},
	{
		"detach", cmd_detach,
		"DEVICE...\n--all",
		"Detach devices; an open device goes away at its last close.\n"
		"DEVICE is /dev/qcowN, qcowN or N.",
		" -a, --all              detach every qcow device\n",
	},
	{
		"list", cmd_list,
		"[--json] [--noheadings]",
		"List the qcow devices.",
		" -J, --json             use JSON output format\n"
		" -n, --noheadings       do not print a header line\n",
	},
	{
		"info", cmd_info,
		"[--json] DEVICE",
		"Show the image parameters and cache statistics of DEVICE.",
		" -J, --json             use JSON output format\n",
	},
	{
		"features", cmd_features,
		"[--json]",
		"Show what the loaded driver supports.",
		" -J, --json             use JSON output format\n",
	},
	{
		"snapshot", cmd_snapshot,
		"create [--freeze] DEVICE NAME\n"
		"list [--json] DEVICE\n"
		"delete [--id|--name] DEVICE ID|NAME\n"
		"revert [--id|--name] DEVICE ID|NAME",
		"Create, list, delete or revert to internal snapshots of DEVICE.\n"
		"create prints the new snapshot's ID.  ID|NAME is looked up as an\n"
		"ID first and then as a name, like qemu-img snapshot does.",
		"     --freeze           (create) freeze the file system mounted\n"
		"                        on DEVICE while the snapshot is taken\n"
		" -J, --json             (list) use JSON output format\n"
		"     --id               (delete, revert) ID|NAME is an ID\n"
		"     --name             (delete, revert) ID|NAME is a name\n",
	},
	{
		"help", cmd_help,
		"[COMMAND]",
		"Show help for qcowctl or for COMMAND.",
		"",
	},
};

#define NR_COMMANDS ARRAY_SIZE(commands)

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void print_synopsis(const struct command *cmd)
{
	const char *s = cmd->synopsis;

	do {
		int len = strcspn(s, "\n");

		printf(" qcowctl %s %.*s\n", cmd->name, len, s);
		s += len;
	} while (*s++);
}

static void command_usage(const struct command *cmd)
{
	fputs("Usage:\n", stdout);
	print_synopsis(cmd);
	printf("\n%s\n\nOptions:\n%s"
	       " -h, --help             display this help\n",
	       cmd->summary, cmd->options);
}

static void usage(void)
{
	size_t i;

	fputs("Usage:\n", stdout);
	for (i = 0; i < NR_COMMANDS; i++)
		print_synopsis(&commands[i]);
	fputs("\nAttach qcow2 image files as /dev/qcowN block devices.\n\n"
	      "Commands:\n", stdout);
	for (i = 0; i < NR_COMMANDS; i++) {
		const char *s = commands[i].summary;

		printf(" %-10s %.*s\n", commands[i].name,
		       (int)strcspn(s, "\n"), s);
	}
	fputs("\nOptions:\n"
	      " -h, --help     display this help\n"
	      " -V, --version  display version\n\n"
	      "Run 'qcowctl COMMAND --help' for the options of a command.\n"
	      "See qcowctl(8).\n", stdout);
}

static int cmd_help(int argc, char **argv)
{
	const struct command *cmd;

	if (argc > 2)
		return usage_error("too many arguments: '%s'", argv[2]);
	if (argc < 2) {
		usage();
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		command_usage(cur_cmd);
		return EXIT_OK;
	}
	cmd = find_command(argv[1]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[1]);
	command_usage(cmd);
	return EXIT_OK;
}

/*
 * Like util-linux close_stdout(): a full disk or a closed pipe must not
 * turn into exit status 0 with truncated output.
 */
static void close_stdout(void)
{
	bool failed = ferror(stdout);

	if (fclose(stdout) && errno != EBADF)
		failed = true;
	if (failed) {
		fputs("qcowctl: write error\n", stderr);
		_exit(EXIT_FAIL);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help",    no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	char progname[32];
	int c, ret;

	atexit(close_stdout);
	/* getopt names argv[0] in its messages: make that "qcowctl". */
	argv[0] = "qcowctl";
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage();
			return EXIT_OK;
		case 'V':
			printf("qcowctl %s\n", QCOWCTL_VERSION);
			return EXIT_OK;
		default:
			return try_help();
		}
	}
	if (optind >= argc)
		return usage_error("missing COMMAND");
	cur_cmd = find_command(argv[optind]);
	if (!cur_cmd) {
		const char *name = argv[optind];

		return usage_error("unknown command '%s'", name);
	}

	/* Each command parses its own argv, named "qcowctl CMD" for getopt. */
	argc -= optind;
	argv += optind;
	snprintf(progname, sizeof(progname), "qcowctl %s", cur_cmd->name);
	argv[0] = progname;
	optind = 0;
	ret = cur_cmd->run(argc, argv);
	if (ret < 0) {		/* COMMAND --help */
		command_usage(cur_cmd);
		ret = EXIT_OK;
	}
	return ret;
}
