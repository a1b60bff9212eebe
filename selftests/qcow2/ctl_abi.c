// SPDX-License-Identifier: GPL-2.0
/*
 * ABI checks of /dev/qcow-control that need raw ioctls: argument
 * validation (unknown flags, reserved fields, struct sizes), unknown
 * commands, and the CAP_SYS_ADMIN requirement.
 *
 *   ctl_abi IMAGE VIRTUAL_SIZE
 *	IMAGE is a valid qcow2 image of VIRTUAL_SIZE bytes.  Prints one
 *	result line per check ("ok - ctl_abi: ..." / "not ok - ctl_abi: ..."),
 *	exits 1 if any failed.
 *   ctl_abi --add IMAGE
 *	one raw read-only QCOW2_CTL_ADD, bypassing qcowctl's own checks of the
 *	image: prints /dev/qcowN and exits 0, or prints "# ADD: <error>" and
 *	exits 1.
 *
 * Must run as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/qcow2.h>

static int failures;

static void result(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ctl_abi: ", pass ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		failures++;
}

/* ioctl returning 0 or -errno. */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static void expect_err(int got, int want, const char *what)
{
	if (got == -want)
		result(1, "%s -> %s", what, strerror(want));
	else
		result(0, "%s -> %s (got %s)", what, strerror(want),
		       got ? strerror(-got) : "success");
}

static void add_init(struct qcow2_ctl_add *a, int fd)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = QCOW2_ADD_READ_ONLY;
	a->fd = fd;
	a->index = QCOW2_INDEX_ANY;
}

static int remove_index(int ctl, unsigned int index, unsigned int *deferred)
{
	struct qcow2_ctl_remove r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.index = index;
	ret = xioctl(ctl, QCOW2_CTL_REMOVE, &r);
	if (deferred)
		*deferred = r.deferred;
	return ret;
}

/* Run fn in a child without any privilege; returns its exit status. */
static int unprivileged(int (*fn)(int ctl, int img), int ctl, int img)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		/* A uid change away from 0 clears every capability. */
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534)) {
			printf("# dropping privileges: %s\n", strerror(errno));
			_exit(3);
		}
		_exit(fn(ctl, img));
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int unpriv_add(int ctl, int img)
{
	struct qcow2_ctl_add a;
	int ret;

	add_init(&a, img);
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	if (!ret) {
		printf("# unprivileged ADD created qcow%u\n", a.index);
		return 1;
	}
	if (ret != -EPERM) {
		printf("# unprivileged ADD: %s, expected EPERM\n", strerror(-ret));
		return 1;
	}
	return 0;
}

static int unpriv_remove(int ctl, int img)
{
	(void)img;
	/* The parent names the live device in $CTL_ABI_INDEX. */
	return remove_index(ctl, (unsigned int)strtoul(getenv("CTL_ABI_INDEX"),
							  NULL, 10), NULL) == -EPERM ? 0 : 1;
}

static int unpriv_open(int ctl, int img)
{
	int fd;

	(void)ctl;
	(void)img;
	fd = open(QCOW2_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return (errno == EACCES || errno == EPERM) ? 0 : 1;
	return unpriv_add(fd, img);
}

static int raw_add(const char *image)
{
	struct qcow2_ctl_add a;
	int ctl, img, ret;

	ctl = open(QCOW2_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	img = open(image, O_RDONLY | O_CLOEXEC);
	if (ctl < 0 || img < 0) {
		printf("# open: %s\n", strerror(errno));
		return 2;
	}
	add_init(&a, img);
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	if (ret) {
		printf("# ADD: %s (errno %d)\n", strerror(-ret), -ret);
		return 1;
	}
	printf(QCOW2_DEVICE_PREFIX "%u\n", a.index);
	return 0;
}

int main(int argc, char **argv)
{
	struct qcow2_ctl_add a;
	struct qcow2_ctl_list l;
	struct qcow2_features f;
	struct qcow2_info info;
	unsigned char big[sizeof(struct qcow2_ctl_add) + 16];
	unsigned int idx, deferred, slots[64];
	char path[64], env[32];
	uint64_t vsize;
	int ctl, img, dev, ret, dirfd;

	if (argc == 3 && !strcmp(argv[1], "--add"))
		return raw_add(argv[2]);
	if (argc != 3) {
		fprintf(stderr, "usage: ctl_abi IMAGE VIRTUAL_SIZE | --add IMAGE\n");
		return 2;
	}
	vsize = strtoull(argv[2], NULL, 0);

	ctl = open(QCOW2_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	result(ctl >= 0, "open %s%s%s", QCOW2_CONTROL_PATH,
	       ctl < 0 ? ": " : "", ctl < 0 ? strerror(errno) : "");
	if (ctl < 0)
		return 1;
	img = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (img < 0) {
		result(0, "open %s: %s", argv[1], strerror(errno));
		return 1;
	}

	memset(&f, 0, sizeof(f));
	f.size = sizeof(f);
	ret = xioctl(ctl, QCOW2_CTL_GET_FEATURES, &f);
	result(!ret && f.abi_version == QCOW2_ABI_VERSION &&
	       (f.features & QCOW2_FEAT_READ) &&
	       (f.add_flags & QCOW2_ADD_READ_ONLY),
	       "GET_FEATURES: abi %u features %#llx add_flags %#llx%s%s",
	       f.abi_version, (unsigned long long)f.features,
	       (unsigned long long)f.add_flags, ret ? ": " : "",
	       ret ? strerror(-ret) : "");

	/* Argument validation: each of these must fail and create nothing. */
	add_init(&a, img);
	a.flags |= 1U << 31;
	expect_err(xioctl(ctl, QCOW2_CTL_ADD, &a), EINVAL, "ADD unknown flag");

	add_init(&a, img);
	a.reserved[3] = 1;
	expect_err(xioctl(ctl, QCOW2_CTL_ADD, &a), EINVAL,
		   "ADD non-zero reserved");

	add_init(&a, img);
	a.size = 0;
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	result(ret != 0, "ADD size 0 refused (%s)",
	       ret ? strerror(-ret) : "accepted");
	if (!ret)
		remove_index(ctl, a.index, NULL);

	/*
	 * A newer caller's longer struct with a non-zero unknown tail:
	 * copy_struct_from_user() semantics, same command number.
	 */
	memset(big, 0, sizeof(big));
	add_init(&a, img);
	a.size = sizeof(big);
	memcpy(big, &a, sizeof(a));
	big[sizeof(a) + 3] = 1;
	expect_err(xioctl(ctl, QCOW2_CTL_ADD, big), E2BIG,
		   "ADD longer struct, non-zero tail");
	big[sizeof(a) + 3] = 0;
	ret = xioctl(ctl, QCOW2_CTL_ADD, big);
	result(!ret, "ADD longer struct, zero tail accepted%s%s",
	       ret ? ": " : "", ret ? strerror(-ret) : "");
	if (!ret)
		remove_index(ctl, ((struct qcow2_ctl_add *)big)->index, NULL);

	/* A newer header also encodes the longer size in the number. */
	ret = xioctl(ctl, _IOC(_IOC_READ | _IOC_WRITE, QCOW2_IOCTL_MAGIC, 0x00,
			       sizeof(big)), big);
	result(!ret, "ADD numbered for a longer struct accepted%s%s",
	       ret ? ": " : "", ret ? strerror(-ret) : "");
	if (!ret)
		remove_index(ctl, ((struct qcow2_ctl_add *)big)->index, NULL);

	add_init(&a, img);
	a.fd = -1;
	expect_err(xioctl(ctl, QCOW2_CTL_ADD, &a), EBADF, "ADD fd -1");

	dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	add_init(&a, dirfd);
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	result(ret != 0, "ADD of a directory fd refused (%s)",
	       ret ? strerror(-ret) : "accepted");
	if (!ret)
		remove_index(ctl, a.index, NULL);
	close(dirfd);

	add_init(&a, img);
	a.flags = 0;
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	result(ret != 0, "ADD read-write refused (%s)",
	       ret ? strerror(-ret) : "accepted");
	if (!ret)
		remove_index(ctl, a.index, NULL);

	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.reserved[0] = 1;
	expect_err(xioctl(ctl, QCOW2_CTL_LIST, &l), EINVAL,
		   "LIST non-zero reserved");

	expect_err(xioctl(ctl, _IOWR(QCOW2_IOCTL_MAGIC, 0x3f, struct qcow2_ctl_add), &a),
		   ENOTTY, "unknown command 0x3f");
	expect_err(xioctl(ctl, _IO('L', 0x82), NULL), ENOTTY,
		   "foreign command (LOOP_CTL_GET_FREE)");

	/* A good add, then operations on the live device. */
	add_init(&a, img);
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	result(!ret, "ADD read-only -> qcow%u%s%s", a.index, ret ? ": " : "",
	       ret ? strerror(-ret) : "");
	if (ret)
		goto out;
	idx = a.index;
	snprintf(path, sizeof(path), QCOW2_DEVICE_PREFIX "%u", idx);

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.index = idx;
	ret = xioctl(ctl, QCOW2_CTL_GET_INFO, &info);
	result(!ret && info.virtual_size == vsize &&
	       (info.flags & QCOW2_INFO_READ_ONLY),
	       "GET_INFO qcow%u: size %llu flags %#x%s%s", idx,
	       (unsigned long long)info.virtual_size, info.flags,
	       ret ? ": " : "", ret ? strerror(-ret) : "");

	dev = open(path, O_RDONLY | O_CLOEXEC);
	if (dev >= 0) {
		memset(&info, 0, sizeof(info));
		info.size = sizeof(info);
		ret = xioctl(dev, QCOW2_GET_INFO, &info);
		result(!ret && info.virtual_size == vsize,
		       "QCOW2_GET_INFO on %s: size %llu%s%s", path,
		       (unsigned long long)info.virtual_size, ret ? ": " : "",
		       ret ? strerror(-ret) : "");
		close(dev);
	} else {
		result(0, "open %s: %s", path, strerror(errno));
	}

	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.count = sizeof(slots) / sizeof(slots[0]);
	l.indexes = (uintptr_t)slots;
	ret = xioctl(ctl, QCOW2_CTL_LIST, &l);
	if (!ret) {
		unsigned int i, found = 0;

		for (i = 0; i < l.count && i < 64; i++)
			found |= slots[i] == idx;
		result(found, "LIST contains qcow%u (%u devices)", idx, l.count);
	} else {
		result(0, "LIST: %s", strerror(-ret));
	}

	add_init(&a, img);
	a.index = idx;
	ret = xioctl(ctl, QCOW2_CTL_ADD, &a);
	result(ret == -EEXIST || ret == -EBUSY,
	       "ADD with the index of a live device -> EEXIST (got %s)",
	       ret ? strerror(-ret) : "success");
	if (!ret && a.index != idx)
		remove_index(ctl, a.index, NULL);

	/* Privilege: an fd opened by root must not carry the right along. */
	ret = unprivileged(unpriv_add, ctl, img);
	result(ret == 0, "ADD without CAP_SYS_ADMIN -> EPERM");
	snprintf(env, sizeof(env), "%u", idx);
	setenv("CTL_ABI_INDEX", env, 1);
	ret = unprivileged(unpriv_remove, ctl, img);
	result(ret == 0, "REMOVE without CAP_SYS_ADMIN -> EPERM");
	ret = unprivileged(unpriv_open, ctl, img);
	result(ret == 0, "unprivileged open of %s refused, or its ADD -> EPERM",
	       QCOW2_CONTROL_PATH);

	{
		struct qcow2_ctl_remove r;

		memset(&r, 0, sizeof(r));
		r.size = sizeof(r);
		r.index = idx;
		r.flags = 1;
		expect_err(xioctl(ctl, QCOW2_CTL_REMOVE, &r), EINVAL,
			   "REMOVE unknown flag");
		r.flags = 0;
		r.reserved[1] = 1;
		expect_err(xioctl(ctl, QCOW2_CTL_REMOVE, &r), EINVAL,
			   "REMOVE non-zero reserved");
	}

	ret = remove_index(ctl, idx, &deferred);
	result(!ret && !deferred, "REMOVE idle qcow%u (deferred %u)%s%s", idx,
	       deferred, ret ? ": " : "", ret ? strerror(-ret) : "");
	ret = remove_index(ctl, idx, NULL);
	result(ret == -ENODEV || ret == -ENXIO || ret == -ENOENT,
	       "REMOVE again -> ENODEV (got %s)",
	       ret ? strerror(-ret) : "success");
out:
	close(img);
	close(ctl);
	return failures ? 1 : 0;
}
