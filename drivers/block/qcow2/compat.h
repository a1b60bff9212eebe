/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only place that knows about kernel-version differences.  The module
 * builds against Debian's 6.1 LTS and 6.12 LTS kernels.
 */
#ifndef _QCOW2_COMPAT_H
#define _QCOW2_COMPAT_H

#include <linux/version.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>

#include <linux/shrinker.h>
#include <linux/slab.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

/*
 * Queue limits: since 6.9 they are passed to blk_mq_alloc_disk(), and
 * since 6.11 "non-rotational" is the absence of BLK_FEAT_ROTATIONAL.
 */
struct qcow2_limits {
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int io_min;
	unsigned int io_opt;
	unsigned int max_hw_sectors;
	bool write_cache;		/* volatile cache: flushes needed */
	unsigned int max_discard_sectors;
	unsigned int discard_granularity;
	unsigned int max_write_zeroes_sectors;
};

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
static inline struct gendisk *
qcow2_alloc_disk(struct blk_mq_tag_set *set, const struct qcow2_limits *ql,
		 void *queuedata)
{
	struct queue_limits lim = {
		.logical_block_size	= ql->logical_block_size,
		.physical_block_size	= ql->physical_block_size,
		.io_min			= ql->io_min,
		.io_opt			= ql->io_opt,
		.max_hw_sectors		= ql->max_hw_sectors,
		.features		= ql->write_cache ? BLK_FEAT_WRITE_CACHE : 0,
		.max_hw_discard_sectors	= ql->max_discard_sectors,
		.discard_granularity	= ql->discard_granularity,
		.max_write_zeroes_sectors = ql->max_write_zeroes_sectors,
	};

	return blk_mq_alloc_disk(set, &lim, queuedata);
}
#else
static inline struct gendisk *
qcow2_alloc_disk(struct blk_mq_tag_set *set, const struct qcow2_limits *ql,
		 void *queuedata)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, queuedata);
	struct request_queue *q;

	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, ql->logical_block_size);
	blk_queue_physical_block_size(q, ql->physical_block_size);
	blk_queue_io_min(q, ql->io_min);
	blk_queue_io_opt(q, ql->io_opt);
	blk_queue_max_hw_sectors(q, ql->max_hw_sectors);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	blk_queue_write_cache(q, ql->write_cache, false);
	blk_queue_max_discard_sectors(q, ql->max_discard_sectors);
	q->limits.discard_granularity = ql->discard_granularity;
	blk_queue_max_write_zeroes_sectors(q, ql->max_write_zeroes_sectors);
	return disk;
}
#endif

/* Since 6.5 ->open takes the gendisk and ->release no longer gets a mode. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define QCOW2_BDOPS_OPEN_ARGS		struct gendisk *disk, blk_mode_t mode
#define QCOW2_BDOPS_OPEN_DISK		disk
#define QCOW2_BDOPS_RELEASE_ARGS	struct gendisk *disk
#define QCOW2_BDOPS_IOCTL_ARGS		struct block_device *bdev, blk_mode_t mode, \
					unsigned int cmd, unsigned long arg
#else
#define QCOW2_BDOPS_OPEN_ARGS		struct block_device *bdev, fmode_t mode
#define QCOW2_BDOPS_OPEN_DISK		bdev->bd_disk
#define QCOW2_BDOPS_RELEASE_ARGS	struct gendisk *disk, fmode_t mode
#define QCOW2_BDOPS_IOCTL_ARGS		struct block_device *bdev, fmode_t mode, \
					unsigned int cmd, unsigned long arg
#endif

/* BLK_MQ_F_SHOULD_MERGE became the default (and went away) in 6.14. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 14, 0)
#define QCOW2_TAG_SET_FLAGS	0
#else
#define QCOW2_TAG_SET_FLAGS	BLK_MQ_F_SHOULD_MERGE
#endif

/*
 * Shrinkers: allocated by the core with a private pointer since 6.7;
 * before, embedded by the caller and registered with a name.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline struct shrinker *
qcow2_shrinker_create(unsigned long (*count)(struct shrinker *,
					     struct shrink_control *),
		      unsigned long (*scan)(struct shrinker *,
					    struct shrink_control *),
		      void *priv, const char *name)
{
	struct shrinker *s = shrinker_alloc(0, "%s", name);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->private_data = priv;
	shrinker_register(s);
	return s;
}

static inline void *qcow2_shrinker_private(struct shrinker *s)
{
	return s->private_data;
}

static inline void qcow2_shrinker_destroy(struct shrinker *s)
{
	shrinker_free(s);
}
#else
struct qcow2_shrinker_box {
	struct shrinker shrinker;
	void *priv;
};

static inline struct shrinker *
qcow2_shrinker_create(unsigned long (*count)(struct shrinker *,
					     struct shrink_control *),
		      unsigned long (*scan)(struct shrinker *,
					    struct shrink_control *),
		      void *priv, const char *name)
{
	struct qcow2_shrinker_box *box = kzalloc(sizeof(*box), GFP_KERNEL);

	if (!box)
		return NULL;
	box->shrinker.count_objects = count;
	box->shrinker.scan_objects = scan;
	box->shrinker.seeks = DEFAULT_SEEKS;
	box->priv = priv;
	if (register_shrinker(&box->shrinker, "%s", name)) {
		kfree(box);
		return NULL;
	}
	return &box->shrinker;
}

static inline void *qcow2_shrinker_private(struct shrinker *s)
{
	return container_of(s, struct qcow2_shrinker_box, shrinker)->priv;
}

static inline void qcow2_shrinker_destroy(struct shrinker *s)
{
	unregister_shrinker(s);
	kfree(container_of(s, struct qcow2_shrinker_box, shrinker));
}
#endif

/* Freezing the file system on a block device: renamed in 6.8. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define qcow2_bdev_freeze(bdev)	bdev_freeze(bdev)
#define qcow2_bdev_thaw(bdev)	bdev_thaw(bdev)
#else
#define qcow2_bdev_freeze(bdev)	freeze_bdev(bdev)
#define qcow2_bdev_thaw(bdev)	thaw_bdev(bdev)
#endif

#endif /* _QCOW2_COMPAT_H */
