// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "libqcowctl.h"


void qc_init(struct qc_ctx *ctx)
{
	const char *env = getenv(QC_CONTROL_ENV);

	ctx->ctl_fd = -1;
	ctx->ctl_path = env && *env ? env : QCOW2_CONTROL_PATH;
}

int qc_open_control(struct qc_ctx *ctx)
{
	if (ctx->ctl_fd >= 0)
		return 0;
	ctx->ctl_fd = open(ctx->ctl_path, O_RDWR | O_CLOEXEC);
	return ctx->ctl_fd < 0 ? -errno : 0;
}

void qc_close(struct qc_ctx *ctx)
{
	if (ctx->ctl_fd >= 0)
		close(ctx->ctl_fd);
	ctx->ctl_fd = -1;
}

static int qc_ioctl(struct qc_ctx *ctx, unsigned long cmd, void *arg)
{
	int ret = qc_open_control(ctx);

	if (ret)
		return ret;
	return ioctl(ctx->ctl_fd, cmd, arg) < 0 ? -errno : 0;
}

/* Copy a NUL-terminated key into a fixed field: -ENAMETOOLONG if it fails. */
static int copy_key(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	return 0;
}

int qc_add(struct qc_ctx *ctx, int image_fd, uint32_t flags,
	   uint64_t cache_size, const char *snapshot, uint32_t snapshot_flags,
	   uint32_t *index)
{
	struct qcow2_ctl_add add = {
		.size = sizeof(add),
		.flags = flags,
		.fd = image_fd,
		.index = QCOW2_INDEX_ANY,
		.cache_size = cache_size,
	};
	int ret;

	if (snapshot) {
		ret = copy_key(add.snapshot, sizeof(add.snapshot), snapshot);
		if (ret)
			return ret;
		add.snapshot_flags = snapshot_flags;
	}
	ret = qc_ioctl(ctx, QCOW2_CTL_ADD, &add);

	if (!ret)
		*index = add.index;
	return ret;
}

int qc_remove(struct qc_ctx *ctx, uint32_t index, bool *deferred)
{
	struct qcow2_ctl_remove rm = {
		.size = sizeof(rm),
		.index = index,
	};
	int ret = qc_ioctl(ctx, QCOW2_CTL_REMOVE, &rm);

	if (!ret)
		*deferred = rm.deferred != 0;
	return ret;
}

int qc_list(struct qc_ctx *ctx, uint32_t **indexes, uint32_t *count)
{
	uint32_t slots = 16, *buf = NULL;
	int ret;

	/* Devices may come and go between calls: grow until they fit. */
	for (;;) {
		struct qcow2_ctl_list list = { .size = sizeof(list) };
		uint32_t *nbuf = realloc(buf, slots * sizeof(*buf));

		if (!nbuf) {
			ret = -ENOMEM;
			break;
		}
		buf = nbuf;
		list.count = slots;
		list.indexes = (uintptr_t)buf;
		ret = qc_ioctl(ctx, QCOW2_CTL_LIST, &list);
		if (ret)
			break;
		if (list.count <= slots) {
			*count = list.count;
			if (!list.count) {
				free(buf);
				buf = NULL;
			}
			*indexes = buf;
			return 0;
		}
		if (list.count > UINT32_MAX / sizeof(*buf)) {
			ret = -EOVERFLOW;
			break;
		}
		slots = list.count;
	}
	free(buf);
	return ret;
}

int qc_get_info(struct qc_ctx *ctx, uint32_t index, struct qcow2_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->index = index;
	return qc_ioctl(ctx, QCOW2_CTL_GET_INFO, info);
}

int qc_get_features(struct qc_ctx *ctx, struct qcow2_features *feat)
{
	memset(feat, 0, sizeof(*feat));
	feat->size = sizeof(*feat);
	return qc_ioctl(ctx, QCOW2_CTL_GET_FEATURES, feat);
}

int qc_open_device(uint32_t index)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s%u", QCOW2_DEVICE_PREFIX, index);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int dev_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

int qc_snapshot_list(int dev_fd, struct qcow2_snapshot_entry **entries,
		     uint32_t *count)
{
	struct qcow2_snapshot_entry *buf = NULL;
	uint32_t slots = 0;
	int ret;

	/*
	 * Ask for the count with no room, then again with room for that
	 * many; a snapshot taken in between makes the answer larger than
	 * the room given, and then we go round again.
	 */
	for (;;) {
		struct qcow2_snapshot_list list = {
			.size = sizeof(list),
			.count = slots,
			.entry_size = sizeof(*buf),
			.entries = (uintptr_t)buf,
		};

		ret = dev_ioctl(dev_fd, QCOW2_SNAPSHOT_LIST, &list);
		if (ret)
			break;
		if (list.count <= slots) {
			uint32_t i;

			for (i = 0; i < list.count; i++) {
				buf[i].id[sizeof(buf[i].id) - 1] = '\0';
				buf[i].name[sizeof(buf[i].name) - 1] = '\0';
			}
			*count = list.count;
			if (!list.count) {
				free(buf);
				buf = NULL;
			}
			*entries = buf;
			return 0;
		}
		slots = list.count;
		free(buf);
		buf = calloc(slots, sizeof(*buf));
		if (!buf) {
			ret = -ENOMEM;
			break;
		}
	}
	free(buf);
	return ret;
}

int qc_snapshot_create(int dev_fd, const char *name, uint32_t flags,
		       char id[QCOW2_SNAPSHOT_ID_MAX + 1])
{
	struct qcow2_snapshot_create req = {
		.size = sizeof(req),
		.flags = flags,
	};
	int ret = copy_key(req.name, sizeof(req.name), name);

	if (!ret)
		ret = dev_ioctl(dev_fd, QCOW2_SNAPSHOT_CREATE, &req);
	if (!ret) {
		/* Never trust a string to be terminated. */
		memcpy(id, req.id, QCOW2_SNAPSHOT_ID_MAX);
		id[QCOW2_SNAPSHOT_ID_MAX] = '\0';
	}
	return ret;
}

static int snapshot_ref(int dev_fd, unsigned long cmd, const char *key,
			uint32_t flags)
{
	struct qcow2_snapshot_ref ref = {
		.size = sizeof(ref),
		.flags = flags,
	};
	int ret = copy_key(ref.key, sizeof(ref.key), key);

	return ret ? ret : dev_ioctl(dev_fd, cmd, &ref);
}

int qc_snapshot_delete(int dev_fd, const char *key, uint32_t flags)
{
	return snapshot_ref(dev_fd, QCOW2_SNAPSHOT_DELETE, key, flags);
}

int qc_snapshot_revert(int dev_fd, const char *key, uint32_t flags)
{
	return snapshot_ref(dev_fd, QCOW2_SNAPSHOT_REVERT, key, flags);
}

int qc_open_image(const char *path, bool read_only, bool direct_io)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int fd, err;

	if (direct_io)
		flags |= O_DIRECT;
	fd = open(path, flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = EMEDIUMTYPE;	/* the driver maps regular files only */
	else
		return fd;
	close(fd);
	return -err;
}

int qc_check_image(int fd, const char **why)
{
	/*
	 * Cluster 0 is at most 2 MiB.  Aligned buffer and length, so the
	 * read also works on an O_DIRECT descriptor.
	 */
	const size_t len = (size_t)1 << QCOW2_MAX_CLUSTER_BITS;
	struct qcow2_layout lay;
	struct stat st;
	void *buf;
	ssize_t n;
	int ret;

	*why = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (posix_memalign(&buf, 4096, len))
		return -ENOMEM;
	n = pread(fd, buf, len, 0);
	if (n < 0) {
		ret = -errno;
	} else {
		/* The driver's own parser: same checks, same words. */
		ret = qcow2_parse_header(buf, n, st.st_size, &lay, why);
		if (!ret)
			ret = qcow2_parse_extensions(buf, n, &lay, why);
	}
	free(buf);
	return ret;
}

/*
 * QEMU's file-posix driver locks one byte per permission: 100 + bit for a
 * permission it holds, 200 + bit for one it refuses to share.  Everybody
 * takes only shared (read) locks and probes the opposite byte for a
 * conflict, so a probe with a write lock is what detects another user.
 */
enum {
	QEMU_PERM_CONSISTENT_READ = 0,
	QEMU_PERM_WRITE = 1,
	QEMU_PERM_WRITE_UNCHANGED = 2,
	QEMU_PERM_RESIZE = 3,
	QEMU_PERM_COUNT,
	QEMU_LOCK_PERM_BASE = 100,
	QEMU_LOCK_SHARED_BASE = 200,
};

static int ofd_lock(int fd, short type, off_t byte, bool probe)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, probe ? F_OFD_GETLK : F_OFD_SETLK, &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	return probe && fl.l_type != F_UNLCK ? -EBUSY : 0;
}

int qc_lock_image(int fd, unsigned int flags)
{
	bool read_only = flags & (QC_LOCK_READ_ONLY | QC_LOCK_BESIDE_WRITER);
	/* What we hold, and what we do not let others hold. */
	unsigned int held = 1U << QEMU_PERM_CONSISTENT_READ;
	unsigned int unshared = 1U << QEMU_PERM_WRITE;
	unsigned int i;
	int ret;

	if (!read_only) {
		held |= 1U << QEMU_PERM_WRITE | 1U << QEMU_PERM_WRITE_UNCHANGED |
			1U << QEMU_PERM_RESIZE;
		unshared |= 1U << QEMU_PERM_RESIZE;
	}

	for (i = 0; i < QEMU_PERM_COUNT; i++) {
		if (held & (1U << i)) {
			ret = ofd_lock(fd, F_RDLCK, QEMU_LOCK_PERM_BASE + i,
				       false);
			if (ret)
				return ret;
		}
		if (unshared & (1U << i)) {
			ret = ofd_lock(fd, F_RDLCK, QEMU_LOCK_SHARED_BASE + i,
				       false);
			if (ret)
				return ret;
		}
	}

	/*
	 * Probe after locking, as QEMU does: whichever of two racing
	 * openers probes last sees the other's lock.
	 */
	for (i = 0; i < QEMU_PERM_COUNT; i++) {
		if (held & (1U << i)) {
			ret = ofd_lock(fd, F_WRLCK, QEMU_LOCK_SHARED_BASE + i,
				       true);
			if (ret)
				return ret;
		}
		/* The writer there is one of our devices: see the header. */
		if (i == QEMU_PERM_WRITE && (flags & QC_LOCK_BESIDE_WRITER))
			continue;
		if (unshared & (1U << i)) {
			ret = ofd_lock(fd, F_WRLCK, QEMU_LOCK_PERM_BASE + i,
				       true);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int qc_find_writer(struct qc_ctx *ctx, int fd, uint32_t *index)
{
	uint32_t *indexes, count, i;
	char path[PATH_MAX + 1];
	struct stat img, st;
	int ret;

	if (fstat(fd, &img) < 0)
		return -errno;
	ret = qc_list(ctx, &indexes, &count);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < count && ret == -ENOENT; i++) {
		struct qcow2_info info;

		if (qc_get_info(ctx, indexes[i], &info) ||
		    (info.flags & QCOW2_INFO_READ_ONLY) ||
		    qc_read_image_path(indexes[i], path, sizeof(path)) ||
		    stat(path, &st) ||
		    st.st_dev != img.st_dev || st.st_ino != img.st_ino)
			continue;
		*index = indexes[i];
		ret = 0;
	}
	free(indexes);
	return ret;
}

int qc_parse_device(const char *name, uint32_t *index)
{
	const char *p = name;
	char *real = NULL;
	unsigned long long n = 0;
	int ret = -EINVAL;

	if (strchr(name, '/')) {
		/* Follow /dev/disk/by-* style links to the real node. */
		if (strncmp(name, QCOW2_DEVICE_PREFIX,
			    strlen(QCOW2_DEVICE_PREFIX))) {
			real = realpath(name, NULL);
			if (real)
				p = real;
		}
		if (strncmp(p, QCOW2_DEVICE_PREFIX, strlen(QCOW2_DEVICE_PREFIX)))
			goto out;
		p += strlen(QCOW2_DEVICE_PREFIX);
	} else if (!strncmp(p, "qcow", 4)) {
		p += 4;
	}

	/* Plain decimal, no sign, no leading zeros ("qcow01" is a typo). */
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1]))
		goto out;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n >= QCOW2_INDEX_ANY)
			goto out;
	}
	if (*p)
		goto out;
	*index = n;
	ret = 0;
out:
	free(real);
	return ret;
}

int qc_read_image_path(uint32_t index, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if (len < 2)
		return -EINVAL;
	snprintf(path, sizeof(path), "/sys/block/qcow%u/qcow2/image", index);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n ? 0 : -ENODATA;
}
