// SPDX-License-Identifier: GPL-2.0
/*
 * The fast path: reads and writes whose L2 entries are cached and that
 * need no allocation are mapped and issued without a trip through the
 * workqueue.
 *
 * Where the file I/O runs is the one choice made here.  Issuing it in the
 * submitting task costs no wake-up and scales with the number of
 * submitting CPUs.  But a single task keeping many requests in flight
 * then does all the work on one CPU while the others idle, which is
 * where loop, copying on a worker, is faster.  So while one CPU submits
 * and its requests overlap, they go to one issue worker, and the
 * submitter takes its share back whenever the worker has a backlog.
 * The worker also maps what it is handed: there the submitting CPU is
 * the busy one, and the worker had time to spare.
 */

#include <linux/blk-mq.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "qcow2.h"

/*
 * Reads queued to the issue worker beyond which the submitter issues its
 * own: the worker is busy, so both CPUs are.  Writes are handed off even
 * then: buffered writes to one file take its inode lock, and a second
 * writer would only wait for it.
 */
#define QCOW2_ISSUE_BACKLOG	8

/*
 * Handing off pays only when the submitter has more to submit before it
 * waits, which shows as requests still queued when the next one comes.
 * At queue depth 1 no request ever finds one.  Deeper, a worker that
 * drains faster than the submitter fills often sleeps between requests,
 * but not always: so the score rises by QCOW2_ISSUE_SCORE_BUSY for each
 * request that finds the worker busy and falls by 1 for each that finds
 * it idle, and handing off stops only when fewer than 1 request in 17
 * found it busy (with a rise of 3, random writes at depth 32 stopped
 * handing off in some runs and lost a third of their IOPS).  While it is
 * stopped, one request in QCOW2_ISSUE_PROBE tries again with the score
 * of one busy request.
 */
#define QCOW2_ISSUE_SCORE_BUSY	16
#define QCOW2_ISSUE_SCORE_MAX	256
#define QCOW2_ISSUE_PROBE	4096

/* How long submissions from a second CPU keep everything in place. */
#define QCOW2_ISSUE_SHARED	(HZ / 50 + 1)

/*
 * A buffered read or write that must not wait for the device.  True when
 * it is over: done, or failed for good (the error is set).  False when it
 * would have waited; part of it may be done, and the worker does it all
 * again, which reads or writes the same bytes.
 */
static bool qcow2_data_io_nowait(struct qcow2_image *img,
				 struct qcow2_cmd *cmd,
				 const struct iov_iter *iter, u64 pos,
				 size_t len)
{
	struct iov_iter data = *iter;
	struct kiocb kiocb;
	ssize_t ret;

	init_sync_kiocb(&kiocb, img->file);
	kiocb.ki_pos = pos;
	kiocb.ki_flags |= IOCB_NOWAIT;
	if (iov_iter_rw(iter) == WRITE) {
		if (!file_start_write_trylock(img->file))
			return false;	/* frozen: wait in the worker */
		ret = img->file->f_op->write_iter(&kiocb, &data);
		file_end_write(img->file);
	} else {
		ret = img->file->f_op->read_iter(&kiocb, &data);
	}
	if (ret == len)
		return true;
	/*
	 * Some file systems (ext4) never take buffered writes with
	 * IOCB_NOWAIT: stop mapping every write twice for them.
	 */
	if (ret == -EOPNOTSUPP && iov_iter_rw(iter) == WRITE)
		set_bit(QCOW2_IMG_NO_NOWAIT_WRITE, &img->flags);
	if (ret >= 0 || ret == -EAGAIN || ret == -EOPNOTSUPP)
		return false;
	qcow2_cmd_set_error(cmd, ret);
	return true;
}

/* Whether a read or write may take the fast path at all. */
static bool qcow2_fast_allowed(struct qcow2_image *img, bool write)
{
	enum qcow2_inline mode = img->inline_mode;

	if (mode == QCOW2_INLINE_NEVER)
		return false;
	return !write || (!qcow2_writable_check(img) &&
			  (mode != QCOW2_INLINE_NOWAIT ||
			   !test_bit(QCOW2_IMG_NO_NOWAIT_WRITE, &img->flags)));
}

/*
 * Map a request that qcow2_fast_allowed() let through, using cached L2
 * entries only.  True when it is one extent of data or zeroes that needs
 * no allocation; its host offset is then in @cmd.
 */
static bool qcow2_fast_map(struct qcow2_dev *dev, struct request *rq,
			   struct qcow2_cmd *cmd)
{
	struct qcow2_image *img = dev->img;
	bool write = req_op(rq) == REQ_OP_WRITE;
	u64 pos = blk_rq_pos(rq) << SECTOR_SHIFT, bytes = blk_rq_bytes(rq);
	struct qcow2_mapping map;
	unsigned int noio;
	u64 len;
	int ret;

	noio = memalloc_noio_save();
	qcow2_io_start(img, cmd);
	ret = qcow2_extent(img, dev->view, pos, bytes, &map, &len, true);
	memalloc_noio_restore(noio);
	if (ret || len != bytes)
		return false;
	if (map.type == QCOW2_CLUSTER_COMPRESSED ||
	    (write && (map.type != QCOW2_CLUSTER_NORMAL || !map.copied)))
		return false;
	cmd->data_zero = map.type != QCOW2_CLUSTER_NORMAL;
	cmd->data_pos = map.host_offset + (pos & (img->lay.cluster_size - 1));
	return true;
}

/*
 * Issue a request mapped by qcow2_fast_map().  True when it is issued (it
 * completes on its own), false when the file would have waited and the
 * request must go to the workqueue.
 */
static bool qcow2_fast_issue(struct qcow2_dev *dev, struct request *rq,
			     struct qcow2_cmd *cmd)
{
	struct qcow2_image *img = dev->img;
	bool write = req_op(rq) == REQ_OP_WRITE, embedded_used = false;
	u64 bytes = blk_rq_bytes(rq);
	struct iov_iter iter;
	unsigned int noio;
	bool issued = true;
	int ret;

	noio = memalloc_noio_save();
	ret = qcow2_init_iter(rq, cmd, &iter, write ? ITER_SOURCE : ITER_DEST);
	if (ret) {
		issued = false;
		goto out;
	}
	atomic_set(&cmd->ref, 1);	/* ours, dropped below */
	/* Writes were mapped only onto data clusters. */
	ret = write ? qcow2_check_data_write(img, cmd->data_pos, bytes) : 0;
	if (ret) {
		qcow2_cmd_set_error(cmd, ret);
	} else if (cmd->data_zero) {
		if (iov_iter_zero(bytes, &iter) != bytes)
			qcow2_cmd_set_error(cmd, -EIO);
	} else if (img->inline_mode != QCOW2_INLINE_NOWAIT) {
		qcow2_data_io(img, cmd, &iter, cmd->data_pos, bytes,
			      &embedded_used);
	} else if (!qcow2_data_io_nowait(img, cmd, &iter, cmd->data_pos,
					 bytes)) {
		kfree(cmd->bvec);
		cmd->bvec = NULL;
		issued = false;
		goto out;
	}
	qcow2_cmd_put(cmd);
out:
	memalloc_noio_restore(noio);
	return issued;
}

/* Whether a request submitted on hardware queue @hctx goes to the worker. */
static bool qcow2_issuer_take(struct qcow2_issuer *is, unsigned int hctx,
			      bool write)
{
	unsigned int idle;
	int backlog, score;

	if (READ_ONCE(is->hctx) != hctx) {
		WRITE_ONCE(is->hctx, hctx);
		WRITE_ONCE(is->shared_until, jiffies + QCOW2_ISSUE_SHARED);
		return false;
	}
	if (time_before(jiffies, READ_ONCE(is->shared_until)))
		return false;
	backlog = atomic_read(&is->backlog);
	if (backlog >= QCOW2_ISSUE_BACKLOG && !write)
		return false;

	score = READ_ONCE(is->score);
	if (score <= 0) {
		idle = READ_ONCE(is->idle) + 1;
		WRITE_ONCE(is->idle, idle);
		if (idle < QCOW2_ISSUE_PROBE)
			return false;
		WRITE_ONCE(is->idle, 0);
		score = QCOW2_ISSUE_SCORE_BUSY;
	} else if (backlog) {
		score = min(score + QCOW2_ISSUE_SCORE_BUSY, QCOW2_ISSUE_SCORE_MAX);
	} else {
		score--;
	}
	WRITE_ONCE(is->score, score);
	return score > 0;
}

/**
 * qcow2_queue_fast() - serve a read or write without the workqueue
 * @dev: the device
 * @hctx: the hardware queue it came on
 * @rq: a started read or write request
 * @cmd: its command
 *
 * Context: ->queue_rq of a BLK_MQ_F_BLOCKING queue.
 * Return: true when the request was taken (it completes on its own),
 * false when it must go to the workqueue, which starts it over.
 */
bool qcow2_queue_fast(struct qcow2_dev *dev, struct blk_mq_hw_ctx *hctx,
		      struct request *rq, struct qcow2_cmd *cmd)
{
	struct qcow2_issuer *is = &dev->issuer;
	bool write = req_op(rq) == REQ_OP_WRITE;

	if (!qcow2_fast_allowed(dev->img, write))
		return false;
	if (!qcow2_issuer_take(is, hctx->queue_num, write))
		return qcow2_fast_map(dev, rq, cmd) &&
		       qcow2_fast_issue(dev, rq, cmd);
	atomic_inc(&is->backlog);
	/*
	 * llist_add() orders the command before the work runs, and before
	 * @awake is read: see the end of qcow2_issue_work().  A worker that
	 * is awake takes the command without being queued again, which
	 * spares this CPU the queueing and, when it finished meanwhile,
	 * the wake-up.
	 */
	if (llist_add(&cmd->node, &is->list) && !READ_ONCE(is->awake))
		queue_work(dev->wq, &is->work);
	return true;
}

/**
 * qcow2_issue_work() - issue the requests handed off by ->queue_rq
 * @work: the device's issuer work
 *
 * Context: process context (workqueue); never runs twice at once.
 */
void qcow2_issue_work(struct work_struct *work)
{
	struct qcow2_dev *dev = container_of(work, struct qcow2_dev,
					     issuer.work);
	struct qcow2_issuer *is = &dev->issuer;
	struct qcow2_cmd *cmd, *next;
	struct llist_node *list;
	struct request *rq;

	WRITE_ONCE(is->awake, true);
	for (;;) {
		list = llist_del_all(&is->list);
		if (!list) {
			WRITE_ONCE(is->awake, false);
			/*
			 * Store buffering with qcow2_queue_fast(): either it
			 * sees @awake false and queues the work, or this
			 * sees its command.
			 */
			smp_mb();
			if (llist_empty(&is->list))
				break;
			WRITE_ONCE(is->awake, true);
			continue;
		}
		/* A completed command may be reused at once: read next first. */
		llist_for_each_entry_safe(cmd, next, llist_reverse_order(list),
					  node) {
			rq = blk_mq_rq_from_pdu(cmd);
			/* The image may have turned read-only meanwhile. */
			if (!qcow2_fast_allowed(dev->img,
						req_op(rq) == REQ_OP_WRITE) ||
			    !qcow2_fast_map(dev, rq, cmd) ||
			    !qcow2_fast_issue(dev, rq, cmd))
				qcow2_queue_work(dev, cmd);
			atomic_dec(&is->backlog);
			WRITE_ONCE(is->handed_off, is->handed_off + 1);
			cond_resched();
		}
	}
}
