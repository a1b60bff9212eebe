// SPDX-License-Identifier: GPL-2.0
/*
 * Replay a dm-log-writes log (Documentation/admin-guide/device-mapper/
 * log-writes.rst) onto a device or file, for the crash-consistency test.
 *
 *   log_replay --list LOG
 *	one line per entry: "INDEX FLAGS SECTOR NR_SECTORS [MARK]", FLAGS
 *	being letters W (data), F (flush), U (FUA), D (discard), M (mark),
 *	m (metadata) or "-"; SECTOR and NR_SECTORS in 512-byte units.
 *	A first line "# log: N entries, sector size S" sums up the log.
 *   log_replay [--from N] [--to N | --to-mark NAME] LOG TARGET
 *	apply entries FROM (default 0) up to, not including, TO (default:
 *	all) or the mark NAME onto TARGET.  Discarded ranges become zeros
 *	(a hole where TARGET can punch one).  TARGET starts, like the logged
 *	device did when the log-writes target was created, as the caller
 *	prepared it.
 *
 * The log: a super block at byte 0 (le64 magic, le64 version, le64
 * nr_entries, le32 sectorsize), then entries from byte SECTORSIZE on.  An
 * entry is one SECTORSIZE block holding le64 sector, le64 nr_sectors,
 * le64 flags, le64 data_len (and for a mark its name, data_len bytes right
 * after those four), followed, unless it is a discard, by nr_sectors
 * blocks of written data.  sector and nr_sectors count SECTORSIZE units.
 *
 * Exit 0 on success, 1 on a bad log or an I/O error, 2 on bad usage.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#define LW_MAGIC	0x6a736677736872ULL
#define LW_VERSION	1ULL

#define LW_FLUSH	(1ULL << 0)
#define LW_FUA		(1ULL << 1)
#define LW_DISCARD	(1ULL << 2)
#define LW_MARK		(1ULL << 3)
#define LW_METADATA	(1ULL << 4)
#define LW_KNOWN	(LW_FLUSH | LW_FUA | LW_DISCARD | LW_MARK | LW_METADATA)

#define CHUNK		(1U << 20)

struct lw_entry {
	uint64_t index;
	uint64_t sector;	/* in SECTORSIZE units */
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
	uint64_t data_pos;	/* byte offset of the data in the log */
	char mark[4096];
};

struct lw_log {
	int fd;
	uint64_t size;		/* bytes in the log device */
	uint64_t nr_entries;
	uint32_t sectorsize;
	uint64_t next_pos;	/* byte offset of the next entry */
	uint64_t next_index;
	unsigned char *block;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: log_replay --list LOG\n"
		"       log_replay [--from N] [--to N | --to-mark NAME] LOG TARGET\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -1 : 0;
}

static int pread_full(int fd, void *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)p + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)p + done, len - done,
				   off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		done += n;
	}
	return 0;
}

static int fd_size(int fd, const char *path, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st)) {
		printf("# stat %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size)) {
			printf("# BLKGETSIZE64 %s: %s\n", path, strerror(errno));
			return -1;
		}
	} else {
		*size = st.st_size;
	}
	return 0;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static int log_open(struct lw_log *log, const char *path)
{
	unsigned char super[32];
	uint64_t magic, version;
	int err;

	log->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (log->fd < 0) {
		printf("# open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fd_size(log->fd, path, &log->size))
		return -1;
	err = pread_full(log->fd, super, sizeof(super), 0);
	if (err) {
		printf("# read super block of %s: %s\n", path, strerror(-err));
		return -1;
	}
	magic = get_le64(super);
	version = get_le64(super + 8);
	log->nr_entries = get_le64(super + 16);
	log->sectorsize = get_le32(super + 24);
	if (magic != LW_MAGIC || version != LW_VERSION) {
		printf("# %s: not a dm-log-writes log (magic %#" PRIx64
		       ", version %" PRIu64 ")\n", path, magic, version);
		return -1;
	}
	if (log->sectorsize < 512 || log->sectorsize > 4096 ||
	    (log->sectorsize & (log->sectorsize - 1))) {
		printf("# %s: bad sector size %u\n", path, log->sectorsize);
		return -1;
	}
	if (log->nr_entries > log->size / log->sectorsize) {
		printf("# %s: %" PRIu64 " entries cannot fit in %" PRIu64
		       " bytes\n", path, log->nr_entries, log->size);
		return -1;
	}
	log->block = malloc(log->sectorsize);
	if (!log->block) {
		printf("# out of memory\n");
		return -1;
	}
	log->next_pos = log->sectorsize;
	log->next_index = 0;
	return 0;
}

/* Read the next entry header; 1 at the end of the log, -1 on error. */
static int log_next(struct lw_log *log, struct lw_entry *e)
{
	uint64_t ss = log->sectorsize, data_bytes;
	int err;

	if (log->next_index >= log->nr_entries)
		return 1;
	if (log->next_pos + ss > log->size) {
		printf("# entry %" PRIu64 " at byte %" PRIu64
		       " lies beyond the end of the log\n",
		       log->next_index, log->next_pos);
		return -1;
	}
	err = pread_full(log->fd, log->block, ss, log->next_pos);
	if (err) {
		printf("# read entry %" PRIu64 ": %s\n", log->next_index,
		       strerror(-err));
		return -1;
	}
	e->index = log->next_index;
	e->sector = get_le64(log->block);
	e->nr_sectors = get_le64(log->block + 8);
	e->flags = get_le64(log->block + 16);
	e->data_len = get_le64(log->block + 24);
	e->data_pos = log->next_pos + ss;
	e->mark[0] = '\0';

	if (e->flags & ~LW_KNOWN) {
		printf("# entry %" PRIu64 ": unknown flags %#" PRIx64 "\n",
		       e->index, e->flags);
		return -1;
	}
	if (e->flags & LW_MARK) {
		if (e->data_len > ss - 32) {
			printf("# entry %" PRIu64 ": mark of %" PRIu64
			       " bytes does not fit its sector\n",
			       e->index, e->data_len);
			return -1;
		}
		memcpy(e->mark, log->block + 32, e->data_len);
		e->mark[e->data_len] = '\0';
	}
	if (e->nr_sectors > log->size / ss) {
		printf("# entry %" PRIu64 ": %" PRIu64 " sectors is more than the log holds\n",
		       e->index, e->nr_sectors);
		return -1;
	}
	data_bytes = (e->flags & LW_DISCARD) ? 0 : e->nr_sectors * ss;
	if (e->data_pos + data_bytes > log->size) {
		printf("# entry %" PRIu64 ": its data runs past the end of the log\n",
		       e->index);
		return -1;
	}
	log->next_pos = e->data_pos + data_bytes;
	log->next_index++;
	return 0;
}

static void flag_letters(uint64_t flags, bool has_data, char *out)
{
	char *p = out;

	if (has_data)
		*p++ = 'W';
	if (flags & LW_FLUSH)
		*p++ = 'F';
	if (flags & LW_FUA)
		*p++ = 'U';
	if (flags & LW_DISCARD)
		*p++ = 'D';
	if (flags & LW_MARK)
		*p++ = 'M';
	if (flags & LW_METADATA)
		*p++ = 'm';
	if (p == out)
		*p++ = '-';
	*p = '\0';
}

static int do_list(const char *path)
{
	struct lw_log log;
	struct lw_entry e;
	uint64_t k;
	char fl[8];
	int ret;

	if (log_open(&log, path))
		return 1;
	k = log.sectorsize / 512;
	printf("# log: %" PRIu64 " entries, sector size %u\n",
	       log.nr_entries, log.sectorsize);
	while (!(ret = log_next(&log, &e))) {
		bool data = !(e.flags & (LW_DISCARD | LW_MARK)) && e.nr_sectors;

		flag_letters(e.flags, data, fl);
		printf("%" PRIu64 " %s %" PRIu64 " %" PRIu64 "%s%s\n", e.index,
		       fl, e.sector * k, e.nr_sectors * k,
		       e.mark[0] ? " " : "", e.mark);
	}
	return ret < 0 ? 1 : 0;
}

static int zero_range(int fd, bool blk, uint64_t off, uint64_t len,
		      unsigned char *zbuf)
{
	uint64_t range[2] = { off, len };

	if (blk) {
		if (!ioctl(fd, BLKZEROOUT, range))
			return 0;
	} else if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      off, len)) {
		return 0;
	}
	while (len) {
		size_t n = len < CHUNK ? len : CHUNK;
		int err = pwrite_full(fd, zbuf, n, off);

		if (err)
			return err;
		off += n;
		len -= n;
	}
	return 0;
}

static int do_replay(const char *logpath, const char *tpath, uint64_t from,
		     uint64_t to, const char *to_mark)
{
	uint64_t tsize, n_write = 0, n_discard = 0, n_flush = 0, last = from;
	unsigned char *data, *zbuf;
	struct lw_log log;
	struct lw_entry e;
	struct stat st;
	bool found = !to_mark;
	int tfd, ret, err = 0;

	if (log_open(&log, logpath))
		return 1;
	tfd = open(tpath, O_WRONLY | O_CLOEXEC);
	if (tfd < 0 || fstat(tfd, &st)) {
		printf("# open %s: %s\n", tpath, strerror(errno));
		return 1;
	}
	if (fd_size(tfd, tpath, &tsize))
		return 1;
	data = malloc(CHUNK);
	zbuf = calloc(1, CHUNK);
	if (!data || !zbuf) {
		printf("# out of memory\n");
		return 1;
	}

	while (!err && !(ret = log_next(&log, &e))) {
		uint64_t off = e.sector * log.sectorsize;
		uint64_t len = e.nr_sectors * log.sectorsize, done;

		if (to_mark && (e.flags & LW_MARK) && !strcmp(e.mark, to_mark)) {
			found = true;
			break;
		}
		if (e.index >= to)
			break;
		last = e.index + 1;
		if (e.index < from)
			continue;
		n_flush += !!(e.flags & LW_FLUSH);
		if ((e.flags & LW_MARK) || !len)
			continue;
		if (off > tsize || len > tsize - off) {
			printf("# entry %" PRIu64 ": sectors %" PRIu64 "+%" PRIu64
			       " lie beyond the end of %s\n", e.index,
			       off / 512, len / 512, tpath);
			err = -ERANGE;
			break;
		}
		if (e.flags & LW_DISCARD) {
			err = zero_range(tfd, S_ISBLK(st.st_mode), off, len,
					 zbuf);
			n_discard++;
			continue;
		}
		for (done = 0; done < len && !err; done += CHUNK) {
			size_t n = len - done < CHUNK ? len - done : CHUNK;

			err = pread_full(log.fd, data, n, e.data_pos + done);
			if (err) {
				printf("# read data of entry %" PRIu64 ": %s\n",
				       e.index, strerror(-err));
				break;
			}
			err = pwrite_full(tfd, data, n, off + done);
		}
		n_write++;
	}
	if (err) {
		printf("# replay onto %s: %s\n", tpath, strerror(-err));
		return 1;
	}
	if (ret < 0)
		return 1;
	if (!found) {
		printf("# mark '%s' not in the log\n", to_mark);
		return 1;
	}
	if (fsync(tfd) && errno != EINVAL) {
		printf("# fsync %s: %s\n", tpath, strerror(errno));
		return 1;
	}
	printf("# replayed entries %" PRIu64 "..%" PRIu64 " of %" PRIu64
	       ": %" PRIu64 " writes, %" PRIu64 " discards, %" PRIu64
	       " flushes\n", from, last, log.nr_entries, n_write, n_discard,
	       n_flush);
	free(data);
	free(zbuf);
	close(tfd);
	close(log.fd);
	free(log.block);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t from = 0, to = UINT64_MAX;
	const char *to_mark = NULL;
	int i;

	if (argc == 3 && !strcmp(argv[1], "--list"))
		return do_list(argv[2]);
	for (i = 1; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "--from")) {
			if (parse_u64(argv[i + 1], &from))
				return usage();
		} else if (!strcmp(argv[i], "--to")) {
			if (parse_u64(argv[i + 1], &to))
				return usage();
		} else if (!strcmp(argv[i], "--to-mark")) {
			to_mark = argv[i + 1];
		} else {
			return usage();
		}
	}
	if (argc - i != 2 || (to_mark && to != UINT64_MAX) || from > to)
		return usage();
	return do_replay(argv[i], argv[i + 1], from, to, to_mark);
}
