// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD stand-in for the qcow2 driver, so test-cli.sh can check what
 * qcowctl sends and how it words the answers without the module.  Only
 * ioctls on the file named by $QCOWCTL_CONTROL_DEVICE, and on the fake
 * device nodes below, are answered here; everything else goes to the
 * kernel.
 *
 *   FAKE_QCOW2_LOG      file that gets one line per control ioctl
 *   FAKE_QCOW2_DEVICES  existing indexes, e.g. "0,3" (default: none)
 *   FAKE_QCOW2_BUSY     indexes whose removal is deferred
 *   FAKE_QCOW2_ADD_ERR  errno for QCOW2_CTL_ADD to fail with
 *   FAKE_QCOW2_RW       indexes that are read-write (default: read-only)
 *
 * Device nodes: with FAKE_QCOW2_DEV_DIR set, opening /dev/qcowN opens
 * $FAKE_QCOW2_DEV_DIR/qcowN instead (a missing file is a missing device)
 * and logs "OPEN", and /sys/block/qcowN/qcow2/image is read from
 * $FAKE_QCOW2_DEV_DIR/qcowN.image; the snapshot ioctls are answered from
 *
 *   FAKE_QCOW2_SNAPSHOTS   file with one snapshot per line, fields
 *                          separated by tabs: id, name, date_sec,
 *                          date_nsec, vm_clock_nsec, vm_state_size,
 *                          disk_size, icount (missing file: none)
 *   FAKE_QCOW2_SNAP_GROW   set: a snapshot "appears" after the first
 *                          QCOW2_SNAPSHOT_LIST (the first answer is one
 *                          short), to exercise the caller's retry
 *   FAKE_QCOW2_SNAP_ERR    errno for every snapshot ioctl to fail with
 *   FAKE_QCOW2_SNAP_ID     ID that QCOW2_SNAPSHOT_CREATE hands out ("3")
 *
 * Errnos are the driver's: ENXIO for an index without a device.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/qcow2.h>

static bool in_list(const char *env, unsigned int index)
{
	const char *p = getenv(env);

	while (p && *p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			break;
		if (v == index)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

static void fake_log(const char *fmt, ...)
{
	const char *path = getenv("FAKE_QCOW2_LOG");
	va_list ap;
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static bool is_fake_control(int fd)
{
	const char *path = getenv("QCOWCTL_CONTROL_DEVICE");
	struct stat a, b;

	return path && !fstat(fd, &a) && !stat(path, &b) &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Which QEMU lock bytes does the OFD behind @fd hold?  Ask from outside. */
static void held_locks(int fd, char *buf, size_t len)
{
	static const int bytes[] = { 100, 101, 102, 103, 200, 201, 202, 203 };
	char path[64];
	size_t i, n = 0;
	int probe;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	probe = open(path, O_RDONLY);
	if (probe < 0)
		return;
	for (i = 0; i < sizeof(bytes) / sizeof(*bytes); i++) {
		struct flock fl = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET,
			.l_start = bytes[i], .l_len = 1,
		};

		if (!fcntl(probe, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK)
			n += snprintf(buf + n, len - n, "%s%d", n ? "," : "",
				      bytes[i]);
	}
	close(probe);
}

static int fake_add(struct qcow2_ctl_add *add)
{
	const char *err = getenv("FAKE_QCOW2_ADD_ERR");
	char locks[64];
	int fl = fcntl(add->fd, F_GETFL);

	char snap[sizeof(add->snapshot) + 64] = "";

	held_locks(add->fd, locks, sizeof(locks));
	/* The snapshot fields are logged only when they are not zero. */
	if (add->snapshot_flags || add->snapshot[0])
		snprintf(snap, sizeof(snap), " snapshot_flags=%u snapshot=%.*s",
			 add->snapshot_flags, (int)sizeof(add->snapshot),
			 add->snapshot);
	fake_log("ADD size=%u flags=%u index=%u cache=%llu mode=%s direct=%d locks=%s%s",
		 add->size, add->flags, add->index,
		 (unsigned long long)add->cache_size,
		 fl < 0 ? "badfd" : (fl & O_ACCMODE) == O_RDONLY ? "ro" : "rw",
		 fl >= 0 && (fl & O_DIRECT) ? 1 : 0, locks, snap);
	/* What the driver checks before anything else. */
	if (add->size != sizeof(*add) || add->reserved[0] || add->reserved[1] ||
	    add->reserved[2] || add->reserved[3] || add->reserved2 ||
	    !memchr(add->snapshot, '\0', sizeof(add->snapshot))) {
		errno = EINVAL;
		return -1;
	}
	if (err) {
		errno = atoi(err);
		return -1;
	}
	add->index = 5;
	return 0;
}

static int fake_info(struct qcow2_info *info)
{
	unsigned int index = info->index;

	fake_log("GET_INFO size=%u index=%u", info->size, index);
	if (!in_list("FAKE_QCOW2_DEVICES", index)) {
		errno = ENXIO;
		return -1;
	}
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->index = index;
	info->version = index == 0 ? 2 : 3;
	info->virtual_size = index == 0 ? 1ULL << 30 : 10737418240ULL + 512;
	info->cluster_bits = index == 0 ? 16 : 21;
	info->refcount_order = 4;
	info->compression_type = index == 0 ? 0 : 1;
	info->nb_snapshots = 2;
	info->incompatible_features = index == 0 ? 0 : 0x1 | 0x8 | 0x60;
	info->compatible_features = 1;
	info->autoclear_features = 0x2;
	info->flags = (in_list("FAKE_QCOW2_RW", index) ? 0 : QCOW2_INFO_READ_ONLY) |
		      (index == 0 ? 0 : QCOW2_INFO_DIRTY | QCOW2_INFO_REMOVING);
	info->l1_size = 20;
	info->cache_size = 1 << 20;
	info->cache_slice_size = 4096;
	info->cache_used = 8192;
	info->cache_hits = 3;
	info->cache_misses = index == 0 ? 0 : 1;
	info->cache_evictions = 0;
	if (index == 0)
		info->cache_hits = 0;
	return 0;
}

static int fake_ioctl(unsigned long req, void *arg)
{
	if (req == QCOW2_CTL_ADD)
		return fake_add(arg);
	if (req == QCOW2_CTL_GET_INFO)
		return fake_info(arg);
	if (req == QCOW2_CTL_REMOVE) {
		struct qcow2_ctl_remove *rm = arg;

		fake_log("REMOVE size=%u index=%u", rm->size, rm->index);
		if (!in_list("FAKE_QCOW2_DEVICES", rm->index)) {
			errno = ENXIO;
			return -1;
		}
		rm->deferred = in_list("FAKE_QCOW2_BUSY", rm->index);
		return 0;
	}
	if (req == QCOW2_CTL_LIST) {
		struct qcow2_ctl_list *list = arg;
		__u32 *out = (__u32 *)(uintptr_t)list->indexes;
		unsigned int i, n = 0;

		fake_log("LIST size=%u count=%u", list->size, list->count);
		for (i = 0; i < 64; i++) {
			if (!in_list("FAKE_QCOW2_DEVICES", i))
				continue;
			if (n < list->count)
				out[n] = i;
			n++;
		}
		list->count = n;
		return 0;
	}
	if (req == QCOW2_CTL_GET_FEATURES) {
		struct qcow2_features *f = arg;

		fake_log("GET_FEATURES size=%u", f->size);
		f->abi_version = QCOW2_ABI_VERSION;
		f->features = QCOW2_FEAT_READ | QCOW2_FEAT_COMPRESSED_ZLIB |
			      QCOW2_FEAT_DEFERRED_REMOVE | (1ULL << 40);
		f->features |= QCOW2_FEAT_SNAPSHOTS | QCOW2_FEAT_SNAPSHOT_VIEW;
		f->add_flags = QCOW2_ADD_READ_ONLY | QCOW2_ADD_SNAPSHOT;
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

/* ---- device nodes ------------------------------------------------------ */

/*
 * /dev/qcowN -> $FAKE_QCOW2_DEV_DIR/qcowN and
 * /sys/block/qcowN/qcow2/image -> $FAKE_QCOW2_DEV_DIR/qcowN.image;
 * false for any other path.
 */
static bool fake_dev_path(const char *path, char *buf, size_t len)
{
	static const char sys[] = "/sys/block/qcow", sys_tail[] = "/qcow2/image";
	const char *dir = getenv("FAKE_QCOW2_DEV_DIR");
	const char *n;
	size_t digits;

	if (!dir)
		return false;
	if (!strncmp(path, QCOW2_DEVICE_PREFIX, strlen(QCOW2_DEVICE_PREFIX))) {
		n = path + strlen(QCOW2_DEVICE_PREFIX);
		digits = strspn(n, "0123456789");
		if (!digits || n[digits])
			return false;
		snprintf(buf, len, "%s/qcow%s", dir, n);
		return true;
	}
	if (!strncmp(path, sys, strlen(sys))) {
		n = path + strlen(sys);
		digits = strspn(n, "0123456789");
		if (!digits || strcmp(n + digits, sys_tail))
			return false;
		snprintf(buf, len, "%s/qcow%.*s.image", dir, (int)digits, n);
		return true;
	}
	return false;
}

/* The N of a descriptor opened through fake_dev_path(), or -1. */
static long fake_dev_index(int fd)
{
	const char *dir = getenv("FAKE_QCOW2_DEV_DIR");
	char link[64], target[PATH_MAX], real[PATH_MAX], *end;
	size_t dlen;
	ssize_t n;
	long index;

	if (!dir || !realpath(dir, real))
		return -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	dlen = strlen(real);
	if (strncmp(target, real, dlen) || strncmp(target + dlen, "/qcow", 5))
		return -1;
	index = strtol(target + dlen + 5, &end, 10);
	return *end ? -1 : index;
}

static int fake_open(const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX];

	if (fake_dev_path(path, buf, sizeof(buf))) {
		if (!strncmp(path, "/dev/", 5))
			fake_log("OPEN %s mode=%s", path,
				 (flags & O_ACCMODE) == O_RDONLY ? "ro" : "rw");
		path = buf;
	}
	return syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static mode_t open_mode(int flags, va_list ap)
{
	return flags & (O_CREAT | O_TMPFILE) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fake_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fake_open(path, flags, mode);
}

/* What open() becomes with _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags)
{
	return fake_open(path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
	return fake_open(path, flags, 0);
}

/* Read $FAKE_QCOW2_SNAPSHOTS; returns how many, entries in *out. */
static unsigned int fake_snapshots(struct qcow2_snapshot_entry **out)
{
	const char *path = getenv("FAKE_QCOW2_SNAPSHOTS");
	struct qcow2_snapshot_entry *v = NULL;
	unsigned int n = 0;
	char line[1024];
	FILE *f;

	*out = NULL;
	f = path ? fopen(path, "r") : NULL;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		struct qcow2_snapshot_entry *nv = realloc(v, (n + 1) * sizeof(*v));
		char *p = line, *field[8];
		unsigned int i;

		if (!nv)
			break;
		v = nv;
		line[strcspn(line, "\n")] = '\0';
		for (i = 0; i < 8; i++)
			field[i] = strsep(&p, "\t");
		if (!field[7])
			continue;	/* not a snapshot line */
		memset(&v[n], 0, sizeof(v[n]));
		snprintf(v[n].id, sizeof(v[n].id), "%s", field[0]);
		snprintf(v[n].name, sizeof(v[n].name), "%s", field[1]);
		v[n].date_sec = strtoull(field[2], NULL, 0);
		v[n].date_nsec = strtoul(field[3], NULL, 0);
		v[n].vm_clock_nsec = strtoull(field[4], NULL, 0);
		v[n].vm_state_size = strtoull(field[5], NULL, 0);
		v[n].disk_size = strtoull(field[6], NULL, 0);
		v[n].icount = strtoll(field[7], NULL, 0);
		n++;
	}
	fclose(f);
	*out = v;
	return n;
}

static int fake_snapshot_list(struct qcow2_snapshot_list *list)
{
	static unsigned int calls;
	struct qcow2_snapshot_entry *v;
	unsigned int n = fake_snapshots(&v), i;
	char *out = (char *)(uintptr_t)list->entries;

	fake_log("SNAPSHOT_LIST size=%u count=%u entry_size=%u", list->size,
		 list->count, list->entry_size);
	if (list->reserved0 || list->reserved[0] || list->reserved[1] ||
	    (list->count && !list->entry_size)) {
		free(v);
		errno = EINVAL;
		return -1;
	}
	/* One snapshot is taken between the first call and the second. */
	if (getenv("FAKE_QCOW2_SNAP_GROW") && !calls++ && n)
		n--;
	for (i = 0; i < n && i < list->count; i++) {
		size_t len = list->entry_size < sizeof(v[i]) ?
			     list->entry_size : sizeof(v[i]);

		memset(out + (size_t)i * list->entry_size, 0, list->entry_size);
		memcpy(out + (size_t)i * list->entry_size, &v[i], len);
	}
	free(v);
	list->count = n;
	return 0;
}

static bool reserved_zero(const __u64 *r, size_t n)
{
	while (n--)
		if (*r++)
			return false;
	return true;
}

/* The driver's checks of a name or key: -1 with errno, or 0. */
static int fake_key_check(const char *key, size_t size)
{
	size_t len = strnlen(key, size);

	if (len == size)
		errno = ENAMETOOLONG;
	else if (!len)
		errno = EINVAL;
	else
		return 0;
	return -1;
}

static int fake_dev_ioctl(long index, unsigned long req, void *arg)
{
	const char *err = getenv("FAKE_QCOW2_SNAP_ERR");

	if (req == QCOW2_SNAPSHOT_LIST) {
		if (err) {
			fake_log("SNAPSHOT_LIST dev=%ld", index);
			errno = atoi(err);
			return -1;
		}
		return fake_snapshot_list(arg);
	}
	if (req == QCOW2_SNAPSHOT_CREATE) {
		struct qcow2_snapshot_create *c = arg;
		const char *id = getenv("FAKE_QCOW2_SNAP_ID");

		fake_log("SNAPSHOT_CREATE dev=%ld size=%u flags=%u len=%zu name=%.*s",
			 index, c->size, c->flags,
			 strnlen(c->name, sizeof(c->name)),
			 (int)sizeof(c->name), c->name);
		if (c->size != sizeof(*c) ||
		    c->flags & ~QCOW2_SNAP_CREATE_FLAGS_ALL ||
		    !reserved_zero(c->reserved, 4)) {
			errno = EINVAL;
			return -1;
		}
		if (fake_key_check(c->name, sizeof(c->name)))
			return -1;
		if (err) {
			errno = atoi(err);
			return -1;
		}
		snprintf(c->id, sizeof(c->id), "%s", id ? id : "3");
		return 0;
	}
	if (req == QCOW2_SNAPSHOT_DELETE || req == QCOW2_SNAPSHOT_REVERT) {
		struct qcow2_snapshot_ref *r = arg;

		fake_log("SNAPSHOT_%s dev=%ld size=%u flags=%u len=%zu key=%.*s",
			 req == QCOW2_SNAPSHOT_DELETE ? "DELETE" : "REVERT",
			 index, r->size, r->flags,
			 strnlen(r->key, sizeof(r->key)),
			 (int)sizeof(r->key), r->key);
		if (r->size != sizeof(*r) ||
		    r->flags & ~(QCOW2_SNAP_BY_ID | QCOW2_SNAP_BY_NAME) ||
		    !reserved_zero(r->reserved, 4)) {
			errno = EINVAL;
			return -1;
		}
		if (fake_key_check(r->key, sizeof(r->key)))
			return -1;
		if (err) {
			errno = atoi(err);
			return -1;
		}
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	long index;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (is_fake_control(fd))
		return fake_ioctl(req, arg);
	index = fake_dev_index(fd);
	if (index >= 0)
		return fake_dev_ioctl(index, req, arg);
	return syscall(SYS_ioctl, fd, req, arg);
}
