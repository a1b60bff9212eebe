// SPDX-License-Identifier: GPL-2.0
/*
 * Read-compare helper for the qcow2 selftests.
 *
 *   qcow2_cmp [-c CLUSTER] [-b BYTES] DEV RAWFILE COUNT SEED
 *	COUNT preads at pseudo-random offsets and lengths on DEV and on
 *	RAWFILE (qemu-img's raw conversion of the same image), compared.
 *	Offsets favour cluster boundaries, unaligned starts and the tail of
 *	the device, where per-cluster splitting goes wrong.  CLUSTER
 *	defaults to the device's io_opt (the driver sets it to the cluster
 *	size), else 64 KiB.  BYTES caps the bytes read (from each side), so
 *	that big clusters do not make the run crawl under emulation.
 *   qcow2_cmp --full DEV RAWFILE
 *	the whole of DEV equals RAWFILE: sequential 1 MiB reads, O_DIRECT on
 *	a block device (page-cache reads are what COUNT mode and sha256sum
 *	do; under emulation this is also many times faster than either).
 *   qcow2_cmp --expect-eio DEV OFFSET LEN
 *	a pread of that range must fail with EIO.
 *   qcow2_cmp --read DEV OFFSET LEN
 *	a pread of that range must return all LEN bytes.
 *
 * Exit 0 on success, 1 on a mismatch or unexpected result, 2 on bad usage.
 * Output lines start with "# " (the selftest protocol's diagnostics).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

static uint64_t rng_state;

/* xorshift64*: reproducible from SEED, good enough to pick offsets. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: qcow2_cmp [-c CLUSTER] [-b BYTES] DEV RAWFILE COUNT SEED\n"
		"       qcow2_cmp --full DEV RAWFILE\n"
		"       qcow2_cmp --expect-eio DEV OFFSET LEN\n"
		"       qcow2_cmp --read DEV OFFSET LEN\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -1 : 0;
}

static int open_size(const char *path, uint64_t *size, unsigned int *io_opt)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("# open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		printf("# stat %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0) {
			printf("# BLKGETSIZE64 %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (io_opt && ioctl(fd, BLKIOOPT, io_opt) < 0)
			*io_opt = 0;
	} else {
		*size = st.st_size;
		if (io_opt)
			*io_opt = 0;
	}
	return fd;
}

/* pread all of [off, off+len); returns bytes read, or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static int single_read(const char *dev, const char *off_s, const char *len_s,
		       int want_eio)
{
	uint64_t off, len, size;
	ssize_t n;
	char *buf;
	int fd;

	if (parse_u64(off_s, &off) || parse_u64(len_s, &len) || !len)
		return usage();
	fd = open_size(dev, &size, NULL);
	if (fd < 0)
		return 1;
	buf = malloc(len);
	if (!buf) {
		printf("# out of memory\n");
		return 1;
	}
	n = pread_full(fd, buf, len, off);
	free(buf);
	close(fd);
	if (want_eio) {
		if (n == -EIO)
			return 0;
		if (n < 0)
			printf("# pread %s at %" PRIu64 "+%" PRIu64 ": %s, expected EIO\n",
			       dev, off, len, strerror((int)-n));
		else
			printf("# pread %s at %" PRIu64 "+%" PRIu64 " returned %zd bytes, expected EIO\n",
			       dev, off, len, n);
		return 1;
	}
	if (n == (ssize_t)len)
		return 0;
	if (n < 0)
		printf("# pread %s at %" PRIu64 "+%" PRIu64 ": %s\n",
		       dev, off, len, strerror((int)-n));
	else
		printf("# pread %s at %" PRIu64 "+%" PRIu64 ": short read of %zd\n",
		       dev, off, len, n);
	return 1;
}

static int full_compare(const char *dev, const char *raw)
{
	const size_t chunk = 1 << 20;
	uint64_t size, rsize, off;
	struct stat st;
	int dfd, rfd, flags = O_RDONLY | O_CLOEXEC;
	char *a, *b;

	if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode))
		flags |= O_DIRECT;
	dfd = open_size(dev, &size, NULL);
	rfd = open_size(raw, &rsize, NULL);
	if (dfd < 0 || rfd < 0)
		return 1;
	if (size != rsize) {
		printf("# size mismatch: %s has %" PRIu64 " bytes, %s has %"
		       PRIu64 "\n", dev, size, raw, rsize);
		return 1;
	}
	close(dfd);
	dfd = open(dev, flags);
	if (dfd < 0) {
		printf("# open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&a, 4096, chunk) ||
	    posix_memalign((void **)&b, 4096, chunk)) {
		printf("# out of memory\n");
		return 1;
	}
	for (off = 0; off < size; off += chunk) {
		size_t len = size - off < chunk ? size - off : chunk;
		ssize_t na = pread_full(dfd, a, len, off);
		ssize_t nb = pread_full(rfd, b, len, off);
		size_t i;

		if (na != (ssize_t)len || nb != (ssize_t)len) {
			printf("# read at offset %" PRIu64 " length %zu: device %zd (%s), raw %zd\n",
			       off, len, na, na < 0 ? strerror((int)-na) : "bytes", nb);
			return 1;
		}
		if (memcmp(a, b, len)) {
			for (i = 0; a[i] == b[i]; i++)
				;
			printf("# mismatch: first differing byte at %" PRIu64
			       " (device 0x%02x, raw 0x%02x)\n", off + i,
			       (unsigned char)a[i], (unsigned char)b[i]);
			return 1;
		}
	}
	printf("# %" PRIu64 " bytes equal (%s)\n", size,
	       flags & O_DIRECT ? "O_DIRECT" : "buffered");
	free(a);
	free(b);
	close(dfd);
	close(rfd);
	return 0;
}

/* Pick the next (offset, length) pair; both within [0, size). */
static void pick(uint64_t size, uint64_t cs, uint64_t *off, uint64_t *len)
{
	uint64_t o, l, nclusters = (size + cs - 1) / cs;

	switch (rnd_below(6)) {
	case 0:		/* anywhere, unaligned */
		o = rnd_below(size);
		break;
	case 1:		/* just before or on a cluster boundary */
	case 2:
		o = rnd_below(nclusters) * cs;
		o -= rnd_below(2) ? rnd_below(o < 1024 ? o + 1 : 1024) : 0;
		break;
	case 3:		/* sector aligned */
		o = rnd_below(size / 512 ? size / 512 : 1) * 512;
		break;
	case 4:		/* the last three clusters */
		o = size - 1 - rnd_below(size < 3 * cs ? size : 3 * cs);
		break;
	default:	/* page aligned, as the page cache reads */
		o = rnd_below(size / 4096 ? size / 4096 : 1) * 4096;
		break;
	}
	if (o >= size)
		o = size - 1;

	switch (rnd_below(5)) {
	case 0:
		l = 1 + rnd_below(512);
		break;
	case 1:
		l = cs;
		break;
	case 2:
		l = 1;
		break;
	default:
		l = 1 + rnd_below(3 * cs);
		break;
	}
	if (l > size - o)
		l = size - o;
	*off = o;
	*len = l;
}

static int compare_one(int dfd, int rfd, uint64_t off, uint64_t len,
		       char *a, char *b)
{
	ssize_t na, nb;
	uint64_t i;

	na = pread_full(dfd, a, len, off);
	nb = pread_full(rfd, b, len, off);
	if (na < 0 || nb < 0 || na != nb || (uint64_t)na != len) {
		printf("# read at offset %" PRIu64 " length %" PRIu64
		       ": device %zd (%s), raw %zd\n", off, len, na,
		       na < 0 ? strerror((int)-na) : "bytes", nb);
		return 1;
	}
	if (!memcmp(a, b, len))
		return 0;
	for (i = 0; i < len && a[i] == b[i]; i++)
		;
	printf("# mismatch: read at offset %" PRIu64 " length %" PRIu64
	       ", first differing byte at %" PRIu64
	       " (device 0x%02x, raw 0x%02x)\n", off, len, off + i,
	       (unsigned char)a[i], (unsigned char)b[i]);
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t count, seed, size, rsize, cs = 0, off, len, n, bytes = 0;
	uint64_t budget = UINT64_MAX;
	unsigned int io_opt = 0;
	int dfd, rfd, ret = 0;
	char *a, *b;

	if (argc == 5 && !strcmp(argv[1], "--expect-eio"))
		return single_read(argv[2], argv[3], argv[4], 1);
	if (argc == 4 && !strcmp(argv[1], "--full"))
		return full_compare(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "--read"))
		return single_read(argv[2], argv[3], argv[4], 0);
	while (argc > 5 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "-c")) {
			if (parse_u64(argv[2], &cs) || !cs)
				return usage();
		} else if (!strcmp(argv[1], "-b")) {
			if (parse_u64(argv[2], &budget) || !budget)
				return usage();
		} else {
			return usage();
		}
		argv += 2;
		argc -= 2;
	}
	if (argc != 5 || parse_u64(argv[3], &count) || parse_u64(argv[4], &seed))
		return usage();

	dfd = open_size(argv[1], &size, &io_opt);
	if (dfd < 0)
		return 1;
	rfd = open_size(argv[2], &rsize, NULL);
	if (rfd < 0)
		return 1;
	if (size != rsize) {
		printf("# size mismatch: %s has %" PRIu64 " bytes, %s has %"
		       PRIu64 "\n", argv[1], size, argv[2], rsize);
		return 1;
	}
	if (!size) {
		printf("# %s is empty\n", argv[1]);
		return 1;
	}
	if (!cs)
		cs = io_opt ? io_opt : 65536;
	a = malloc(3 * cs);
	b = malloc(3 * cs);
	if (!a || !b) {
		printf("# out of memory\n");
		return 1;
	}
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;

	/* The very first and very last bytes, always. */
	ret |= compare_one(dfd, rfd, 0, 1, a, b);
	ret |= compare_one(dfd, rfd, size - 1, 1, a, b);
	len = size < 3 * cs ? size : 3 * cs;
	ret |= compare_one(dfd, rfd, size - len, len, a, b);

	for (n = 0; n < count && bytes < budget && !ret; n++) {
		pick(size, cs, &off, &len);
		ret = compare_one(dfd, rfd, off, len, a, b);
		bytes += len;
	}
	printf("# %" PRIu64 " random reads, %" PRIu64 " bytes, cluster %" PRIu64
	       ", seed %" PRIu64 ": %s\n", n, bytes, cs, seed,
	       ret ? "MISMATCH" : "all equal");
	free(a);
	free(b);
	close(dfd);
	close(rfd);
	return ret ? 1 : 0;
}
