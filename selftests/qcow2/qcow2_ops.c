// SPDX-License-Identifier: GPL-2.0
/*
 * Random write/zero/discard sequences for the qcow2 selftests.
 *
 *   qcow2_ops [OPTIONS] DEV RAW
 *
 * Applies a seeded pseudo-random sequence of operations to DEV (a block
 * device, opened O_DIRECT) and the same sequence, with its expected effect,
 * to RAW (a regular file of the same size).  Afterwards DEV must read like
 * RAW, and an image that was behind DEV must equal RAW in qemu-img compare.
 *
 *   write    random (sometimes all-zero) data; 512-byte aligned offsets and
 *	      lengths, biased to cluster boundaries and partial clusters
 *   zero     BLKZEROOUT, or fallocate(PUNCH_HOLE) on the device, which the
 *	      block layer turns into a REQ_OP_WRITE_ZEROES that may unmap;
 *	      both must read back as zeros
 *   discard  BLKDISCARD.  Only whole clusters inside the range are sure to
 *	      read zeros afterwards (no backing file): RAW gets zeros there and
 *	      the device is read back to prove it.  The partial clusters at
 *	      the ends may keep their data (QEMU ignores partial discards), so
 *	      both sides get zeros written there, which also catches a discard
 *	      that dropped a whole cluster it only partly covered.
 *   read     a random range of DEV compared with RAW
 *
 * Options:
 *   -s SEED     random seed (default: time); printed
 *   -n COUNT    operations (default 100)
 *   -c CLUSTER  cluster size of the image behind DEV (default 65536)
 *   -m MAXLEN   longest operation in bytes (default 1 MiB)
 *   -w W -z Z -d D -r R
 *		 relative weights of write, zero, discard, read (60 15 15 10)
 *   -f          fsync DEV at the end (a FLUSH); its failure fails the run
 *   -V          compare all of DEV with RAW at the end
 *   -t          print every operation
 *
 * A DEV that is a regular file gets fallocate() instead of the block
 * ioctls, so the tool can be tried without the driver.
 *
 * Exit 0 when every operation succeeded and every read matched, 1 on an I/O
 * error or mismatch, 2 on bad usage.  Output lines start with "# ".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#define SECTOR 512ULL

enum op { OP_WRITE, OP_ZERO, OP_DISCARD, OP_READ, OP_NR };

static const char *const op_names[OP_NR] = {
	"write", "zero", "discard", "read"
};

static uint64_t rng_state;

/* xorshift64*: reproducible from the seed. */
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

struct target {
	const char *path;
	int fd;
	bool blk;
};

static struct target dev, raw;
static uint64_t dev_size, cluster = 65536, maxlen = 1 << 20;
static char *buf, *buf2, *zeros;
static bool trace;
static long op_index;
static uint64_t n_ops[OP_NR], n_bytes[OP_NR], n_punch;

static int usage(void)
{
	fprintf(stderr,
		"usage: qcow2_ops [-s SEED] [-n COUNT] [-c CLUSTER] [-m MAXLEN]\n"
		"                 [-w W] [-z Z] [-d D] [-r R] [-f] [-V] [-t] DEV RAW\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -1 : 0;
}

static void report(const char *what, const struct target *t, uint64_t off,
		   uint64_t len, int err)
{
	printf("# op %ld: %s %s at %" PRIu64 "+%" PRIu64 ": %s\n", op_index,
	       what, t->path, off, len, err ? strerror(err) : "short transfer");
}

static int pwrite_full(const struct target *t, const void *p, uint64_t len,
		       uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(t->fd, (const char *)p + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			report("pwrite", t, off, len, n < 0 ? errno : 0);
			return -1;
		}
		done += n;
	}
	return 0;
}

static int pread_full(const struct target *t, void *p, uint64_t len,
		      uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(t->fd, (char *)p + done, len - done,
				  off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			report("pread", t, off, len, n < 0 ? errno : 0);
			return -1;
		}
		done += n;
	}
	return 0;
}

/* Zeros on RAW: a hole where the file system can punch one. */
static int raw_zero(uint64_t off, uint64_t len)
{
	uint64_t done;

	if (!len)
		return 0;
	if (!fallocate(raw.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       off, len))
		return 0;
	for (done = 0; done < len; done += maxlen) {
		uint64_t n = len - done < maxlen ? len - done : maxlen;

		if (pwrite_full(&raw, zeros, n, off + done))
			return -1;
	}
	return 0;
}

/* Zeros written as data through the normal write path, on both sides. */
static int both_write_zeros(uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (pwrite_full(&dev, zeros, len, off))
		return -1;
	return raw_zero(off, len);
}

static int compare_range(uint64_t off, uint64_t len)
{
	uint64_t i;

	if (pread_full(&dev, buf, len, off) || pread_full(&raw, buf2, len, off))
		return -1;
	if (!memcmp(buf, buf2, len))
		return 0;
	for (i = 0; buf[i] == buf2[i]; i++)
		;
	printf("# op %ld: mismatch in %" PRIu64 "+%" PRIu64
	       ": first differing byte at %" PRIu64
	       " (device 0x%02x, expected 0x%02x)\n", op_index, off, len,
	       off + i, (unsigned char)buf[i], (unsigned char)buf2[i]);
	return -1;
}

static int expect_zeros(uint64_t off, uint64_t len, const char *after)
{
	uint64_t i;

	if (!len)
		return 0;
	if (pread_full(&dev, buf, len, off))
		return -1;
	if (!memcmp(buf, zeros, len))
		return 0;
	for (i = 0; !buf[i]; i++)
		;
	printf("# op %ld: %s of %" PRIu64 "+%" PRIu64
	       " does not read as zeros: byte %" PRIu64 " is 0x%02x\n",
	       op_index, after, off, len, off + i, (unsigned char)buf[i]);
	return -1;
}

static int do_write(uint64_t off, uint64_t len)
{
	uint64_t i;

	if (rnd_below(20) == 0) {
		memset(buf, 0, len);
	} else {
		for (i = 0; i < len; i += 8) {
			uint64_t v = rnd();

			memcpy(buf + i, &v, 8);
		}
	}
	if (pwrite_full(&dev, buf, len, off))
		return -1;
	return pwrite_full(&raw, buf, len, off);
}

static int do_zero(uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	bool punch = rnd_below(2);
	int ret;

	if (!dev.blk)
		ret = fallocate(dev.fd, FALLOC_FL_ZERO_RANGE, off, len);
	else if (punch)
		ret = fallocate(dev.fd, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, off, len);
	else
		ret = ioctl(dev.fd, BLKZEROOUT, range);
	if (ret) {
		report(dev.blk ? (punch ? "fallocate(PUNCH_HOLE)" : "BLKZEROOUT")
		       : "fallocate(ZERO_RANGE)", &dev, off, len, errno);
		return -1;
	}
	n_punch += dev.blk && punch;
	if (raw_zero(off, len))
		return -1;
	return expect_zeros(off, len, punch ? "zeroing (may unmap)" : "zeroing");
}

static int do_discard(uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	uint64_t end = off + len;
	uint64_t a = (off + cluster - 1) / cluster * cluster;
	uint64_t b = end / cluster * cluster;
	int ret;

	if (dev.blk)
		ret = ioctl(dev.fd, BLKDISCARD, range);
	else
		ret = fallocate(dev.fd, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, off, len);
	if (ret) {
		report("BLKDISCARD", &dev, off, len, errno);
		return -1;
	}
	if (a >= b)	/* no whole cluster inside */
		return both_write_zeros(off, len);
	if (raw_zero(a, b - a) || expect_zeros(a, b - a, "discard"))
		return -1;
	if (both_write_zeros(off, a - off) || both_write_zeros(b, end - b))
		return -1;
	return 0;
}

/* Pick a sector-aligned range of at most maxlen bytes inside the device. */
static void pick(uint64_t *off, uint64_t *len)
{
	uint64_t max = maxlen < dev_size ? maxlen : dev_size;
	uint64_t nclusters = dev_size / cluster;
	uint64_t o, l, base;
	int shift = 0;

	/* Lengths: log-uniform from 512 bytes to max, then jittered. */
	while ((SECTOR << (shift + 1)) <= max)
		shift++;
	base = SECTOR << rnd_below(shift + 1);
	l = base + SECTOR * rnd_below(base / SECTOR);
	if (rnd_below(8) == 0)
		l = cluster;
	if (l > max)
		l = max / SECTOR * SECTOR;

	switch (rnd_below(5)) {
	case 0:		/* starts on a cluster */
		o = rnd_below(nclusters) * cluster;
		break;
	case 1:		/* crosses a cluster boundary */
		if (nclusters > 1) {
			o = (1 + rnd_below(nclusters - 1)) * cluster;
			o -= SECTOR * (1 + rnd_below((l < cluster ? l : cluster)
						      / SECTOR));
			break;
		}
		/* fall through */
	default:	/* any sector */
		o = rnd_below(dev_size / SECTOR) * SECTOR;
		break;
	}
	if (o + l > dev_size) {
		if (l > dev_size)
			l = dev_size;
		o = dev_size - l;
	}
	*off = o;
	*len = l;
}

static int open_target(struct target *t, const char *path, bool direct)
{
	struct stat st;

	t->path = path;
	t->fd = open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (t->fd < 0 && direct && errno == EINVAL)	/* tmpfs */
		t->fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->fd < 0 || fstat(t->fd, &st)) {
		printf("# open %s: %s\n", path, strerror(errno));
		return -1;
	}
	t->blk = S_ISBLK(st.st_mode);
	if (!t->blk && !S_ISREG(st.st_mode)) {
		printf("# %s is neither a block device nor a regular file\n",
		       path);
		return -1;
	}
	return 0;
}

static int target_size(const struct target *t, uint64_t *size)
{
	struct stat st;

	if (t->blk) {
		if (!ioctl(t->fd, BLKGETSIZE64, size))
			return 0;
	} else if (!fstat(t->fd, &st)) {
		*size = st.st_size;
		return 0;
	}
	printf("# size of %s: %s\n", t->path, strerror(errno));
	return -1;
}

static int verify_all(void)
{
	uint64_t off;

	for (off = 0; off < dev_size; off += maxlen) {
		uint64_t n = dev_size - off < maxlen ? dev_size - off : maxlen;

		if (compare_range(off, n))
			return -1;
	}
	printf("# all %" PRIu64 " bytes of %s equal %s\n", dev_size, dev.path,
	       raw.path);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	uint64_t count = 100, rsize, weight[OP_NR] = { 60, 15, 15, 10 };
	uint64_t total = 0, pickw, off, len;
	bool do_fsync = false, verify = false;
	int c, ret = 0;
	enum op op;

	while ((c = getopt(argc, argv, "s:n:c:m:w:z:d:r:fVt")) != -1) {
		uint64_t *dst = NULL;

		switch (c) {
		case 's': dst = &seed; break;
		case 'n': dst = &count; break;
		case 'c': dst = &cluster; break;
		case 'm': dst = &maxlen; break;
		case 'w': dst = &weight[OP_WRITE]; break;
		case 'z': dst = &weight[OP_ZERO]; break;
		case 'd': dst = &weight[OP_DISCARD]; break;
		case 'r': dst = &weight[OP_READ]; break;
		case 'f': do_fsync = true; break;
		case 'V': verify = true; break;
		case 't': trace = true; break;
		default: return usage();
		}
		if (dst && parse_u64(optarg, dst))
			return usage();
	}
	if (argc - optind != 2)
		return usage();
	for (op = 0; op < OP_NR; op++)
		total += weight[op];
	if (!total || cluster < SECTOR || (cluster & (cluster - 1)) ||
	    maxlen < SECTOR || maxlen % SECTOR || maxlen > (64 << 20))
		return usage();

	if (open_target(&dev, argv[optind], true) ||
	    open_target(&raw, argv[optind + 1], false) ||
	    target_size(&dev, &dev_size) || target_size(&raw, &rsize))
		return 1;
	if (raw.blk || dev_size != rsize || dev_size < SECTOR ||
	    dev_size % SECTOR) {
		printf("# %s (%" PRIu64 " bytes) and the regular file %s (%"
		       PRIu64 " bytes) must have the same size, a multiple of 512\n",
		       dev.path, dev_size, raw.path, rsize);
		return 1;
	}
	if (posix_memalign((void **)&buf, 4096, maxlen) ||
	    posix_memalign((void **)&buf2, 4096, maxlen) ||
	    posix_memalign((void **)&zeros, 4096, maxlen)) {
		printf("# out of memory\n");
		return 1;
	}
	memset(zeros, 0, maxlen);

	printf("# qcow2_ops: seed %" PRIu64 ", %" PRIu64
	       " operations, cluster %" PRIu64 ", %s\n",
	       seed, count, cluster, dev.path);
	rng_state = seed ? seed : 1;

	for (op_index = 0; op_index < (long)count && !ret; op_index++) {
		pickw = rnd_below(total);
		for (op = 0; pickw >= weight[op]; op++)
			pickw -= weight[op];
		pick(&off, &len);
		if (trace)
			printf("# op %ld: %s %" PRIu64 "+%" PRIu64 "\n",
			       op_index, op_names[op], off, len);
		n_ops[op]++;
		n_bytes[op] += len;
		switch (op) {
		case OP_WRITE:
			ret = do_write(off, len);
			break;
		case OP_ZERO:
			ret = do_zero(off, len);
			break;
		case OP_DISCARD:
			ret = do_discard(off, len);
			break;
		default:
			ret = compare_range(off, len);
			break;
		}
	}
	if (ret)
		printf("# qcow2_ops: failed at operation %ld (seed %" PRIu64 ")\n",
		       op_index - 1, seed);

	if (!ret && do_fsync && fsync(dev.fd)) {
		printf("# fsync %s: %s\n", dev.path, strerror(errno));
		ret = -1;
	}
	if (!ret && verify)
		ret = verify_all();

	printf("# qcow2_ops: %" PRIu64 " writes (%" PRIu64 " KiB), %" PRIu64
	       " zeroes (%" PRIu64 " unmapping), %" PRIu64 " discards, %" PRIu64
	       " reads\n", n_ops[OP_WRITE], n_bytes[OP_WRITE] >> 10,
	       n_ops[OP_ZERO], n_punch, n_ops[OP_DISCARD], n_ops[OP_READ]);
	free(buf);
	free(buf2);
	free(zeros);
	close(dev.fd);
	close(raw.fd);
	return ret ? 1 : 0;
}
