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

struct qcow2_image;

/**
 * struct qcow2_slice - one cached slice of an L2 table or refcount block
 * @rcu: frees the slice after lockless readers are done
 * @ref: one for the cache, one per user
 * @flags: QCOW2_SLICE_* bits (cache.c)
 * @err: result of a failed load, for its waiters
 * @offset: host offset of the slice
 * @data: the slice, as on disk; changed only under the image's meta_lock,
 *	L2 entries with WRITE_ONCE() for the lockless readers
 */
struct qcow2_slice {
	struct rcu_head rcu;
	refcount_t ref;
	unsigned long flags;
	int err;
	u64 offset;
	__be64 data[];
};

/**
 * struct qcow2_cache - bounded cache of L2 table or refcount block slices
 * @slices: slice host offset >> 9 -> struct qcow2_slice; lookups are
 *	lockless under RCU, insertion and removal take the xarray's lock
 * @evict_lock: serialises eviction and protects @hand
 * @hand: xarray index where the CLOCK sweep resumes
 * @nr_slices: slices in @slices
 * @nr_dirty: slices changed and not yet written
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
	atomic_t nr_dirty;
	unsigned int max_slices;
	unsigned int slice_size;
	struct file *file;
	struct qcow2_cache_stats __percpu *stats;
	struct shrinker *shrinker;
};

/**
 * struct qcow2_snapshot - one internal snapshot
 * @info: decoded table entry
 * @id: NUL-terminated copy of the ID string
 * @name: NUL-terminated copy of the name
 * @extra: extra data this driver does not know, kept when the table is
 *	rewritten, or NULL
 * @extra_len: bytes at @extra
 * @views: snapshot views showing it (delete and revert are refused)
 */
struct qcow2_snapshot {
	struct qcow2_snapshot_info info;
	char *id;
	char *name;
	u8 *extra;
	u32 extra_len;
	unsigned int views;
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

/* A range of host clusters whose reference is dropped later. */
struct qcow2_free {
	u64 offset;
	u64 bytes;
};

/* A list of qcow2_free, grown as needed. */
struct qcow2_free_list {
	struct qcow2_free *v;
	size_t nr;
	size_t cap;
};

/* Kinds of metadata clusters, for the overlap checks (meta.c). */
enum qcow2_meta_type {
	QCOW2_META_HEADER = 1,
	QCOW2_META_L1,
	QCOW2_META_REFTABLE,
	QCOW2_META_REFBLOCK,
	QCOW2_META_L2,
	QCOW2_META_SNAPSHOTS,
	QCOW2_META_SNAPSHOT_L1,
	QCOW2_META_BITMAPS,
};

/* Bits of qcow2_image.flags */
enum {
	QCOW2_IMG_CORRUPT,	/* marked corrupt: every write fails */
	QCOW2_IMG_BROKEN,	/* a metadata write failed: writes fail */
	QCOW2_IMG_NO_NOWAIT_WRITE, /* the file refused an IOCB_NOWAIT write */
};

/**
 * enum qcow2_inline - how ->queue_rq may do a request's file I/O itself
 * @QCOW2_INLINE_NEVER: never; every request goes to the workqueue
 * @QCOW2_INLINE_ASYNC: the file is O_DIRECT: the I/O is queued, not waited
 *	for
 * @QCOW2_INLINE_NOWAIT: buffered, and the file honours IOCB_NOWAIT: a
 *	request that would wait for the device goes to the workqueue
 * @QCOW2_INLINE_MEMORY: buffered on tmpfs, where I/O is a page copy
 */
enum qcow2_inline {
	QCOW2_INLINE_NEVER,
	QCOW2_INLINE_ASYNC,
	QCOW2_INLINE_NOWAIT,
	QCOW2_INLINE_MEMORY,
};

/**
 * struct qcow2_image - an open, validated image
 * @node: in the list of open images (main.c)
 * @file: the image file (our own reference)
 * @lay: the validated header
 * @read_only: no write ever reaches the file
 * @flags: QCOW2_IMG_* bits
 * @l1: the active L1 table, big endian, as on disk; entries change under
 *	@meta_lock with WRITE_ONCE() (lockless readers use READ_ONCE())
 * @l1_dirty: bitmap of @l1 entries not yet written
 * @reftable: the refcount table, big endian; under @meta_lock
 * @reftable_entries: entries in @reftable
 * @snapshots: @lay.nb_snapshots entries
 * @snapshots_size: bytes of the snapshot table
 * @cache: L2 slice cache
 * @rc_cache: refcount block slice cache; used under @meta_lock only
 * @meta_lock: serialises every change of metadata: allocation, refcounts,
 *	L1/L2 entries, the header, and their writeback
 * @free_cluster_index: where the search for a free cluster starts
 * @prealloc_end: the file has room (fallocate) up to here
 * @prealloc: reserve file space ahead of allocations (not on tmpfs)
 * @inflight: guest cluster index -> struct qcow2_inflight while a write
 *	allocates it; under @meta_lock
 * @meta_map: host cluster index -> xa_mk_value(enum qcow2_meta_type) for
 *	every metadata cluster the overlap check knows; changed under
 *	@meta_lock, read locklessly
 * @meta_scanning: kind of table being recorded (for the conflict message)
 * @meta_conflict: kind of metadata a qcow2_meta_add() collided with
 * @frees_new: references dropped since the last flush (their L2 change is
 *	not on disk yet); under @meta_lock
 * @frees_old: references whose L2 change is on disk, waiting for the
 *	requests of the previous epoch to finish; under @meta_lock
 * @io_epoch: epoch new requests count themselves in
 * @io_count: requests in flight per epoch (see qcow2_io_start())
 * @users: devices using the image; changed under qcow2_ctl_mutex
 * @one_epoch: write refcounts, L2 and L1 back with a single fsync (snapshot
 *	operations moving references and COPIED together); under @meta_lock
 * @inline_mode: which requests ->queue_rq may serve itself
 * @decomp: decompression state
 * @corrupt_logged: a corruption message was printed (print it once)
 * @name: short name for messages, "qcowN"
 */
struct qcow2_image {
	struct list_head node;
	struct file *file;
	struct qcow2_layout lay;
	bool read_only;
	unsigned long flags;
	__be64 *l1;
	unsigned long *l1_dirty;
	__be64 *reftable;
	u64 reftable_entries;
	struct qcow2_snapshot *snapshots;
	u64 snapshots_size;
	struct qcow2_cache cache;
	struct qcow2_cache rc_cache;
	struct mutex meta_lock;		/* see above */
	u64 free_cluster_index;
	u64 prealloc_end;
	bool prealloc;
	struct xarray inflight;
	struct xarray meta_map;
	unsigned int meta_scanning;
	unsigned int meta_conflict;
	struct qcow2_free_list frees_new;
	struct qcow2_free_list frees_old;
	unsigned int io_epoch;
	atomic_t io_count[2];
	unsigned int users;
	bool one_epoch;
	enum qcow2_inline inline_mode;
	struct qcow2_decomp decomp;
	bool corrupt_logged;
	char name[DISK_NAME_LEN];
};

/* A guest cluster being allocated; other writers to it wait on @wq. */
struct qcow2_inflight {
	wait_queue_head_t wq;
	bool done;
	refcount_t ref;
};

/**
 * struct qcow2_view - what a snapshot view device shows
 * @l1: the snapshot's L1 table, big endian, read at attach
 * @l1_size: its entries
 * @size: the snapshot's disk size
 * @id: the snapshot's ID, to find it again at detach
 */
struct qcow2_view {
	__be64 *l1;
	u32 l1_size;
	u64 size;
	char *id;
};

enum qcow2_dev_state {
	QCOW2_BOUND,		/* serving I/O */
	QCOW2_RUNDOWN,		/* removal requested; waits for last close */
	QCOW2_DELETING,		/* being torn down; no new opens */
};

/**
 * struct qcow2_issuer - a worker issuing one submitter's fast-path requests
 * @list: requests waiting for @work, newest first
 * @work: issues them (qcow2_issue_work())
 * @backlog: requests queued to @work and not yet issued
 * @score: above zero while handing off pays (qcow2_issuer_take())
 * @idle: requests since handing off stopped
 * @hctx: hardware queue of the latest submission
 * @shared_until: until when (jiffies) several CPUs are taken to submit
 * @handed_off: requests @work issued; written by @work only
 * @awake: @work is running and looks at @list again before it returns;
 *	written by @work only
 *
 * @score, @idle, @hctx and @shared_until steer a heuristic: they are read
 * and written without a lock, and a lost update only moves a decision.
 */
struct qcow2_issuer {
	struct llist_head list;
	struct work_struct work;
	atomic_t backlog;
	int score;
	unsigned int idle;
	unsigned int hctx;
	unsigned long shared_until;
	unsigned long handed_off;
	bool awake;
};

/**
 * struct qcow2_dev - one /dev/qcowN
 * @index: N
 * @state: see enum qcow2_dev_state; written under disk->open_mutex and
 *	qcow2_ctl_mutex, read under either
 * @read_only: the device is read-only
 * @disk: the gendisk
 * @tag_set: blk-mq tag set
 * @img: the image, shared by every device of the same image file
 * @view: the snapshot shown by a view device, else NULL
 * @writer: this device writes the image (the image's only writer)
 * @wq: workqueue running requests (reclaim-safe)
 * @write_list: requests for @write_work, newest first
 * @write_work: runs every request but reads, in order (qcow2_write_work())
 * @issuer: hands fast-path requests to another CPU (fast.c)
 * @remove_work: deferred removal after the last close
 */
struct qcow2_dev {
	int index;
	enum qcow2_dev_state state;
	bool read_only;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct qcow2_image *img;
	struct qcow2_view *view;
	bool writer;
	struct workqueue_struct *wq;
	struct llist_head write_list;
	struct work_struct write_work;
	struct qcow2_issuer issuer;
	struct work_struct remove_work;
};

/**
 * struct qcow2_cmd - per-request state (blk-mq PDU)
 * @work: runs a read on the device workqueue
 * @node: entry of the device's write_list or of its issuer's list
 * @ref: one for the submitter, one per file I/O in flight
 * @epoch: io_count slot the request is counted in, or -1
 * @status: first error of the request
 * @bvec: bvec array when the request spans several bios, else NULL
 * @aio: the first file I/O of the request, embedded to avoid an allocation
 * @data_pos: host offset of a fast-path request (fast.c)
 * @data_zero: the fast-path request reads zeroes, not @data_pos
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
	struct llist_node node;
	atomic_t ref;
	int epoch;
	blk_status_t status;
	struct bio_vec *bvec;
	struct qcow2_aio aio;
	u64 data_pos;
	bool data_zero;
};

struct qcow2_info;
struct qcow2_image;

/*
 * Argument structures say their own size, so a command is recognised
 * without the size bits of its number: a program built against a newer,
 * longer structure still reaches the same command (see the uapi header).
 */
#define QCOW2_IOC_BASE(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

/* main.c */
extern unsigned long qcow2_default_cache_size;
extern bool qcow2_inline_io;
extern struct mutex qcow2_ctl_mutex;
extern struct idr qcow2_index_idr;
int qcow2_dev_add(struct file *file, unsigned int flags, u64 cache_size,
		  u32 want_index, const char *snapshot,
		  unsigned int snapshot_flags);
int qcow2_dev_remove(u32 index, bool *deferred);
void qcow2_dev_fill_info(struct qcow2_dev *dev, struct qcow2_info *info);

/* ctl.c */
int qcow2_ctl_init(void);
void qcow2_ctl_exit(void);

/* image.c */
int qcow2_image_open(struct file *file, bool read_only, u64 cache_size,
		     struct qcow2_image **imgp);
void qcow2_image_shutdown(struct qcow2_image *img);
void qcow2_image_close(struct qcow2_image *img);
int qcow2_corruption(struct qcow2_image *img, const char *what, u64 offset);
ssize_t qcow2_file_read(struct file *file, void *buf, size_t len, u64 pos);
int qcow2_read_exact(struct file *file, void *buf, size_t len, u64 pos);

/* cache.c */
int qcow2_cache_init(struct qcow2_cache *c, struct file *file,
		     unsigned int slice_size, u64 bytes, const char *name);
void qcow2_cache_destroy(struct qcow2_cache *c);
int qcow2_cache_peek_entry(struct qcow2_cache *c, u64 slice_offset,
			   unsigned int index, u64 *entry);
int qcow2_cache_get_entry(struct qcow2_cache *c, u64 slice_offset,
			  unsigned int index, u64 *entry);
int qcow2_cache_get(struct qcow2_cache *c, u64 slice_offset,
		    struct qcow2_slice **slicep);
void qcow2_slice_put(struct qcow2_slice *s);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, struct qcow2_slice *s);
int qcow2_cache_writeback(struct qcow2_cache *c,
			  int (*write)(struct qcow2_image *img,
				       struct qcow2_slice *s),
			  struct qcow2_image *img);
void qcow2_cache_forget(struct qcow2_cache *c, u64 offset, u64 len);
unsigned int qcow2_cache_dirty(struct qcow2_cache *c);
void qcow2_cache_read_stats(struct qcow2_cache *c,
			    struct qcow2_cache_stats *sum);
u64 qcow2_cache_used(struct qcow2_cache *c);

/* meta.c */
#define QCOW2_ZERO_VECS		16
u64 qcow2_zero_iter(struct bio_vec *bv, u64 len, struct iov_iter *iter);
int qcow2_switch_table(struct qcow2_image *img, enum qcow2_meta_type type,
		       const void *table, size_t len, u64 offset, size_t field,
		       const void *hdr, size_t hdr_len);
int qcow2_file_write(struct file *file, const void *buf, size_t len, u64 pos);
int qcow2_file_write_iter(struct file *file, struct iov_iter *from, u64 pos);
int qcow2_write_zeroes_at(struct qcow2_image *img, u64 pos, u64 len);
int qcow2_meta_init(struct qcow2_image *img);
void qcow2_meta_destroy(struct qcow2_image *img);
int qcow2_meta_add(struct qcow2_image *img, u64 offset, u64 len,
		   enum qcow2_meta_type type);
int qcow2_meta_claim(struct qcow2_image *img, u64 offset, u64 len,
		     enum qcow2_meta_type type);
void qcow2_meta_del(struct qcow2_image *img, u64 offset, u64 len);
int qcow2_check_data_write(struct qcow2_image *img, u64 offset, u64 len);
int qcow2_write_meta(struct qcow2_image *img, enum qcow2_meta_type type,
		     const void *buf, size_t len, u64 pos);
int qcow2_mark_corrupt(struct qcow2_image *img, const char *what, u64 offset);
int qcow2_write_header_field(struct qcow2_image *img, size_t field,
			     const void *val, size_t len);
int qcow2_sync(struct qcow2_image *img);
int qcow2_meta_flush_locked(struct qcow2_image *img);
int qcow2_flush(struct qcow2_image *img);
int qcow2_meta_maybe_flush(struct qcow2_image *img);
int qcow2_writable_check(struct qcow2_image *img);

/* refcount.c */
int qcow2_load_reftable(struct qcow2_image *img);
int qcow2_get_refcount(struct qcow2_image *img, u64 cluster, u64 *rc);
int qcow2_update_refcount(struct qcow2_image *img, u64 offset, u64 bytes,
			  s64 delta);
int qcow2_alloc_clusters(struct qcow2_image *img, u64 n, u64 *offset);
int qcow2_defer_free(struct qcow2_image *img, u64 offset, u64 bytes);
int qcow2_apply_frees(struct qcow2_image *img);
void qcow2_free_list_destroy(struct qcow2_free_list *fl);

/* write.c */
void qcow2_write_rq(struct qcow2_dev *dev, struct request *rq,
		    struct qcow2_cmd *cmd);
void qcow2_discard_rq(struct qcow2_dev *dev, struct request *rq,
		      struct qcow2_cmd *cmd);

/* io.c */
int qcow2_map(struct qcow2_image *img, const struct qcow2_view *view,
	      u64 guest_offset, struct qcow2_mapping *map, bool nowait);
int qcow2_extent(struct qcow2_image *img, const struct qcow2_view *view,
		 u64 pos, u64 max, struct qcow2_mapping *map, u64 *len,
		 bool nowait);
void qcow2_io_start(struct qcow2_image *img, struct qcow2_cmd *cmd);
void qcow2_queue_work(struct qcow2_dev *dev, struct qcow2_cmd *cmd);
void qcow2_handle_cmd(struct work_struct *work);
void qcow2_write_work(struct work_struct *work);

/* fast.c */
bool qcow2_queue_fast(struct qcow2_dev *dev, struct blk_mq_hw_ctx *hctx,
		      struct request *rq, struct qcow2_cmd *cmd);
void qcow2_issue_work(struct work_struct *work);
void qcow2_complete_rq(struct request *rq);
void qcow2_cmd_set_error(struct qcow2_cmd *cmd, int err);
void qcow2_cmd_put(struct qcow2_cmd *cmd);
int qcow2_init_iter(struct request *rq, struct qcow2_cmd *cmd,
		    struct iov_iter *iter, unsigned int dir);
void qcow2_data_io(struct qcow2_image *img, struct qcow2_cmd *cmd,
		   const struct iov_iter *iter, u64 pos, size_t len,
		   bool *embedded_used);

/* compress.c */
void qcow2_decomp_init(struct qcow2_decomp *d);
void qcow2_decomp_destroy(struct qcow2_decomp *d);
int qcow2_read_compressed(struct qcow2_image *img,
			  const struct qcow2_mapping *map, u64 in_cluster,
			  struct iov_iter *to, size_t len);

/* snapshot.c */
struct qcow2_snapshot_list;
int qcow2_snapshot_find(struct qcow2_image *img, const char *key,
			unsigned int flags);
int qcow2_snapshot_list(struct qcow2_image *img,
			struct qcow2_snapshot_list *arg, void __user *out);
int qcow2_snapshot_create(struct qcow2_image *img, const char *name, char *id);
int qcow2_snapshot_delete(struct qcow2_image *img, const char *key,
			  unsigned int flags);
int qcow2_snapshot_revert(struct qcow2_image *img, const char *key,
			  unsigned int flags, u64 *new_size);
int qcow2_view_open(struct qcow2_image *img, const char *key,
		    unsigned int flags, struct qcow2_view **viewp);
void qcow2_view_close(struct qcow2_image *img, struct qcow2_view *view);

/* sysfs.c */
extern const struct attribute_group *qcow2_disk_groups[];

#endif /* _QCOW2_H */
