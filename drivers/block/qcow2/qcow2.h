/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow2 block device driver: private types shared by the module's files.
 */
#ifndef _QCOW2_H
#define _QCOW2_H

#undef pr_fmt
#define pr_fmt(fmt) "qcow2: " fmt

#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "compat.h"
#include "format.h"

#define QCOW2_PART_BITS		4	/* 15 partitions per device */
#define QCOW2_MIN_CACHE_SLICES	16
#define QCOW2_MAX_SLICE_SIZE	4096U

/* Counters of one L2 cache, per CPU so the hit path touches no shared line. */
struct qcow2_cache_stats {
	u64 hits;
	u64 misses;
	u64 evictions;
};

/**
 * struct qcow2_cache - bounded cache of L2 table slices
 * @slices: slice host offset >> 9 -> struct qcow2_slice; lookups are
 *	lockless under RCU, insertion and removal take the xarray's lock
 * @evict_lock: serialises eviction and protects @hand
 * @hand: xarray index where the CLOCK sweep resumes
 * @nr_slices: slices in @slices
 * @max_slices: bound on @nr_slices
 * @slice_size: bytes per slice (a whole cluster, at most 4 KiB)
 * @file: the image file the slices are read from
 * @stats: per-CPU counters
 * @shrinker: gives slices back under memory pressure
 */
struct qcow2_cache {
	struct xarray slices;
	spinlock_t evict_lock;		/* protects @hand, serialises eviction */
	unsigned long hand;
	atomic_t nr_slices;
	unsigned int max_slices;
	unsigned int slice_size;
	struct file *file;
	struct qcow2_cache_stats __percpu *stats;
	struct shrinker *shrinker;
};

/**
 * struct qcow2_snapshot - one internal snapshot, as read at attach time
 * @info: decoded table entry
 * @id: NUL-terminated copy of the ID string
 * @name: NUL-terminated copy of the name
 */
struct qcow2_snapshot {
	struct qcow2_snapshot_info info;
	char *id;
	char *name;
};

/**
 * struct qcow2_decomp - buffers and contexts to decompress clusters
 * @lock: one decompression at a time; protects everything below
 * @in: compressed bytes (up to two clusters)
 * @out: one decompressed cluster
 * @cached_offset: host offset whose cluster @out holds, or U64_MAX
 * @zlib_ws: zlib inflate workspace, allocated on first use
 * @zstd_ws: zstd stream workspace, allocated on first use
 * @zstd_ws_size: bytes at @zstd_ws
 */
struct qcow2_decomp {
	struct mutex lock;		/* protects the fields below */
	void *in;
	void *out;
	u64 cached_offset;
	void *zlib_ws;
	void *zstd_ws;
	size_t zstd_ws_size;
};

/**
 * struct qcow2_image - an open, validated image
 * @file: the image file (our own reference)
 * @lay: the validated header
 * @l1: the active L1 table, big endian, as on disk; immutable while the
 *	image is read-only
 * @snapshots: @lay.nb_snapshots entries
 * @cache: L2 slice cache
 * @decomp: decompression state
 * @corrupt_logged: a corruption message was printed (print it once)
 * @name: short name for messages, "qcowN"
 */
struct qcow2_image {
	struct file *file;
	struct qcow2_layout lay;
	__be64 *l1;
	struct qcow2_snapshot *snapshots;
	struct qcow2_cache cache;
	struct qcow2_decomp decomp;
	bool corrupt_logged;
	char name[DISK_NAME_LEN];
};

enum qcow2_dev_state {
	QCOW2_BOUND,		/* serving I/O */
	QCOW2_RUNDOWN,		/* removal requested; waits for last close */
	QCOW2_DELETING,		/* being torn down; no new opens */
};

/**
 * struct qcow2_dev - one /dev/qcowN
 * @index: N
 * @state: see enum qcow2_dev_state; written under disk->open_mutex and
 *	qcow2_ctl_mutex, read under either
 * @read_only: the device is read-only
 * @disk: the gendisk
 * @tag_set: blk-mq tag set
 * @img: the image
 * @wq: workqueue running requests (reclaim-safe)
 * @remove_work: deferred removal after the last close
 */
struct qcow2_dev {
	int index;
	enum qcow2_dev_state state;
	bool read_only;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct qcow2_image *img;
	struct workqueue_struct *wq;
	struct work_struct remove_work;
};

/**
 * struct qcow2_cmd - per-request state (blk-mq PDU)
 * @work: runs the request on the device workqueue
 * @ref: one for the submitter, one per file I/O in flight
 * @status: first error of the request
 * @bvec: bvec array when the request spans several bios, else NULL
 * @aio: the first file I/O of the request, embedded to avoid an allocation
 */
struct qcow2_aio {
	struct kiocb iocb;
	struct qcow2_cmd *cmd;
	struct iov_iter iter;
	size_t len;
	bool embedded;
};

struct qcow2_cmd {
	struct work_struct work;
	atomic_t ref;
	blk_status_t status;
	struct bio_vec *bvec;
	struct qcow2_aio aio;
};

struct qcow2_info;

/*
 * Argument structures say their own size, so a command is recognised
 * without the size bits of its number: a program built against a newer,
 * longer structure still reaches the same command (see the uapi header).
 */
#define QCOW2_IOC_BASE(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

/* main.c */
extern unsigned long qcow2_default_cache_size;
extern struct mutex qcow2_ctl_mutex;
extern struct idr qcow2_index_idr;
int qcow2_dev_add(struct file *file, unsigned int flags, u64 cache_size,
		  u32 want_index);
int qcow2_dev_remove(u32 index, bool *deferred);
void qcow2_dev_fill_info(struct qcow2_dev *dev, struct qcow2_info *info);

/* ctl.c */
int qcow2_ctl_init(void);
void qcow2_ctl_exit(void);

/* image.c */
int qcow2_image_open(struct file *file, bool read_only, u64 cache_size,
		     struct qcow2_image **imgp);
void qcow2_image_close(struct qcow2_image *img);
int qcow2_corruption(struct qcow2_image *img, const char *what, u64 offset);
ssize_t qcow2_file_read(struct file *file, void *buf, size_t len, u64 pos);

/* cache.c */
int qcow2_cache_init(struct qcow2_cache *c, struct file *file,
		     unsigned int slice_size, u64 bytes, const char *name);
void qcow2_cache_destroy(struct qcow2_cache *c);
int qcow2_cache_get_entry(struct qcow2_cache *c, u64 slice_offset,
			  unsigned int index, u64 *entry);
void qcow2_cache_read_stats(struct qcow2_cache *c,
			    struct qcow2_cache_stats *sum);
u64 qcow2_cache_used(struct qcow2_cache *c);

/* io.c */
int qcow2_map(struct qcow2_image *img, u64 guest_offset,
	      struct qcow2_mapping *map);
void qcow2_handle_cmd(struct work_struct *work);
void qcow2_complete_rq(struct request *rq);

/* compress.c */
void qcow2_decomp_init(struct qcow2_decomp *d);
void qcow2_decomp_destroy(struct qcow2_decomp *d);
int qcow2_read_compressed(struct qcow2_image *img,
			  const struct qcow2_mapping *map, u64 in_cluster,
			  struct iov_iter *to, size_t len);

/* sysfs.c */
extern const struct attribute_group *qcow2_disk_groups[];

#endif /* _QCOW2_H */
