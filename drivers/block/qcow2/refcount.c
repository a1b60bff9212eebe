// SPDX-License-Identifier: GPL-2.0
/*
 * Refcounts and cluster allocation.
 *
 * Refcount blocks are cached in slices like L2 tables and changed only
 * under the image's meta_lock.  Free clusters are found by scanning the
 * refcounts from free_cluster_index, so freed clusters are reused.  A
 * cluster past every refcount block gets a new, self-describing block;
 * past the refcount table, the table grows at the end of the image,
 * together with the blocks that describe it, as QEMU does.
 *
 * Dropping a reference is deferred: the L2/L1 change that removed it must
 * be on disk first (flush), and no request may still use a mapping read
 * before the change (epochs, see qcow2_io_start()).
 */
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "qcow2.h"

/* log2 of the clusters one refcount block describes */
static u32 qcow2_rb_bits(const struct qcow2_layout *lay)
{
	return lay->cluster_bits + 3 - lay->refcount_order;
}

/**
 * qcow2_load_reftable() - read the refcount table of a writable image
 * @img: the image
 *
 * Return: 0 or a negative errno (with a message).
 */
int qcow2_load_reftable(struct qcow2_image *img)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 bytes = (u64)lay->refcount_table_clusters << lay->cluster_bits;
	int ret;

	img->reftable = kvmalloc(bytes, GFP_KERNEL);
	if (!img->reftable)
		return -ENOMEM;
	img->reftable_entries = bytes / sizeof(u64);
	ret = qcow2_read_exact(img->file, img->reftable, bytes,
			       lay->refcount_table_offset);
	if (ret)
		pr_err("attach %pD: could not read the refcount table\n",
		       img->file);
	return ret;
}

/*
 * Where the refcount of @cluster lives: the slice offset and the entry in
 * it.  Return 1 when no refcount block covers it (its refcount is 0).
 */
static int qcow2_rc_locate(struct qcow2_image *img, u64 cluster,
			   u64 *slice_offset, u64 *index)
{
	const struct qcow2_layout *lay = &img->lay;
	u32 rb_bits = qcow2_rb_bits(lay);
	u32 eps_bits = ilog2(img->rc_cache.slice_size * 8) - lay->refcount_order;
	u64 rt = cluster >> rb_bits, block, i;
	const char *why;
	int ret;

	if (rt >= img->reftable_entries)
		return 1;
	ret = qcow2_decode_reftable_entry(lay, be64_to_cpu(img->reftable[rt]),
					  &block, &why);
	if (ret)
		return qcow2_mark_corrupt(img, why, lay->refcount_table_offset +
					  rt * sizeof(u64));
	if (!block)
		return 1;
	i = cluster & ((1ULL << rb_bits) - 1);
	*slice_offset = block + ((i >> eps_bits) << ilog2(img->rc_cache.slice_size));
	*index = i & ((1ULL << eps_bits) - 1);
	return 0;
}

/**
 * qcow2_get_refcount() - refcount of one host cluster
 * @img: the image
 * @cluster: host cluster index
 * @rc: the refcount
 *
 * Context: @img->meta_lock held.
 * Return: 0 or a negative errno.
 */
int qcow2_get_refcount(struct qcow2_image *img, u64 cluster, u64 *rc)
{
	struct qcow2_slice *s;
	u64 off, idx;
	int ret;

	lockdep_assert_held(&img->meta_lock);
	ret = qcow2_rc_locate(img, cluster, &off, &idx);
	if (ret) {
		*rc = 0;
		return ret < 0 ? ret : 0;
	}
	ret = qcow2_cache_get(&img->rc_cache, off, &s);
	if (ret)
		return ret;
	*rc = qcow2_refcount_get(s->data, img->lay.refcount_order, idx);
	qcow2_slice_put(s);
	return 0;
}

/* A cluster whose last reference is gone: nothing may treat it as ours. */
static void qcow2_cluster_freed(struct qcow2_image *img, u64 cluster,
				bool punch)
{
	u32 cb = img->lay.cluster_bits;
	u64 off = cluster << cb, cs = img->lay.cluster_size;

	if (cluster < img->free_cluster_index)
		img->free_cluster_index = cluster;
	qcow2_meta_del(img, off, cs);
	qcow2_cache_forget(&img->cache, off, cs);
	qcow2_cache_forget(&img->rc_cache, off, cs);
	/* Give the space back; a file system without holes keeps it. */
	if (punch)
		vfs_fallocate(img->file, FALLOC_FL_PUNCH_HOLE |
			      FALLOC_FL_KEEP_SIZE, off, cs);
}

static int qcow2_change_refcount(struct qcow2_image *img, u64 cluster,
				 s64 delta, bool punch)
{
	u64 max = img->lay.refcount_order == 6 ? U64_MAX :
		  (1ULL << (1U << img->lay.refcount_order)) - 1;
	struct qcow2_slice *s;
	u64 off, idx, rc;
	int ret;

	ret = qcow2_rc_locate(img, cluster, &off, &idx);
	if (ret > 0)
		ret = -EIO;	/* callers made sure a block exists */
	if (ret)
		goto out_err;
	ret = qcow2_cache_get(&img->rc_cache, off, &s);
	if (ret)
		return ret;
	rc = qcow2_refcount_get(s->data, img->lay.refcount_order, idx);
	if ((delta < 0 && rc < (u64)-delta) ||
	    (delta > 0 && max - rc < (u64)delta)) {
		qcow2_slice_put(s);
		ret = -EINVAL;
		goto out_err;
	}
	rc += delta;
	qcow2_refcount_set(s->data, img->lay.refcount_order, idx, rc);
	qcow2_cache_mark_dirty(&img->rc_cache, s);
	qcow2_slice_put(s);
	if (!rc)
		qcow2_cluster_freed(img, cluster, punch);
	return 0;

out_err:
	pr_err_ratelimited("%s: cannot change the refcount of cluster %llu by %lld: %d\n",
			   img->name, cluster, delta, ret);
	return ret;
}

/**
 * qcow2_update_refcount() - add @delta to the refcount of every cluster
 *	of a host range
 * @img: the image
 * @offset: host offset
 * @bytes: length; every cluster the range touches changes
 * @delta: +1 or -1 (or more)
 *
 * A refcount would not go below 0 nor above the width's maximum: that
 * cluster is left alone and -EINVAL returned.
 *
 * Context: @img->meta_lock held.
 * Return: 0 or a negative errno.
 */
int qcow2_update_refcount(struct qcow2_image *img, u64 offset, u64 bytes,
			  s64 delta)
{
	u32 cb = img->lay.cluster_bits;
	u64 c, last = (offset + bytes - 1) >> cb;
	int ret = 0, err;

	lockdep_assert_held(&img->meta_lock);
	for (c = offset >> cb; c <= last; c++) {
		err = qcow2_change_refcount(img, c, delta, delta < 0);
		if (err && !ret)
			ret = err;
	}
	return ret;
}

/* Reserve file space ahead of the clusters handed out, in big steps. */
static void qcow2_prealloc(struct qcow2_image *img, u64 end)
{
	u64 step = max_t(u64, SZ_1M, 16 * img->lay.cluster_size);
	u64 target;

	if (!img->prealloc || end <= img->prealloc_end)
		return;
	target = round_up(end, step);
	/*
	 * A file system without fallocate, or one that is full, just gets
	 * its blocks as the data arrives; ENOSPC is reported by that write.
	 */
	if (vfs_fallocate(img->file, FALLOC_FL_KEEP_SIZE, img->prealloc_end,
			  target - img->prealloc_end))
		target = end;
	img->prealloc_end = target;
}

/*
 * The refcount table is full: make a bigger one at the first cluster the
 * old table cannot describe, preceded by the refcount blocks that describe
 * the new area itself, then switch the header to it.
 */
static int qcow2_grow_reftable(struct qcow2_image *img, u64 need)
{
	struct qcow2_layout *lay = &img->lay;
	u32 cb = lay->cluster_bits, rb_bits = qcow2_rb_bits(lay);
	u64 per_block = 1ULL << rb_bits, cs = lay->cluster_size;
	u64 old_n = img->reftable_entries, entries, t, b, m, j, c;
	struct {
		__be64 offset;
		__be32 clusters;
	} __packed hdr;
	u64 old_offset = lay->refcount_table_offset;
	u32 old_clusters = lay->refcount_table_clusters;
	__be64 *table;
	void *block;
	int ret;

	entries = max(need + 1, old_n + old_n / 2);
	for (;;) {
		t = DIV_ROUND_UP(entries * sizeof(u64), cs);
		b = DIV_ROUND_UP(t, per_block - 1);
		if ((t << cb) / sizeof(u64) >= old_n + b &&
		    (t << cb) / sizeof(u64) > need)
			break;
		entries = old_n + b + 1;
	}
	entries = (t << cb) / sizeof(u64);
	m = old_n << rb_bits;
	if ((t << cb) > QCOW2_MAX_REFTABLE_BYTES ||
	    ((m + b + t) << cb) > QCOW2_MAX_HOST_OFFSET) {
		pr_err_ratelimited("%s: the refcount table cannot grow further\n",
				   img->name);
		return -ENOSPC;
	}

	table = kvzalloc(t << cb, GFP_KERNEL);
	block = kvzalloc(cs, GFP_KERNEL);
	if (!table || !block) {
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(table, img->reftable, old_n * sizeof(u64));
	ret = qcow2_meta_claim(img, m << cb, b << cb, QCOW2_META_REFBLOCK);
	if (ret)
		goto out_free;
	ret = qcow2_meta_claim(img, (m + b) << cb, t << cb,
			       QCOW2_META_REFTABLE);
	if (ret) {
		qcow2_meta_del(img, m << cb, b << cb);
		goto out_free;
	}
	for (j = 0; j < b; j++) {
		memset(block, 0, cs);
		for (c = m + j * per_block;
		     c < m + (j + 1) * per_block && c < m + b + t; c++)
			qcow2_refcount_set(block, lay->refcount_order,
					   c & (per_block - 1), 1);
		table[old_n + j] = cpu_to_be64((m + j) << cb);
		qcow2_cache_forget(&img->rc_cache, (m + j) << cb, cs);
		ret = qcow2_write_meta(img, QCOW2_META_REFBLOCK, block, cs,
				       (m + j) << cb);
		if (ret)
			goto out_forget;
	}
	ret = qcow2_write_meta(img, QCOW2_META_REFTABLE, table, t << cb,
			       (m + b) << cb);
	if (!ret)
		ret = qcow2_sync(img);
	if (ret)
		goto out_forget;

	hdr.offset = cpu_to_be64((m + b) << cb);
	hdr.clusters = cpu_to_be32(t);
	ret = qcow2_write_header_field(img,
				       offsetof(struct qcow2_header_disk,
						refcount_table_offset),
				       &hdr, sizeof(hdr));
	if (!ret)
		ret = qcow2_sync(img);
	if (ret)	/* either table is consistent; a failed sync stops writes */
		goto out_forget;

	kvfree(img->reftable);
	img->reftable = table;
	img->reftable_entries = entries;
	lay->refcount_table_offset = (m + b) << cb;
	lay->refcount_table_clusters = t;
	qcow2_prealloc(img, (m + b + t) << cb);
	kvfree(block);
	/* The old table is dropped once the new header is surely in use. */
	return qcow2_defer_free(img, old_offset, (u64)old_clusters << cb);

out_forget:
	qcow2_meta_del(img, m << cb, (b + t) << cb);
out_free:
	kvfree(block);
	kvfree(table);
	return ret;
}

/*
 * Make sure a refcount block describes @cluster, which is free.  A new
 * block is put in @cluster itself, describing itself.  Return -EAGAIN when
 * the search for free clusters must start again.
 */
static int qcow2_ensure_refblock(struct qcow2_image *img, u64 cluster)
{
	const struct qcow2_layout *lay = &img->lay;
	u32 cb = lay->cluster_bits, rb_bits = qcow2_rb_bits(lay);
	u64 rt = cluster >> rb_bits, cs = lay->cluster_size;
	__be64 entry;
	void *block;
	int ret;

	if (rt < img->reftable_entries && img->reftable[rt])
		return 0;
	if (rt >= img->reftable_entries) {
		ret = qcow2_grow_reftable(img, rt);
		return ret ?: -EAGAIN;
	}

	block = kvzalloc(cs, GFP_KERNEL);
	if (!block)
		return -ENOMEM;
	qcow2_refcount_set(block, lay->refcount_order,
			   cluster & ((1ULL << rb_bits) - 1), 1);
	ret = qcow2_meta_claim(img, cluster << cb, cs, QCOW2_META_REFBLOCK);
	if (ret)
		goto out_free;
	qcow2_cache_forget(&img->rc_cache, cluster << cb, cs);
	qcow2_cache_forget(&img->cache, cluster << cb, cs);
	qcow2_prealloc(img, (cluster + 1) << cb);
	/* The block must be on disk before the table points to it. */
	ret = qcow2_write_meta(img, QCOW2_META_REFBLOCK, block, cs,
			       cluster << cb);
	if (!ret)
		ret = qcow2_sync(img);
	if (ret)
		goto out_forget;
	entry = cpu_to_be64(cluster << cb);
	ret = qcow2_write_meta(img, QCOW2_META_REFTABLE, &entry, sizeof(entry),
			       lay->refcount_table_offset + rt * sizeof(u64));
	if (ret)
		goto out_forget;
	img->reftable[rt] = entry;
	kvfree(block);
	return -EAGAIN;

out_forget:
	qcow2_meta_del(img, cluster << cb, cs);
out_free:
	kvfree(block);
	return ret;
}

/**
 * qcow2_alloc_clusters() - allocate contiguous host clusters
 * @img: the image
 * @n: how many
 * @offset: host offset of the first
 *
 * Their refcount becomes 1 in the refcount cache (dirty); the caller
 * links them or gives them back with qcow2_update_refcount(-1).
 *
 * Context: @img->meta_lock held.
 * Return: 0, -ENOSPC when the image cannot grow, or another errno.
 */
int qcow2_alloc_clusters(struct qcow2_image *img, u64 n, u64 *offset)
{
	u32 cb = img->lay.cluster_bits;
	u64 start, c, run, rc, limit = QCOW2_MAX_HOST_OFFSET >> cb;
	int ret;

	lockdep_assert_held(&img->meta_lock);
again:
	ret = qcow2_writable_check(img);
	if (ret)
		return ret;
	start = img->free_cluster_index;
	for (c = start, run = 0; run < n; c++) {
		if (c >= limit)
			return -ENOSPC;
		ret = qcow2_get_refcount(img, c, &rc);
		if (ret)
			return ret;
		if (rc) {
			start = c + 1;
			run = 0;
		} else {
			run++;
		}
		if (c == img->free_cluster_index && rc)
			img->free_cluster_index = c + 1;
	}
	for (c = start; c < start + n; c++) {
		ret = qcow2_ensure_refblock(img, c);
		if (ret == -EAGAIN)
			goto again;
		if (ret)
			return ret;
	}
	ret = qcow2_update_refcount(img, start << cb, n << cb, 1);
	if (ret)
		return ret;
	if (start == img->free_cluster_index)
		img->free_cluster_index = start + n;
	qcow2_prealloc(img, (start + n) << cb);
	*offset = start << cb;
	return 0;
}

/*
 * Each range drops one reference from every cluster it touches, so only
 * whole-cluster ranges may merge: two compressed clusters sharing a host
 * cluster hold two references to it.
 */
static int qcow2_free_list_add(struct qcow2_free_list *fl, u64 offset,
			       u64 bytes, u64 cs)
{
	struct qcow2_free *v, *last = fl->nr ? &fl->v[fl->nr - 1] : NULL;
	size_t cap;

	if (last && !((offset | bytes | last->offset | last->bytes) & (cs - 1)) &&
	    last->offset + last->bytes == offset) {
		last->bytes += bytes;
		return 0;
	}
	if (fl->nr == fl->cap) {
		cap = max_t(size_t, 64, fl->cap * 2);
		v = kvmalloc_array(cap, sizeof(*v), GFP_KERNEL);
		if (!v)
			return -ENOMEM;
		if (fl->nr)
			memcpy(v, fl->v, fl->nr * sizeof(*v));
		kvfree(fl->v);
		fl->v = v;
		fl->cap = cap;
	}
	fl->v[fl->nr].offset = offset;
	fl->v[fl->nr].bytes = bytes;
	fl->nr++;
	return 0;
}

/**
 * qcow2_defer_free() - drop a reference once its removal is on disk
 * @img: the image
 * @offset: host offset of the range
 * @bytes: its length
 *
 * Context: @img->meta_lock held; the L2 or L1 entry that held the
 * reference was changed already.
 * Return: 0, or -ENOMEM (the clusters leak, which is harmless).
 */
int qcow2_defer_free(struct qcow2_image *img, u64 offset, u64 bytes)
{
	int ret;

	lockdep_assert_held(&img->meta_lock);
	ret = qcow2_free_list_add(&img->frees_new, offset, bytes,
				  img->lay.cluster_size);
	if (ret)
		pr_warn_ratelimited("%s: out of memory: leaking %llu bytes at %#llx\n",
				    img->name, bytes, offset);
	return 0;
}

/**
 * qcow2_apply_frees() - drop the references whose removal is on disk
 * @img: the image
 *
 * Called after a flush.  The references listed before the previous flush
 * are dropped when every request that started before that flush is done:
 * none of them can still be reading or writing a cluster through a mapping
 * that no longer exists.  The references listed since then wait for the
 * next flush.
 *
 * Context: @img->meta_lock held.
 * Return: 0 or the first error.
 */
int qcow2_apply_frees(struct qcow2_image *img)
{
	unsigned int cur = img->io_epoch;
	struct qcow2_free_list tmp;
	int ret = 0, err;
	size_t i;

	lockdep_assert_held(&img->meta_lock);
	/* Pairs with the barrier in qcow2_io_start(). */
	smp_mb();
	if (atomic_read(&img->io_count[!cur]))
		return 0;
	for (i = 0; i < img->frees_old.nr; i++) {
		err = qcow2_update_refcount(img, img->frees_old.v[i].offset,
					    img->frees_old.v[i].bytes, -1);
		if (err && !ret)
			ret = err;
	}
	img->frees_old.nr = 0;
	tmp = img->frees_old;
	img->frees_old = img->frees_new;
	img->frees_new = tmp;
	/* New requests count in the other slot from now on. */
	smp_store_release(&img->io_epoch, !cur);
	return ret;
}

/**
 * qcow2_free_list_destroy() - free a list's memory
 * @fl: the list
 */
void qcow2_free_list_destroy(struct qcow2_free_list *fl)
{
	kvfree(fl->v);
	memset(fl, 0, sizeof(*fl));
}
