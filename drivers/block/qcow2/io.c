// SPDX-License-Identifier: GPL-2.0
/*
 * Request processing: a request is cut into extents of guest clusters
 * that map the same way (runs of zero clusters, runs of normal clusters
 * contiguous in the image file, single compressed clusters).  Normal
 * extents are read with async file I/O straight into the request's
 * pages, as loop's lo_rw_aio() does; zero extents are zero-filled;
 * compressed clusters are decompressed.
 */
#include <linux/blk-mq.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "qcow2.h"

/**
 * qcow2_map() - find where a guest offset lives
 * @img: the image
 * @view: the snapshot a view device shows, or NULL for the active state
 * @guest_offset: byte offset on the device, < virtual size
 * @map: the decoded L2 entry of the cluster holding @guest_offset
 * @nowait: fail with -EAGAIN rather than read an L2 slice that is not
 *	cached
 *
 * Context: process context; may sleep (L2 cache miss) unless @nowait.
 * Return: 0, -EIO for corrupt metadata, -EAGAIN (@nowait), or an I/O
 * error.
 */
int qcow2_map(struct qcow2_image *img, const struct qcow2_view *view,
	      u64 guest_offset, struct qcow2_mapping *map, bool nowait)
{
	const struct qcow2_layout *lay = &img->lay;
	const __be64 *l1 = view ? view->l1 : img->l1;
	u32 l1_size = view ? view->l1_size : lay->l1_size;
	u64 l1_index = qcow2_l1_index(lay, guest_offset);
	u64 l2_index = qcow2_l2_index(lay, guest_offset);
	unsigned int per_slice = img->cache.slice_size / sizeof(u64);
	u64 l2_offset, l2e, file_size, slice;
	const char *why = NULL;
	int ret;

	memset(map, 0, sizeof(*map));
	map->type = QCOW2_CLUSTER_UNALLOCATED;
	if (l1_index >= l1_size)
		return 0;

	ret = qcow2_decode_l1_entry(lay, be64_to_cpu(READ_ONCE(l1[l1_index])),
				    &l2_offset, &why);
	if (ret)
		return qcow2_corruption(img, why, lay->l1_table_offset +
					l1_index * sizeof(u64));
	if (!l2_offset)
		return 0;
	file_size = i_size_read(file_inode(img->file));
	if (l2_offset >= file_size || file_size - l2_offset < lay->cluster_size)
		return qcow2_corruption(img, "L2 table is outside the image file",
					l2_offset);

	slice = l2_offset + (l2_index / per_slice) * img->cache.slice_size;
	if (nowait)
		ret = qcow2_cache_peek_entry(&img->cache, slice,
					     l2_index % per_slice, &l2e);
	else
		ret = qcow2_cache_get_entry(&img->cache, slice,
					    l2_index % per_slice, &l2e);
	if (ret)
		return ret;
	ret = qcow2_decode_l2_entry(lay, l2e, map, &why);
	if (ret)
		return qcow2_corruption(img, why, l2_offset +
					l2_index * sizeof(u64));

	switch (map->type) {
	case QCOW2_CLUSTER_NORMAL:
		/*
		 * The end of the last cluster may be missing from the file
		 * (it reads as zeros, as in QEMU); a cluster that starts at
		 * or past the end is corrupt metadata.
		 */
		if (map->host_offset >= file_size)
			return qcow2_corruption(img,
						"data cluster is outside the image file",
						map->host_offset);
		break;
	case QCOW2_CLUSTER_COMPRESSED:
		ret = qcow2_check_compressed(lay, map, file_size, &why);
		if (ret)
			return qcow2_corruption(img, why, map->host_offset);
		break;
	default:
		break;
	}
	return 0;
}

void qcow2_cmd_put(struct qcow2_cmd *cmd)
{
	if (atomic_dec_and_test(&cmd->ref))
		blk_mq_complete_request(blk_mq_rq_from_pdu(cmd));
}

void qcow2_cmd_set_error(struct qcow2_cmd *cmd, int err)
{
	/* The first error wins; later ones say less about the cause. */
	cmpxchg(&cmd->status, BLK_STS_OK, errno_to_blk_status(err));
}

static void qcow2_aio_complete(struct kiocb *iocb, long ret)
{
	struct qcow2_aio *aio = container_of(iocb, struct qcow2_aio, iocb);
	struct qcow2_cmd *cmd = aio->cmd;

	if (iov_iter_rw(&aio->iter) == WRITE && ret >= 0 && ret < aio->len)
		ret = -EIO;	/* a short write: the file system is full */
	if (ret < 0) {
		qcow2_cmd_set_error(cmd, ret);
	} else if (ret < aio->len) {
		/* Past the end of the file: QEMU reads zeros there too. */
		iov_iter_advance(&aio->iter, ret);
		iov_iter_zero(aio->len - ret, &aio->iter);
	}
	if (!aio->embedded)
		kfree(aio);
	qcow2_cmd_put(cmd);
}

/**
 * qcow2_data_io() - read or write guest data at a host offset
 * @img: the image
 * @cmd: the request's command; completion drops the reference taken here
 * @iter: the request's pages for this piece (left untouched); its
 *	direction says read or write
 * @pos: host offset
 * @len: bytes
 * @embedded_used: whether @cmd's embedded aio is taken already
 *
 * Runs async when the file supports it.  A write was overlap-checked by
 * the caller.
 */
void qcow2_data_io(struct qcow2_image *img, struct qcow2_cmd *cmd,
		   const struct iov_iter *iter, u64 pos, size_t len,
		   bool *embedded_used)
{
	struct qcow2_aio *aio;
	struct iov_iter data;
	ssize_t ret;

	if (!*embedded_used) {
		aio = &cmd->aio;
		*embedded_used = true;
	} else {
		aio = kmalloc(sizeof(*aio), GFP_NOIO);
		if (!aio) {
			qcow2_cmd_set_error(cmd, -ENOMEM);
			return;
		}
		aio->cmd = cmd;
		aio->embedded = false;
	}
	aio->iter = *iter;
	aio->len = len;
	data = *iter;

	init_sync_kiocb(&aio->iocb, img->file);
	aio->iocb.ki_pos = pos;
	aio->iocb.ki_complete = qcow2_aio_complete;

	atomic_inc(&cmd->ref);
	if (iov_iter_rw(iter) == WRITE) {
		/*
		 * Freeze protection covers the submission, as for loop: a
		 * buffered write is complete when write_iter returns.
		 */
		file_start_write(img->file);
		ret = img->file->f_op->write_iter(&aio->iocb, &data);
		file_end_write(img->file);
	} else {
		ret = img->file->f_op->read_iter(&aio->iocb, &data);
	}
	if (ret != -EIOCBQUEUED)
		qcow2_aio_complete(&aio->iocb, ret);
}

/**
 * qcow2_extent() - the clusters from @pos on that map the same way
 * @img: the image
 * @view: the snapshot shown, or NULL for the active state
 * @pos: guest offset
 * @max: bytes wanted at most
 * @map: the mapping of the cluster holding @pos
 * @len: bytes from @pos mapped alike (contiguous normal clusters with the
 *	same COPIED, or zero/unallocated ones; one compressed cluster)
 * @nowait: use cached L2 entries only (see qcow2_map())
 *
 * Return: 0 or the error of mapping @pos.
 */
int qcow2_extent(struct qcow2_image *img, const struct qcow2_view *view,
		 u64 pos, u64 max, struct qcow2_mapping *map, u64 *len,
		 bool nowait)
{
	u64 cs = img->lay.cluster_size;
	struct qcow2_mapping next;
	u64 n;
	int ret;

	ret = qcow2_map(img, view, pos, map, nowait);
	if (ret)
		return ret;
	n = min(max, cs - (pos & (cs - 1)));
	if (map->type == QCOW2_CLUSTER_COMPRESSED) {
		*len = n;
		return 0;
	}
	while (n < max) {
		ret = qcow2_map(img, view, pos + n, &next, nowait);
		if (ret)
			break;	/* the next extent reports it */
		if (map->type == QCOW2_CLUSTER_NORMAL) {
			if (next.type != QCOW2_CLUSTER_NORMAL ||
			    next.copied != map->copied ||
			    next.host_offset !=
			    map->host_offset + round_up((pos & (cs - 1)) + n, cs))
				break;
		} else if (next.type != QCOW2_CLUSTER_UNALLOCATED &&
			   next.type != QCOW2_CLUSTER_ZERO_PLAIN &&
			   next.type != QCOW2_CLUSTER_ZERO_ALLOC) {
			break;
		}
		n = min(max, n + cs);
	}
	*len = n;
	return 0;
}

/**
 * qcow2_init_iter() - an iov_iter over a request's pages
 * @rq: the request
 * @cmd: its command (holds the bvec array of a multi-bio request)
 * @iter: the iterator
 * @dir: ITER_DEST to read into the pages, ITER_SOURCE to write them
 *
 * Return: 0 or -ENOMEM.
 */
int qcow2_init_iter(struct request *rq, struct qcow2_cmd *cmd,
		    struct iov_iter *iter, unsigned int dir)
{
	struct req_iterator rq_iter;
	struct bio_vec tmp, *bvec;
	struct bio *bio = rq->bio;
	unsigned int nr = 0, i = 0;

	if (rq->bio != rq->biotail) {
		/* Several bios: gather their vectors into one array. */
		rq_for_each_bvec(tmp, rq, rq_iter)
			nr++;
		bvec = kmalloc_array(nr, sizeof(*bvec), GFP_NOIO);
		if (!bvec)
			return -ENOMEM;
		cmd->bvec = bvec;
		rq_for_each_bvec(tmp, rq, rq_iter)
			bvec[i++] = tmp;
		iov_iter_bvec(iter, dir, cmd->bvec, nr, blk_rq_bytes(rq));
		iter->iov_offset = 0;
	} else {
		/* One bio: use its vector in place, as loop does. */
		bvec = __bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter);
		nr = bio_segments(bio);
		iov_iter_bvec(iter, dir, bvec, nr, blk_rq_bytes(rq));
		iter->iov_offset = bio->bi_iter.bi_bvec_done;
	}
	return 0;
}

static void qcow2_read_rq(struct qcow2_dev *dev, struct request *rq,
			  struct qcow2_cmd *cmd)
{
	struct qcow2_image *img = dev->img;
	u64 pos = blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 end = pos + blk_rq_bytes(rq);
	bool embedded_used = false;
	struct qcow2_mapping map;
	struct iov_iter iter, part;
	u64 len, in_cluster;
	int ret;

	ret = qcow2_init_iter(rq, cmd, &iter, ITER_DEST);
	if (ret) {
		qcow2_cmd_set_error(cmd, ret);
		return;
	}

	while (pos < end) {
		ret = qcow2_extent(img, dev->view, pos, end - pos, &map, &len,
				   false);
		if (ret) {
			qcow2_cmd_set_error(cmd, ret);
			return;
		}
		part = iter;
		iov_iter_truncate(&part, len);
		in_cluster = pos & (img->lay.cluster_size - 1);

		switch (map.type) {
		case QCOW2_CLUSTER_NORMAL:
			qcow2_data_io(img, cmd, &part,
				      map.host_offset + in_cluster, len,
				      &embedded_used);
			break;
		case QCOW2_CLUSTER_COMPRESSED:
			ret = qcow2_read_compressed(img, &map, in_cluster,
						    &part, len);
			if (ret) {
				qcow2_cmd_set_error(cmd, ret);
				return;
			}
			break;
		default:
			if (iov_iter_zero(len, &part) != len) {
				qcow2_cmd_set_error(cmd, -EIO);
				return;
			}
			break;
		}
		iov_iter_advance(&iter, len);
		pos += len;
	}
}

/*
 * Count a request that maps guest offsets without a lock in the current
 * epoch, so that clusters unmapped meanwhile are not reused while it may
 * still read or write them (qcow2_apply_frees()).
 */
void qcow2_io_start(struct qcow2_image *img, struct qcow2_cmd *cmd)
{
	unsigned int e;

	/* Read-only images free nothing; a punted request counted already. */
	if (img->read_only || cmd->epoch >= 0)
		return;
	/* Pairs with the smp_store_release() in qcow2_apply_frees(). */
	e = smp_load_acquire(&img->io_epoch);
	atomic_inc(&img->io_count[e]);
	/*
	 * Order the count before any mapping is read; pairs with the
	 * smp_mb() in qcow2_apply_frees() (store buffering: either the
	 * flusher sees this count, or this request sees the new mapping).
	 */
	smp_mb__after_atomic();
	cmd->epoch = e;
}

/**
 * qcow2_handle_cmd() - run one request (workqueue function)
 * @work: the command's work item
 *
 * Context: process context.  I/O issued from here must not recurse into
 * the block layer through reclaim, hence the noio scope.
 */
void qcow2_handle_cmd(struct work_struct *work)
{
	struct qcow2_cmd *cmd = container_of(work, struct qcow2_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct qcow2_dev *dev = rq->q->queuedata;
	unsigned int noio;

	noio = memalloc_noio_save();
	atomic_set(&cmd->ref, 1);	/* ours, dropped below */
	switch (req_op(rq)) {
	case REQ_OP_READ:
		qcow2_io_start(dev->img, cmd);
		qcow2_read_rq(dev, rq, cmd);
		break;
	case REQ_OP_WRITE:
		qcow2_io_start(dev->img, cmd);
		qcow2_write_rq(dev, rq, cmd);
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		qcow2_io_start(dev->img, cmd);
		qcow2_discard_rq(dev, rq, cmd);
		break;
	case REQ_OP_FLUSH:
		qcow2_cmd_set_error(cmd, qcow2_flush(dev->img));
		break;
	default:
		qcow2_cmd_set_error(cmd, -EOPNOTSUPP);
		break;
	}
	qcow2_cmd_put(cmd);
	memalloc_noio_restore(noio);
}

/**
 * qcow2_write_work() - run the device's queued writes, one after another
 * @work: the device's write_work
 *
 * Writes that ->queue_rq could not serve, discards, write-zeroes and
 * flushes all take meta_lock at some point.  One worker running them in
 * the order they came costs a wake-up per batch instead of one per
 * request, and never hands the lock from one sleeping worker to the next
 * (loop runs all its requests this way).  Reads that missed the L2 cache
 * keep a worker each: they wait for the file, not for the lock.
 *
 * Context: process context (workqueue); never runs twice at once.
 */
void qcow2_write_work(struct work_struct *work)
{
	struct qcow2_dev *dev = container_of(work, struct qcow2_dev,
					     write_work);
	struct qcow2_cmd *cmd, *next;
	struct llist_node *list;

	while ((list = llist_del_all(&dev->write_list))) {
		/* A completed command may be reused at once: read next first. */
		llist_for_each_entry_safe(cmd, next, llist_reverse_order(list),
					  node) {
			qcow2_handle_cmd(&cmd->work);
			cond_resched();
		}
	}
}

/**
 * qcow2_queue_work() - hand a request to the device's workers
 * @dev: the device
 * @cmd: the started request's command
 *
 * Reads each get a work item of their own, since they wait for the file
 * and not for each other; everything else runs in order on write_work.
 */
void qcow2_queue_work(struct qcow2_dev *dev, struct qcow2_cmd *cmd)
{
	if (req_op(blk_mq_rq_from_pdu(cmd)) == REQ_OP_READ) {
		queue_work(dev->wq, &cmd->work);
	} else {
		/* llist_add() orders the node before the work runs. */
		llist_add(&cmd->node, &dev->write_list);
		queue_work(dev->wq, &dev->write_work);
	}
}

/**
 * qcow2_complete_rq() - blk-mq ->complete: end the request
 * @rq: the request
 */
void qcow2_complete_rq(struct request *rq)
{
	struct qcow2_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct qcow2_dev *dev = rq->q->queuedata;

	kfree(cmd->bvec);
	cmd->bvec = NULL;
	if (cmd->epoch >= 0) {
		atomic_dec(&dev->img->io_count[cmd->epoch]);
		cmd->epoch = -1;
	}
	blk_mq_end_request(rq, cmd->status);
}
