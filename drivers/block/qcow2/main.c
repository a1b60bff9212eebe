// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 block device driver: module init/exit, blk-mq setup and the
 * gendisk lifecycle of /dev/qcowN.
 *
 * Removal follows loop's lesson: a device that is open when its removal
 * is asked for refuses new opens and goes away on its last close.
 */
#include <linux/file.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched/mm.h>
#include <uapi/linux/qcow2.h>

#include "qcow2.h"

unsigned long qcow2_default_cache_size = 4UL << 20;
module_param_named(l2_cache_size, qcow2_default_cache_size, ulong, 0644);
MODULE_PARM_DESC(l2_cache_size,
		 "Default bytes of L2 table cache per device (default 4 MiB)");

bool qcow2_inline_io = true;
module_param_named(inline_io, qcow2_inline_io, bool, 0644);
MODULE_PARM_DESC(inline_io,
		 "Serve cached-mapping reads and writes without the workqueue (default on; read at attach)");

static unsigned int qcow2_queue_depth = 128;
module_param_named(queue_depth, qcow2_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Requests in flight per hardware queue (default 128)");

static int qcow2_major;

/* Runs removals deferred to the last close; flushed at module exit. */
static struct workqueue_struct *qcow2_remove_wq;

/*
 * qcow2_ctl_mutex serialises adding and removing devices and protects
 * qcow2_index_idr.  Lock order: qcow2_ctl_mutex, then disk->open_mutex.
 */
DEFINE_MUTEX(qcow2_ctl_mutex);
DEFINE_IDR(qcow2_index_idr);

/*
 * Open images, one per image file: every device of a file (its writer,
 * read-only devices, snapshot views) shares it, so the image's metadata
 * has one owner.  Protected by qcow2_ctl_mutex.
 */
static LIST_HEAD(qcow2_images);

static blk_status_t qcow2_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct qcow2_dev *dev = rq->q->queuedata;
	struct qcow2_cmd *cmd = blk_mq_rq_to_pdu(rq);

	blk_mq_start_request(rq);

	switch (req_op(rq)) {
	case REQ_OP_READ:
		break;
	case REQ_OP_FLUSH:
		if (dev->read_only) {
			/* Nothing is ever dirty on a read-only device. */
			blk_mq_end_request(rq, BLK_STS_OK);
			return BLK_STS_OK;
		}
		break;
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		if (dev->read_only)
			return BLK_STS_IOERR;
		break;
	default:
		return BLK_STS_NOTSUPP;
	}

	cmd->status = BLK_STS_OK;
	cmd->bvec = NULL;
	cmd->epoch = -1;
	if ((req_op(rq) == REQ_OP_READ || req_op(rq) == REQ_OP_WRITE) &&
	    qcow2_queue_fast(dev, hctx, rq, cmd))
		return BLK_STS_OK;
	qcow2_queue_work(dev, cmd);
	return BLK_STS_OK;
}

static int qcow2_init_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx, unsigned int numa_node)
{
	struct qcow2_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_WORK(&cmd->work, qcow2_handle_cmd);
	cmd->epoch = -1;
	cmd->aio.cmd = cmd;
	cmd->aio.embedded = true;
	return 0;
}

static const struct blk_mq_ops qcow2_mq_ops = {
	.queue_rq	= qcow2_queue_rq,
	.complete	= qcow2_complete_rq,
	.init_request	= qcow2_init_request,
};

static int qcow2_open(QCOW2_BDOPS_OPEN_ARGS)
{
	struct qcow2_dev *dev = QCOW2_BDOPS_OPEN_DISK->private_data;

	/* Called with disk->open_mutex held, which orders us with removal. */
	if (READ_ONCE(dev->state) != QCOW2_BOUND)
		return -ENXIO;
	return 0;
}

static void qcow2_release(QCOW2_BDOPS_RELEASE_ARGS)
{
	struct qcow2_dev *dev = disk->private_data;

	/* disk->open_mutex is held; openers were already decremented. */
	if (disk_openers(disk) > 0 || dev->state != QCOW2_RUNDOWN)
		return;
	/*
	 * del_gendisk() takes open_mutex, so the removal cannot run here:
	 * hand it to a work item.
	 */
	WRITE_ONCE(dev->state, QCOW2_DELETING);
	queue_work(qcow2_remove_wq, &dev->remove_work);
}

/* Copy a NUL-terminated snapshot name or ID out of a fixed array. */
static int qcow2_snapshot_key(const char *key, size_t size)
{
	size_t len = strnlen(key, size);

	if (len == size)
		return -ENAMETOOLONG;
	return len ? 0 : -EINVAL;
}

static int qcow2_ioctl_snapshot_list(struct qcow2_dev *dev, void __user *uarg)
{
	struct qcow2_snapshot_list arg;
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	ret = copy_struct_from_user(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	if (arg.reserved0 || arg.reserved[0] || arg.reserved[1] ||
	    (arg.count && !arg.entry_size))
		return -EINVAL;
	ret = qcow2_snapshot_list(dev->img, &arg,
				  u64_to_user_ptr(arg.entries));
	if (!ret && put_user(arg.count, &((struct qcow2_snapshot_list __user *)
					  uarg)->count))
		ret = -EFAULT;
	return ret;
}

static int qcow2_ioctl_snapshot_create(struct qcow2_dev *dev,
				       struct block_device *bdev,
				       void __user *uarg)
{
	struct qcow2_snapshot_create arg;
	bool frozen = false;
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	ret = copy_struct_from_user(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	if (arg.flags & ~QCOW2_SNAP_CREATE_FLAGS_ALL ||
	    memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	ret = qcow2_snapshot_key(arg.name, sizeof(arg.name));
	if (ret)
		return ret;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (dev->read_only)
		return -EROFS;

	if (arg.flags & QCOW2_SNAP_CREATE_FREEZE) {
		ret = qcow2_bdev_freeze(bdev);
		if (ret)
			return ret;
		frozen = true;
	}
	blk_mq_freeze_queue(dev->disk->queue);
	ret = qcow2_snapshot_create(dev->img, arg.name, arg.id);
	blk_mq_unfreeze_queue(dev->disk->queue);
	if (frozen)
		qcow2_bdev_thaw(bdev);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &arg, min_t(size_t, usize, sizeof(arg))))
		return -EFAULT;
	return 0;
}

static int qcow2_ioctl_snapshot_ref(struct qcow2_dev *dev, unsigned int cmd,
				    void __user *uarg)
{
	struct qcow2_snapshot_ref arg;
	struct gendisk *disk = dev->disk;
	u64 size;
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	ret = copy_struct_from_user(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;
	if (arg.flags & ~(QCOW2_SNAP_BY_ID | QCOW2_SNAP_BY_NAME) ||
	    memchr_inv(arg.reserved, 0, sizeof(arg.reserved)))
		return -EINVAL;
	ret = qcow2_snapshot_key(arg.key, sizeof(arg.key));
	if (ret)
		return ret;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (dev->read_only)
		return -EROFS;

	if (QCOW2_IOC_BASE(cmd) == QCOW2_IOC_BASE(QCOW2_SNAPSHOT_DELETE)) {
		blk_mq_freeze_queue(disk->queue);
		ret = qcow2_snapshot_delete(dev->img, arg.key, arg.flags);
		blk_mq_unfreeze_queue(disk->queue);
		return ret;
	}

	/*
	 * Revert changes the whole disk under its users: only the caller may
	 * have it open, no other device may share the image (a read-only
	 * device of the active state reads its L1), and the two mutexes keep
	 * new openers and new devices out meanwhile.
	 */
	mutex_lock(&qcow2_ctl_mutex);
	mutex_lock(&disk->open_mutex);
	if (disk_openers(disk) > 1 || dev->img->users > 1) {
		mutex_unlock(&disk->open_mutex);
		mutex_unlock(&qcow2_ctl_mutex);
		pr_info("%s: revert refused: %s\n", disk->disk_name,
			disk_openers(disk) > 1 ? "the device is in use" :
			"the image is attached as another device too");
		return -EBUSY;
	}
	blk_mq_freeze_queue(disk->queue);
	ret = qcow2_snapshot_revert(dev->img, arg.key, arg.flags, &size);
	blk_mq_unfreeze_queue(disk->queue);
	mutex_unlock(&disk->open_mutex);
	mutex_unlock(&qcow2_ctl_mutex);
	if (size >> SECTOR_SHIFT != get_capacity(disk))
		set_capacity_and_notify(disk, size >> SECTOR_SHIFT);
	/* The caller's page cache holds the old contents. */
	invalidate_bdev(disk->part0);
	return ret;
}

static int qcow2_ioctl(QCOW2_BDOPS_IOCTL_ARGS)
{
	struct qcow2_dev *dev = bdev->bd_disk->private_data;
	struct qcow2_info __user *uinfo = (void __user *)arg;
	void __user *uarg = (void __user *)arg;
	struct qcow2_info info;
	u32 usize;
	int ret;

	switch (QCOW2_IOC_BASE(cmd)) {
	case QCOW2_IOC_BASE(QCOW2_GET_INFO):
		if (get_user(usize, &uinfo->size))
			return -EFAULT;
		ret = copy_struct_from_user(&info, sizeof(info), uinfo, usize);
		if (ret)
			return ret;
		qcow2_dev_fill_info(dev, &info);
		if (copy_to_user(uinfo, &info, min_t(size_t, usize, sizeof(info))))
			return -EFAULT;
		return 0;
	case QCOW2_IOC_BASE(QCOW2_SNAPSHOT_LIST):
		return qcow2_ioctl_snapshot_list(dev, uarg);
	case QCOW2_IOC_BASE(QCOW2_SNAPSHOT_CREATE):
		return qcow2_ioctl_snapshot_create(dev, bdev, uarg);
	case QCOW2_IOC_BASE(QCOW2_SNAPSHOT_DELETE):
	case QCOW2_IOC_BASE(QCOW2_SNAPSHOT_REVERT):
		return qcow2_ioctl_snapshot_ref(dev, cmd, uarg);
	default:
		return -ENOTTY;
	}
}

static void qcow2_free_disk(struct gendisk *disk)
{
	struct qcow2_dev *dev = disk->private_data;

	kfree(dev);
}

static const struct block_device_operations qcow2_fops = {
	.owner		= THIS_MODULE,
	.open		= qcow2_open,
	.release	= qcow2_release,
	.ioctl		= qcow2_ioctl,
	.compat_ioctl	= blkdev_compat_ptr_ioctl,
	.free_disk	= qcow2_free_disk,
};

/* Drop a device's use of its image; the last user closes it. */
static void qcow2_dev_put_image(struct qcow2_dev *dev)
{
	struct qcow2_image *img = dev->img;
	bool last;

	qcow2_view_close(img, dev->view);
	dev->view = NULL;
	if (dev->writer)
		qcow2_image_shutdown(img);
	mutex_lock(&qcow2_ctl_mutex);
	last = !--img->users;
	if (last)
		list_del(&img->node);
	mutex_unlock(&qcow2_ctl_mutex);
	if (last)
		qcow2_image_close(img);
	dev->img = NULL;
}

/* Tear down a device nobody can open any more; it is out of the idr. */
static void qcow2_dev_destroy(struct qcow2_dev *dev)
{
	del_gendisk(dev->disk);
	destroy_workqueue(dev->wq);
	blk_mq_free_tag_set(&dev->tag_set);
	qcow2_dev_put_image(dev);
	put_disk(dev->disk);	/* frees dev through ->free_disk */
}

static void qcow2_remove_work(struct work_struct *work)
{
	struct qcow2_dev *dev = container_of(work, struct qcow2_dev,
					     remove_work);

	mutex_lock(&qcow2_ctl_mutex);
	idr_remove(&qcow2_index_idr, dev->index);
	mutex_unlock(&qcow2_ctl_mutex);
	qcow2_dev_destroy(dev);
}

/* The image of a file attached already, found by inode. */
static struct qcow2_image *qcow2_find_image(struct file *file)
{
	struct qcow2_image *img;

	lockdep_assert_held(&qcow2_ctl_mutex);
	list_for_each_entry(img, &qcow2_images, node)
		if (file_inode(img->file) == file_inode(file))
			return img;
	return NULL;
}

/*
 * Find the open image of @file or open it; the device gets one use of it.
 * A writer must be the image's only user.
 */
static int qcow2_get_image(struct file *file, bool read_only, u64 cache_size,
			   struct qcow2_image **imgp, bool *shared)
{
	struct qcow2_image *img;
	int ret;

	lockdep_assert_held(&qcow2_ctl_mutex);
	img = qcow2_find_image(file);
	if (img) {
		if (!read_only) {
			pr_err("attach %pD: the image is attached already; attach it read-only, or detach the other device\n",
			       file);
			return -EBUSY;
		}
		img->users++;
		*shared = true;
		*imgp = img;
		return 0;
	}
	ret = qcow2_image_open(file, read_only, cache_size, &img);
	if (ret)
		return ret;
	img->users = 1;
	list_add(&img->node, &qcow2_images);
	*shared = false;
	*imgp = img;
	return 0;
}

/**
 * qcow2_dev_add() - create /dev/qcowN for an image file
 * @file: the image; the caller's reference is kept by the device (or
 *	dropped, when the image is attached already) on success and left to
 *	the caller on failure
 * @flags: QCOW2_ADD_* flags, already validated
 * @cache_size: L2 cache bytes, 0 for the default
 * @want_index: N wanted, or QCOW2_INDEX_ANY
 * @snapshot: with QCOW2_ADD_SNAPSHOT, the ID or name of the snapshot shown
 * @snapshot_flags: QCOW2_SNAP_BY_* lookup flags
 *
 * Every device of one image file shares one open image.  It has at most
 * one writer, which must be its only device when it attaches; read-only
 * devices and snapshot views may join it later.
 *
 * Context: process context; takes qcow2_ctl_mutex.
 * Return: the new index, or a negative errno.
 */
int qcow2_dev_add(struct file *file, unsigned int flags, u64 cache_size,
		  u32 want_index, const char *snapshot,
		  unsigned int snapshot_flags)
{
	bool read_only = flags & (QCOW2_ADD_READ_ONLY | QCOW2_ADD_SNAPSHOT);
	struct qcow2_limits lim = {};
	struct qcow2_image *img;
	struct qcow2_dev *dev;
	struct gendisk *disk;
	bool shared;
	int index, ret;

	if (!cache_size)
		cache_size = READ_ONCE(qcow2_default_cache_size);

	mutex_lock(&qcow2_ctl_mutex);
	ret = qcow2_get_image(file, read_only, cache_size, &img, &shared);
	if (ret)
		goto out_unlock_early;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		ret = -ENOMEM;
		goto out_put_image;
	}
	dev->img = img;
	dev->read_only = read_only;
	dev->writer = !read_only;
	dev->state = QCOW2_BOUND;
	INIT_WORK(&dev->remove_work, qcow2_remove_work);
	INIT_WORK(&dev->write_work, qcow2_write_work);
	init_llist_head(&dev->write_list);
	INIT_WORK(&dev->issuer.work, qcow2_issue_work);
	init_llist_head(&dev->issuer.list);
	if (flags & QCOW2_ADD_SNAPSHOT) {
		ret = qcow2_view_open(img, snapshot, snapshot_flags, &dev->view);
		if (ret) {
			pr_err("attach %pD: snapshot %s: %s\n", file, snapshot,
			       ret == -ENOENT ? "not found" : "cannot be read");
			goto out_free_dev;
		}
	}

	if (want_index == QCOW2_INDEX_ANY)
		index = idr_alloc(&qcow2_index_idr, dev, 0,
				  (MINORMASK + 1) >> QCOW2_PART_BITS,
				  GFP_KERNEL);
	else if (want_index < (MINORMASK + 1) >> QCOW2_PART_BITS)
		index = idr_alloc(&qcow2_index_idr, dev, want_index,
				  want_index + 1, GFP_KERNEL);
	else
		index = -EINVAL;
	if (index == -ENOSPC)
		index = want_index == QCOW2_INDEX_ANY ? -ENOSPC : -EEXIST;
	if (index < 0) {
		ret = index;
		goto out_close_view;
	}
	dev->index = index;
	if (!shared)
		snprintf(img->name, sizeof(img->name), "qcow%d", index);

	dev->wq = alloc_workqueue("qcow2-%d",
				  WQ_UNBOUND | WQ_MEM_RECLAIM | WQ_HIGHPRI, 0,
				  index);
	if (!dev->wq) {
		ret = -ENOMEM;
		goto out_remove_idr;
	}

	dev->tag_set.ops = &qcow2_mq_ops;
	dev->tag_set.nr_hw_queues = num_online_cpus();
	dev->tag_set.queue_depth = qcow2_queue_depth;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.cmd_size = sizeof(struct qcow2_cmd);
	dev->tag_set.flags = QCOW2_TAG_SET_FLAGS | BLK_MQ_F_BLOCKING;
	dev->tag_set.driver_data = dev;
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret)
		goto out_destroy_wq;

	lim.logical_block_size = SECTOR_SIZE;
	lim.physical_block_size = SECTOR_SIZE;
	lim.io_min = SECTOR_SIZE;
	lim.io_opt = img->lay.cluster_size;
	lim.max_hw_sectors = SZ_1M >> SECTOR_SHIFT;
	if (!read_only) {
		lim.write_cache = true;
		lim.discard_granularity = img->lay.cluster_size;
		lim.max_discard_sectors = UINT_MAX >> SECTOR_SHIFT;
		lim.max_write_zeroes_sectors = UINT_MAX >> SECTOR_SHIFT;
	}
	disk = qcow2_alloc_disk(&dev->tag_set, &lim, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_free_tag_set;
	}
	dev->disk = disk;
	disk->major = qcow2_major;
	disk->first_minor = index << QCOW2_PART_BITS;
	disk->minors = 1 << QCOW2_PART_BITS;
	disk->fops = &qcow2_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "qcow%d", index);
	set_capacity(disk, (dev->view ? dev->view->size : img->lay.size) >>
		     SECTOR_SHIFT);
	set_disk_ro(disk, read_only);

	ret = device_add_disk(NULL, disk, qcow2_disk_groups);
	if (ret)
		goto out_put_disk;
	mutex_unlock(&qcow2_ctl_mutex);

	pr_info("%s: attached %pD (%llu bytes, %llu-byte clusters, v%u)%s%s%s\n",
		disk->disk_name, file, img->lay.size, img->lay.cluster_size,
		img->lay.version, read_only ? ", read-only" : "",
		dev->view ? ", snapshot " : "", dev->view ? dev->view->id : "");
	/* The device uses the image's own file reference. */
	if (shared)
		fput(file);
	return index;

out_put_disk:
	/* ->free_disk must not free dev on this path: detach it first. */
	disk->private_data = NULL;
	put_disk(disk);
out_free_tag_set:
	blk_mq_free_tag_set(&dev->tag_set);
out_destroy_wq:
	destroy_workqueue(dev->wq);
out_remove_idr:
	idr_remove(&qcow2_index_idr, dev->index);
out_close_view:
	qcow2_view_close(img, dev->view);
out_free_dev:
	kfree(dev);
out_put_image:
	if (!--img->users) {
		list_del(&img->node);
		/* The caller keeps its reference to @file on failure. */
		img->file = NULL;
		qcow2_image_close(img);
	}
out_unlock_early:
	mutex_unlock(&qcow2_ctl_mutex);
	return ret;
}

/**
 * qcow2_dev_remove() - remove a device, now or at its last close
 * @index: N of /dev/qcowN
 * @deferred: set when the device is open and removal waits for the last
 *	close
 *
 * Context: process context; takes qcow2_ctl_mutex and disk->open_mutex.
 * Return: 0, -ENXIO for no such device, -EBUSY when a removal is already
 * pending.
 */
int qcow2_dev_remove(u32 index, bool *deferred)
{
	struct qcow2_dev *dev;
	struct gendisk *disk;
	int ret = 0;

	*deferred = false;
	mutex_lock(&qcow2_ctl_mutex);
	dev = idr_find(&qcow2_index_idr, index);
	if (!dev) {
		ret = -ENXIO;
		goto out_unlock;
	}
	disk = dev->disk;

	mutex_lock(&disk->open_mutex);
	if (dev->state != QCOW2_BOUND) {
		ret = -EBUSY;
	} else if (disk_openers(disk) > 0) {
		WRITE_ONCE(dev->state, QCOW2_RUNDOWN);
		*deferred = true;
	} else {
		WRITE_ONCE(dev->state, QCOW2_DELETING);
	}
	mutex_unlock(&disk->open_mutex);
	if (ret)
		goto out_unlock;

	if (*deferred) {
		pr_info("%s: busy, will be removed at last close\n",
			dev->img->name);
		goto out_unlock;
	}
	idr_remove(&qcow2_index_idr, dev->index);
	mutex_unlock(&qcow2_ctl_mutex);
	qcow2_dev_destroy(dev);
	return 0;

out_unlock:
	mutex_unlock(&qcow2_ctl_mutex);
	return ret;
}

/**
 * qcow2_dev_fill_info() - describe a device for userspace
 * @dev: the device
 * @info: filled in; @info->size is kept
 *
 * Context: the caller keeps @dev alive (open device or qcow2_ctl_mutex).
 */
void qcow2_dev_fill_info(struct qcow2_dev *dev, struct qcow2_info *info)
{
	struct qcow2_image *img = dev->img;
	const struct qcow2_layout *lay = &img->lay;
	struct qcow2_cache_stats st;
	u32 usize = info->size;

	memset(info, 0, sizeof(*info));
	info->size = usize;
	info->index = dev->index;
	if (dev->read_only)
		info->flags |= QCOW2_INFO_READ_ONLY;
	if (lay->incompatible_features & QCOW2_INCOMPAT_DIRTY)
		info->flags |= QCOW2_INFO_DIRTY;
	if ((lay->incompatible_features & QCOW2_INCOMPAT_CORRUPT) ||
	    test_bit(QCOW2_IMG_CORRUPT, &img->flags))
		info->flags |= QCOW2_INFO_CORRUPT;
	if (READ_ONCE(dev->state) != QCOW2_BOUND)
		info->flags |= QCOW2_INFO_REMOVING;
	if (dev->view)
		info->flags |= QCOW2_INFO_SNAPSHOT_VIEW;
	info->version = lay->version;
	info->virtual_size = dev->view ? dev->view->size : lay->size;
	info->cluster_bits = lay->cluster_bits;
	info->refcount_order = lay->refcount_order;
	info->compression_type = lay->compression_type;
	info->nb_snapshots = lay->nb_snapshots;
	info->incompatible_features = lay->incompatible_features;
	info->compatible_features = lay->compatible_features;
	info->autoclear_features = lay->autoclear_features;
	info->l1_size = lay->l1_size;
	info->cache_size = (u64)img->cache.max_slices * img->cache.slice_size;
	info->cache_slice_size = img->cache.slice_size;
	info->cache_used = qcow2_cache_used(&img->cache);
	qcow2_cache_read_stats(&img->cache, &st);
	info->cache_hits = st.hits;
	info->cache_misses = st.misses;
	info->cache_evictions = st.evictions;
}

static int __init qcow2_init(void)
{
	int ret;

	qcow2_remove_wq = alloc_workqueue("qcow2-remove", 0, 0);
	if (!qcow2_remove_wq)
		return -ENOMEM;

	qcow2_major = register_blkdev(0, "qcow");
	if (qcow2_major < 0) {
		ret = qcow2_major;
		goto out_destroy_wq;
	}

	ret = qcow2_ctl_init();
	if (ret)
		goto out_unregister_blkdev;
	pr_info("module loaded (ABI %u)\n", QCOW2_ABI_VERSION);
	return 0;

out_unregister_blkdev:
	unregister_blkdev(qcow2_major, "qcow");
out_destroy_wq:
	destroy_workqueue(qcow2_remove_wq);
	return ret;
}

static void __exit qcow2_exit(void)
{
	struct qcow2_dev *dev;
	int id;

	/* No new devices: the control node goes first. */
	qcow2_ctl_exit();
	/* Deferred removals still queued run to completion. */
	flush_workqueue(qcow2_remove_wq);

	/*
	 * The module cannot be unloaded while a device is open (the
	 * block_device_operations owner holds it), so every device left is
	 * idle and can be torn down.
	 */
	mutex_lock(&qcow2_ctl_mutex);
	idr_for_each_entry(&qcow2_index_idr, dev, id) {
		idr_remove(&qcow2_index_idr, id);
		dev->state = QCOW2_DELETING;
		mutex_unlock(&qcow2_ctl_mutex);
		qcow2_dev_destroy(dev);
		mutex_lock(&qcow2_ctl_mutex);
	}
	mutex_unlock(&qcow2_ctl_mutex);
	idr_destroy(&qcow2_index_idr);
	unregister_blkdev(qcow2_major, "qcow");
	destroy_workqueue(qcow2_remove_wq);
}

module_init(qcow2_init);
module_exit(qcow2_exit);

MODULE_DESCRIPTION("qcow2 image files as block devices");
MODULE_LICENSE("GPL");
MODULE_ALIAS("devname:qcow-control");
