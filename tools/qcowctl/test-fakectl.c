// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD stand-in for the qcow2 driver, so test-cli.sh can check what
 * qcowctl sends and how it words the answers without the module.  Only
 * ioctls on the file named by $QCOWCTL_CONTROL_DEVICE are answered here;
 * everything else goes to the kernel.
 *
 *   FAKE_QCOW2_LOG      file that gets one line per control ioctl
 *   FAKE_QCOW2_DEVICES  existing indexes, e.g. "0,3" (default: none)
 *   FAKE_QCOW2_BUSY     indexes whose removal is deferred
 *   FAKE_QCOW2_ADD_ERR  errno for QCOW2_CTL_ADD to fail with
 *
 * Errnos are the driver's: ENXIO for an index without a device.
 */
#include <errno.h>
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

	held_locks(add->fd, locks, sizeof(locks));
	fake_log("ADD size=%u flags=%u index=%u cache=%llu mode=%s direct=%d locks=%s",
		 add->size, add->flags, add->index,
		 (unsigned long long)add->cache_size,
		 fl < 0 ? "badfd" : (fl & O_ACCMODE) == O_RDONLY ? "ro" : "rw",
		 fl >= 0 && (fl & O_DIRECT) ? 1 : 0, locks);
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
	info->flags = QCOW2_INFO_READ_ONLY |
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
		f->add_flags = QCOW2_ADD_READ_ONLY;
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (is_fake_control(fd))
		return fake_ioctl(req, arg);
	return syscall(SYS_ioctl, fd, req, arg);
}
