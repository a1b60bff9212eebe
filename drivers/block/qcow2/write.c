// SPDX-License-Identifier: GPL-2.0
/*
 * Writes, discards and write-zeroes.
 *
 * A write to a cluster whose L2 entry is NORMAL with COPIED set goes
 * straight to the file, like a read, without any lock.  Anything else
 * takes the allocating path: under meta_lock the L2 table is made
 * writable (allocated, or copied when a snapshot shares it) and a new
 * cluster is allocated; the lock is dropped while the cluster is filled
 * (old contents or zeros around the new data); then, under the lock
 * again, the L2 entry is pointed at it.  Until then readers see the old
 * entry, and other writers to the same guest cluster wait on its
 * qcow2_inflight.
 */
#include <linux/blk-mq.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "qcow2.h"

/* Under meta_lock: wait until nobody allocates guest cluster @gc. */
static bool qcow2_wait_inflight(struct qcow2_image *img, u64 gc)
{
	struct qcow2_inflight *w;

	lockdep_assert_held(&img->meta_lock);
	w = xa_load(&img->inflight, gc);
	if (!w)
		return false;
	refcount_inc(&w->ref);
	mutex_unlock(&img->meta_lock);
	wait_event(w->wq, READ_ONCE(w->done));
	if (refcount_dec_and_test(&w->ref))
		kfree(w);
	mutex_lock(&img->meta_lock);
	return true;
}

static int qcow2_inflight_begin(struct qcow2_image *img, u64 gc,
				struct qcow2_inflight **wp)
{
	struct qcow2_inflight *w;
	int ret;

	w = kmalloc(sizeof(*w), GFP_NOIO);
	if (!w)
		return -ENOMEM;
	init_waitqueue_head(&w->wq);
	w->done = false;
	refcount_set(&w->ref, 1);
	ret = xa_err(xa_store(&img->inflight, gc, w, GFP_NOIO));
	if (ret) {
		kfree(w);
		return ret;
	}
	*wp = w;
	return 0;
}

static void qcow2_inflight_end(struct qcow2_image *img, u64 gc,
			       struct qcow2_inflight *w)
{
	xa_erase(&img->inflight, gc);
	WRITE_ONCE(w->done, true);
	wake_up_all(&w->wq);
	if (refcount_dec_and_test(&w->ref))
		kfree(w);
}

/*
 * Under meta_lock: the L2 table holding the entry of guest offset @pos,
 * made writable: allocated when missing, copied when shared (COPIED clear
 * in the L1 entry).  The new table is written at once; the L1 entry is
 * written at the next flush, after the table is on disk.
 */
static int qcow2_l2_for_write(struct qcow2_image *img, u64 pos, u64 *l2p)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 l1_index = qcow2_l1_index(lay, pos), cs = lay->cluster_size;
	u64 l1e, old, new;
	const char *why;
	void *buf;
	int ret;

	lockdep_assert_held(&img->meta_lock);
	if (l1_index >= lay->l1_size)
		return qcow2_mark_corrupt(img, "L1 table is too small", pos);
	l1e = be64_to_cpu(img->l1[l1_index]);
	ret = qcow2_decode_l1_entry(lay, l1e, &old, &why);
	if (ret)
		return qcow2_mark_corrupt(img, why, lay->l1_table_offset +
					  l1_index * sizeof(u64));
	if (old && (l1e & QCOW2_OFLAG_COPIED)) {
		*l2p = old;
		return 0;
	}

	buf = kvzalloc(cs, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (old) {
		/* A shared table never changes, so the file has it all. */
		ret = qcow2_read_exact(img->file, buf, cs, old);
		if (ret)
			goto out_free;
	}
	ret = qcow2_alloc_clusters(img, 1, &new);
	if (ret)
		goto out_free;
	ret = qcow2_meta_claim(img, new, cs, QCOW2_META_L2);
	if (ret)
		goto out_unref;
	qcow2_cache_forget(&img->cache, new, cs);
	ret = qcow2_write_meta(img, QCOW2_META_L2, buf, cs, new);
	if (ret)
		goto out_forget;
	kvfree(buf);

	WRITE_ONCE(img->l1[l1_index], cpu_to_be64(new | QCOW2_OFLAG_COPIED));
	set_bit(l1_index, img->l1_dirty);
	if (old)
		qcow2_defer_free(img, old, cs);
	*l2p = new;
	return 0;

out_forget:
	qcow2_meta_del(img, new, cs);
out_unref:
	qcow2_update_refcount(img, new, cs, -1);
out_free:
	kvfree(buf);
	return ret;
}

/* Under meta_lock: set the L2 entry of guest offset @pos. */
static int qcow2_set_l2_entry(struct qcow2_image *img, u64 l2_offset, u64 pos,
			      u64 entry)
{
	unsigned int per_slice = img->cache.slice_size / sizeof(u64);
	u64 l2_index = qcow2_l2_index(&img->lay, pos);
	struct qcow2_slice *s;
	int ret;

	lockdep_assert_held(&img->meta_lock);
	ret = qcow2_cache_get(&img->cache, l2_offset + (l2_index / per_slice) *
			      img->cache.slice_size, &s);
	if (ret)
		return ret;
	/* One store: lockless readers see the old or the new entry. */
	WRITE_ONCE(s->data[l2_index % per_slice], cpu_to_be64(entry));
	qcow2_cache_mark_dirty(&img->cache, s);
	qcow2_slice_put(s);
	return 0;
}

/* Under meta_lock: drop the reference an old L2 entry held, later. */
static void qcow2_unref_old(struct qcow2_image *img,
			    const struct qcow2_mapping *map)
{
	switch (map->type) {
	case QCOW2_CLUSTER_NORMAL:
	case QCOW2_CLUSTER_ZERO_ALLOC:
		qcow2_defer_free(img, map->host_offset, img->lay.cluster_size);
		break;
	case QCOW2_CLUSTER_COMPRESSED:
		/* Every host cluster the compressed bytes touch. */
		qcow2_defer_free(img, map->host_offset & ~511ULL,
				 map->csize + (map->host_offset & 511));
		break;
	default:
		break;
	}
}

/*
 * Fill [@from, @to) of the new cluster at @host with what the guest
 * cluster held there: the old data (copy-on-write) or zeros.
 */
static int qcow2_fill_old(struct qcow2_image *img,
			  const struct qcow2_mapping *map, u64 host,
			  u64 from, u64 to, bool known_zero)
{
	u64 len = to - from;
	struct iov_iter iter;
	struct kvec kvec;
	ssize_t got;
	void *buf;
	int ret;

	if (!len)
		return 0;
	switch (map->type) {
	case QCOW2_CLUSTER_NORMAL:
	case QCOW2_CLUSTER_COMPRESSED:
		break;
	default:
		return known_zero ? 0 : qcow2_write_zeroes_at(img, host + from,
							      len);
	}

	buf = kvmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	if (map->type == QCOW2_CLUSTER_NORMAL) {
		got = qcow2_file_read(img->file, buf, len,
				      map->host_offset + from);
		ret = got < 0 ? got : 0;
		if (got >= 0 && got < len)	/* past the end: zeros */
			memset(buf + got, 0, len - got);
	} else {
		kvec.iov_base = buf;
		kvec.iov_len = len;
		iov_iter_kvec(&iter, ITER_DEST, &kvec, 1, len);
		ret = qcow2_read_compressed(img, map, from, &iter, len);
	}
	if (!ret)
		ret = qcow2_file_write(img->file, buf, len, host + from);
	kvfree(buf);
	return ret;
}

/*
 * The allocating path for [@pos, @pos + iov_iter_count(@from)), inside
 * one guest cluster.
 */
static int qcow2_write_alloc(struct qcow2_image *img, u64 pos,
			     struct iov_iter *from)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 cs = lay->cluster_size, gc = pos >> lay->cluster_bits;
	u64 in_cluster = pos & (cs - 1), len = iov_iter_count(from);
	struct qcow2_inflight *w;
	struct qcow2_mapping map;
	u64 l2_offset, host;
	bool keep, known_zero;
	int ret;

	mutex_lock(&img->meta_lock);
	do {
		ret = qcow2_writable_check(img);
		if (ret)
			goto out_unlock;
	} while (qcow2_wait_inflight(img, gc));

	ret = qcow2_map(img, NULL, pos, &map, false);
	if (ret)
		goto out_unlock;
	if (map.type == QCOW2_CLUSTER_NORMAL && map.copied) {
		/* Someone allocated it meanwhile: write in place. */
		mutex_unlock(&img->meta_lock);
		host = map.host_offset + in_cluster;
		ret = qcow2_check_data_write(img, host, len);
		return ret ?: qcow2_file_write_iter(img->file, from, host);
	}
	ret = qcow2_l2_for_write(img, pos, &l2_offset);
	if (ret)
		goto out_unlock;
	/* A preallocated zero cluster of our own is reused in place. */
	keep = map.type == QCOW2_CLUSTER_ZERO_ALLOC && map.copied;
	if (keep) {
		host = map.host_offset;
	} else {
		ret = qcow2_alloc_clusters(img, 1, &host);
		if (ret)
			goto out_unlock;
	}
	ret = qcow2_inflight_begin(img, gc, &w);
	if (ret)
		goto out_unref;
	mutex_unlock(&img->meta_lock);

	/* Past the end of the file a cluster reads as zeros already. */
	known_zero = !keep && host >= i_size_read(file_inode(img->file));
	ret = qcow2_check_data_write(img, host, cs);
	if (!ret)
		ret = qcow2_fill_old(img, &map, host, 0, in_cluster,
				     known_zero);
	if (!ret)
		ret = qcow2_file_write_iter(img->file, from, host + in_cluster);
	if (!ret)
		ret = qcow2_fill_old(img, &map, host, in_cluster + len, cs,
				     known_zero);

	mutex_lock(&img->meta_lock);
	if (!ret)	/* the table cannot have changed, but say so */
		ret = qcow2_l2_for_write(img, pos, &l2_offset);
	if (!ret)
		ret = qcow2_set_l2_entry(img, l2_offset, pos,
					 host | QCOW2_OFLAG_COPIED);
	if (!ret) {
		if (!keep)
			qcow2_unref_old(img, &map);
		ret = qcow2_meta_maybe_flush(img);
	} else if (!keep) {
		/* Nothing points to the new cluster: give it back now. */
		qcow2_update_refcount(img, host, cs, -1);
	}
	qcow2_inflight_end(img, gc, w);
	mutex_unlock(&img->meta_lock);
	return ret;

out_unref:
	if (!keep)
		qcow2_update_refcount(img, host, cs, -1);
out_unlock:
	mutex_unlock(&img->meta_lock);
	return ret;
}

/*
 * Write @iter at guest offset @pos.  With @cmd, writes to allocated
 * clusters are asynchronous and complete the command; without, all is
 * synchronous.
 */
static int qcow2_write_range(struct qcow2_image *img, struct qcow2_cmd *cmd,
			     u64 pos, struct iov_iter *iter,
			     bool *embedded_used)
{
	u64 end = pos + iov_iter_count(iter), len, in_cluster, cs;
	struct qcow2_mapping map;
	struct iov_iter part;
	int ret;

	cs = img->lay.cluster_size;
	while (pos < end) {
		ret = qcow2_writable_check(img);
		if (ret)
			return ret;
		ret = qcow2_extent(img, NULL, pos, end - pos, &map, &len,
				   false);
		if (ret)
			return ret;
		in_cluster = pos & (cs - 1);
		part = *iter;
		if (map.type == QCOW2_CLUSTER_NORMAL && map.copied) {
			iov_iter_truncate(&part, len);
			ret = qcow2_check_data_write(img, map.host_offset +
						     in_cluster, len);
			if (ret)
				return ret;
			if (cmd)
				qcow2_data_io(img, cmd, &part,
					      map.host_offset + in_cluster,
					      len, embedded_used);
			else
				ret = qcow2_file_write_iter(img->file, &part,
							    map.host_offset +
							    in_cluster);
		} else {
			len = min(len, cs - in_cluster);
			iov_iter_truncate(&part, len);
			ret = qcow2_write_alloc(img, pos, &part);
		}
		if (ret)
			return ret;
		iov_iter_advance(iter, len);
		pos += len;
	}
	return 0;
}

/**
 * qcow2_write_rq() - REQ_OP_WRITE
 * @dev: the device
 * @rq: the request
 * @cmd: its command
 */
void qcow2_write_rq(struct qcow2_dev *dev, struct request *rq,
		    struct qcow2_cmd *cmd)
{
	bool embedded_used = false;
	struct iov_iter iter;
	int ret;

	ret = qcow2_init_iter(rq, cmd, &iter, ITER_SOURCE);
	if (!ret)
		ret = qcow2_write_range(dev->img, cmd,
					blk_rq_pos(rq) << SECTOR_SHIFT, &iter,
					&embedded_used);
	if (ret)
		qcow2_cmd_set_error(cmd, ret);
}

/* Zeros over part of one cluster; nothing to do where it reads as zero. */
static int qcow2_zero_partial(struct qcow2_image *img, u64 pos, u64 len)
{
	struct bio_vec bv[QCOW2_ZERO_VECS];
	struct qcow2_mapping map;
	struct iov_iter iter;
	u64 chunk;
	int ret;

	ret = qcow2_map(img, NULL, pos, &map, false);
	if (ret)
		return ret;
	if (map.type != QCOW2_CLUSTER_NORMAL &&
	    map.type != QCOW2_CLUSTER_COMPRESSED)
		return 0;
	while (len) {
		chunk = qcow2_zero_iter(bv, len, &iter);
		ret = qcow2_write_range(img, NULL, pos, &iter, NULL);
		if (ret)
			return ret;
		pos += chunk;
		len -= chunk;
	}
	return 0;
}

/*
 * Under meta_lock: make one whole guest cluster read as zeros, dropping
 * its allocation when @unmap (QEMU's zero_in_l2_slice and
 * discard_in_l2_slice; a v2 image has no zero flag, so the entry is
 * cleared).
 */
static int qcow2_zero_cluster(struct qcow2_image *img, u64 pos, bool unmap)
{
	bool v3 = img->lay.version >= 3;
	struct qcow2_mapping map;
	u64 l2_offset, entry;
	int ret;

	ret = qcow2_map(img, NULL, pos, &map, false);
	if (ret)
		return ret;
	switch (map.type) {
	case QCOW2_CLUSTER_UNALLOCATED:
	case QCOW2_CLUSTER_ZERO_PLAIN:
		return 0;	/* no backing file: reads as zeros already */
	case QCOW2_CLUSTER_ZERO_ALLOC:
		if (!unmap)
			return 0;
		entry = QCOW2_OFLAG_ZERO;
		break;
	case QCOW2_CLUSTER_NORMAL:
		if (unmap || !v3)
			entry = v3 ? QCOW2_OFLAG_ZERO : 0;
		else
			entry = map.host_offset | QCOW2_OFLAG_ZERO |
				(map.copied ? QCOW2_OFLAG_COPIED : 0);
		break;
	default:	/* compressed: always unmapped */
		entry = v3 ? QCOW2_OFLAG_ZERO : 0;
		break;
	}
	ret = qcow2_l2_for_write(img, pos, &l2_offset);
	if (!ret)
		ret = qcow2_set_l2_entry(img, l2_offset, pos, entry);
	/* The entry changes first; only then may the cluster be freed. */
	if (!ret && !(entry & QCOW2_L2E_OFFSET_MASK))
		qcow2_unref_old(img, &map);
	return ret;
}

/**
 * qcow2_discard_rq() - REQ_OP_DISCARD and REQ_OP_WRITE_ZEROES
 * @dev: the device
 * @rq: the request
 * @cmd: its command
 *
 * Whole clusters lose their data (and their allocation unless the request
 * says REQ_NOUNMAP); the parts of clusters at either end are written with
 * zeros, so a discarded range always reads as zeros afterwards.
 */
void qcow2_discard_rq(struct qcow2_dev *dev, struct request *rq,
		      struct qcow2_cmd *cmd)
{
	struct qcow2_image *img = dev->img;
	u64 cs = img->lay.cluster_size;
	u64 pos = blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 end = pos + blk_rq_bytes(rq), head_end, tail_start;
	bool unmap = req_op(rq) == REQ_OP_DISCARD ||
		     !(rq->cmd_flags & REQ_NOUNMAP);
	int ret = 0;

	head_end = min(end, round_up(pos, cs));
	/* The last cluster of an unaligned image ends at the image's end. */
	tail_start = end == img->lay.size ? end : round_down(end, cs);
	if (tail_start < head_end)
		tail_start = head_end;
	if (pos & (cs - 1))
		ret = qcow2_zero_partial(img, pos, head_end - pos);
	else
		head_end = pos;
	if (!ret && tail_start < end)
		ret = qcow2_zero_partial(img, tail_start, end - tail_start);

	for (pos = head_end; !ret && pos < tail_start; pos += cs) {
		mutex_lock(&img->meta_lock);
		do {
			ret = qcow2_writable_check(img);
		} while (!ret && qcow2_wait_inflight(img, pos >> img->lay.cluster_bits));
		if (!ret)
			ret = qcow2_zero_cluster(img, pos, unmap);
		if (!ret)
			ret = qcow2_meta_maybe_flush(img);
		mutex_unlock(&img->meta_lock);
	}
	if (ret)
		qcow2_cmd_set_error(cmd, ret);
}
