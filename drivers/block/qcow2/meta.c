// SPDX-License-Identifier: GPL-2.0
/*
 * Writing metadata safely: the overlap check that stands before every
 * write to the image, the corrupt bit, and the flush that writes dirty
 * metadata in the order that keeps the image consistent at every instant:
 *
 *   refcount blocks -> fsync -> L2 slices -> fsync -> L1 entries -> fsync
 *
 * Data written to new clusters is in the file before the L2 entry that
 * points to it changes in memory, so the first fsync also orders data
 * before the L2 writes.  References are dropped only after the L2 or L1
 * change that removed them is on disk (refcount.c, the free lists).
 */
#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/ratelimit.h>
#include <linux/slab.h>

#include "qcow2.h"

static const char *const qcow2_meta_names[] = {
	[QCOW2_META_HEADER]		= "qcow2_header",
	[QCOW2_META_L1]			= "active L1 table",
	[QCOW2_META_REFTABLE]		= "refcount table",
	[QCOW2_META_REFBLOCK]		= "refcount block",
	[QCOW2_META_L2]			= "active L2 table",
	[QCOW2_META_SNAPSHOTS]		= "snapshot table",
	[QCOW2_META_SNAPSHOT_L1]	= "inactive L1 table",
	[QCOW2_META_BITMAPS]		= "bitmap directory",
};

static int qcow2_do_write(struct file *file, struct iov_iter *from, u64 pos,
			  bool direct)
{
	struct kiocb kiocb;
	ssize_t ret = 0;

	if (pos > LLONG_MAX || iov_iter_count(from) > LLONG_MAX - pos)
		return -EINVAL;
	init_sync_kiocb(&kiocb, file);
	if (!direct)
		kiocb.ki_flags &= ~IOCB_DIRECT;
	kiocb.ki_pos = pos;
	file_start_write(file);
	while (iov_iter_count(from)) {
		ret = file->f_op->write_iter(&kiocb, from);
		if (ret <= 0) {
			ret = ret ?: -EIO;
			break;
		}
		ret = 0;
	}
	file_end_write(file);
	return ret;
}

/**
 * qcow2_file_write() - write a kernel buffer to the image file
 * @file: the image file
 * @buf: the bytes
 * @len: how many
 * @pos: file offset
 *
 * Through the page cache, like qcow2_file_read(): the buffer need not be
 * aligned for direct I/O.  The caller ran the overlap check.
 *
 * Context: process context, may sleep.
 * Return: 0 or a negative errno (a short write is -EIO or -ENOSPC).
 */
int qcow2_file_write(struct file *file, const void *buf, size_t len, u64 pos)
{
	struct kvec kvec = { .iov_base = (void *)buf, .iov_len = len };
	struct iov_iter iter;

	iov_iter_kvec(&iter, ITER_SOURCE, &kvec, 1, len);
	return qcow2_do_write(file, &iter, pos, false);
}

/**
 * qcow2_file_write_iter() - write guest data synchronously
 * @file: the image file
 * @from: the data; consumed
 * @pos: file offset
 *
 * Direct I/O when the file was opened for it: the pages come from the
 * block layer, aligned as direct I/O needs.
 *
 * Return: 0 or a negative errno.
 */
int qcow2_file_write_iter(struct file *file, struct iov_iter *from, u64 pos)
{
	return qcow2_do_write(file, from, pos, true);
}

/**
 * qcow2_zero_iter() - an iterator over up to 16 pages of zeros
 * @bv: room for 16 bio_vecs
 * @len: bytes wanted
 * @iter: set to iterate over the zeros
 *
 * Built from the shared zero page, so nothing is allocated.
 *
 * Return: the bytes @iter covers, at most 16 pages.
 */
u64 qcow2_zero_iter(struct bio_vec *bv, u64 len, struct iov_iter *iter)
{
	u64 chunk = min_t(u64, len, QCOW2_ZERO_VECS * PAGE_SIZE);
	unsigned int i, n = DIV_ROUND_UP(chunk, PAGE_SIZE);

	for (i = 0; i < n; i++) {
		bv[i].bv_page = ZERO_PAGE(0);
		bv[i].bv_len = PAGE_SIZE;
		bv[i].bv_offset = 0;
	}
	iov_iter_bvec(iter, ITER_SOURCE, bv, n, chunk);
	return chunk;
}

/**
 * qcow2_write_zeroes_at() - write zeros to a range of the image file
 * @img: the image
 * @pos: file offset
 * @len: bytes
 *
 * The caller ran the overlap check.
 *
 * Return: 0 or a negative errno.
 */
int qcow2_write_zeroes_at(struct qcow2_image *img, u64 pos, u64 len)
{
	struct bio_vec bv[QCOW2_ZERO_VECS];
	struct iov_iter iter;
	u64 chunk;
	int ret;

	while (len) {
		chunk = qcow2_zero_iter(bv, len, &iter);
		ret = qcow2_do_write(img->file, &iter, pos, false);
		if (ret)
			return ret;
		pos += chunk;
		len -= chunk;
	}
	return 0;
}

/**
 * qcow2_meta_add() - record metadata clusters for the overlap check
 * @img: the image
 * @offset: host offset of the first cluster
 * @len: bytes; every cluster the range touches is recorded
 * @type: what they hold
 *
 * A cluster already recorded as another kind of metadata is left alone:
 * two tables claim it, and writing either would destroy the other.
 *
 * Context: under @img->meta_lock, or before the device exists.
 * Return: 0, -EEXIST for such a conflict, or -ENOMEM.
 */
int qcow2_meta_add(struct qcow2_image *img, u64 offset, u64 len,
		   enum qcow2_meta_type type)
{
	u32 cb = img->lay.cluster_bits;
	void *old, *new = xa_mk_value(type);
	u64 c, last;

	if (!len)
		return 0;
	last = (offset + len - 1) >> cb;
	for (c = offset >> cb; c <= last; c++) {
		old = xa_cmpxchg(&img->meta_map, c, NULL, new, GFP_NOIO);
		if (xa_is_err(old))
			return xa_err(old);
		if (old && old != new) {
			img->meta_conflict = xa_to_value(old);
			return -EEXIST;
		}
	}
	return 0;
}

/**
 * qcow2_meta_claim() - record newly allocated metadata clusters
 * @img: the image
 * @offset: host offset
 * @len: bytes
 * @type: what they will hold
 *
 * The clusters come from the allocator, so their refcount was 0: if they
 * are recorded as metadata already, the refcounts lie.
 *
 * Context: @img->meta_lock held.
 * Return: 0, -ENOMEM, or -EIO after marking the image corrupt.
 */
int qcow2_meta_claim(struct qcow2_image *img, u64 offset, u64 len,
		     enum qcow2_meta_type type)
{
	u32 cb = img->lay.cluster_bits;
	unsigned long idx = offset >> cb;
	void *entry;

	lockdep_assert_held(&img->meta_lock);
	entry = xa_find(&img->meta_map, &idx, (offset + len - 1) >> cb,
			XA_PRESENT);
	if (entry) {
		pr_err("%s: free cluster %#llx holds the %s\n", img->name,
		       (u64)idx << cb, qcow2_meta_names[xa_to_value(entry)]);
		return qcow2_mark_corrupt(img, "Preventing invalid allocation of metadata",
					  (u64)idx << cb);
	}
	return qcow2_meta_add(img, offset, len, type);
}

/**
 * qcow2_meta_del() - forget metadata clusters (they were freed)
 * @img: the image
 * @offset: host offset
 * @len: bytes
 */
void qcow2_meta_del(struct qcow2_image *img, u64 offset, u64 len)
{
	u32 cb = img->lay.cluster_bits;
	u64 c, last;

	if (!len)
		return;
	last = (offset + len - 1) >> cb;
	for (c = offset >> cb; c <= last; c++)
		xa_erase(&img->meta_map, c);
}

/*
 * Every table the image has at attach: header, active L1, reftable and
 * refcount blocks, active L2 tables, snapshot table and snapshot L1s
 * (QEMU's "cached" overlap template), and the bitmap directory.
 */
static int qcow2_meta_scan_add(struct qcow2_image *img, u64 offset, u64 len,
			       enum qcow2_meta_type type)
{
	img->meta_scanning = type;
	return qcow2_meta_add(img, offset, len, type);
}

static int qcow2_meta_scan(struct qcow2_image *img)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 i, off, cs = lay->cluster_size;
	const struct qcow2_snapshot_info *sn;
	const char *why;
	int ret;

	ret = qcow2_meta_scan_add(img, 0, cs, QCOW2_META_HEADER);
	if (!ret)
		ret = qcow2_meta_scan_add(img, lay->l1_table_offset,
					  (u64)lay->l1_size * sizeof(u64),
					  QCOW2_META_L1);
	if (!ret)
		ret = qcow2_meta_scan_add(img, lay->refcount_table_offset,
					  (u64)lay->refcount_table_clusters * cs,
					  QCOW2_META_REFTABLE);
	if (!ret)
		ret = qcow2_meta_scan_add(img, lay->snapshots_offset,
					  img->snapshots_size,
					  QCOW2_META_SNAPSHOTS);
	if (ret)
		return ret;
	for (i = 0; i < lay->nb_snapshots; i++) {
		sn = &img->snapshots[i].info;
		ret = qcow2_meta_scan_add(img, sn->l1_table_offset,
					  (u64)sn->l1_size * sizeof(u64),
					  QCOW2_META_SNAPSHOT_L1);
		if (ret)
			return ret;
	}
	for (i = 0; i < img->reftable_entries; i++) {
		ret = qcow2_decode_reftable_entry(lay,
						  be64_to_cpu(img->reftable[i]),
						  &off, &why);
		if (ret) {
			pr_err("attach %pD: refcount table entry %llu: %s\n",
			       img->file, i, why);
			return ret;
		}
		if (off)
			ret = qcow2_meta_scan_add(img, off, cs,
						  QCOW2_META_REFBLOCK);
		if (ret)
			return ret;
	}
	for (i = 0; i < lay->l1_size; i++) {
		ret = qcow2_decode_l1_entry(lay, be64_to_cpu(img->l1[i]), &off,
					    &why);
		if (ret) {
			pr_err("attach %pD: L1 entry %llu: %s\n", img->file, i,
			       why);
			return ret;
		}
		if (off)
			ret = qcow2_meta_scan_add(img, off, cs, QCOW2_META_L2);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * qcow2_meta_init() - set up what a writable image needs to write safely
 * @img: the image, header, L1, reftable and snapshots loaded
 *
 * Return: 0 or a negative errno (with a message).
 */
int qcow2_meta_init(struct qcow2_image *img)
{
	int ret;

	img->l1_dirty = bitmap_zalloc(max_t(u32, img->lay.l1_size, 1),
				      GFP_KERNEL);
	if (!img->l1_dirty)
		return -ENOMEM;
	ret = qcow2_meta_scan(img);
	if (ret == -ENOMEM)
		pr_err("attach %pD: out of memory for the overlap map\n",
		       img->file);
	if (ret == -EEXIST) {
		pr_err("attach %pD: %s overlaps the %s; cannot be opened read/write (run 'qemu-img check -r all')\n",
		       img->file, qcow2_meta_names[img->meta_scanning],
		       qcow2_meta_names[img->meta_conflict]);
		ret = -EUCLEAN;
	}
	return ret;
}

/**
 * qcow2_meta_destroy() - free what qcow2_meta_init() set up
 * @img: the image
 */
void qcow2_meta_destroy(struct qcow2_image *img)
{
	xa_destroy(&img->meta_map);
	bitmap_free(img->l1_dirty);
	img->l1_dirty = NULL;
}

/*
 * Set the corrupt bit in the header, as QEMU does, so that neither this
 * driver nor QEMU opens the image read-write again before `qemu-img check
 * -r all`; every later write fails.  Return true the first time only.
 */
static bool qcow2_set_corrupt(struct qcow2_image *img)
{
	__be64 v;

	if (test_and_set_bit(QCOW2_IMG_CORRUPT, &img->flags))
		return false;
	WRITE_ONCE(img->corrupt_logged, true);
	if (img->lay.version < 3)
		return true;	/* v2 has no feature bits: refuse writes only */
	v = cpu_to_be64(img->lay.incompatible_features | QCOW2_INCOMPAT_CORRUPT);
	if (qcow2_file_write(img->file, &v, sizeof(v),
			     offsetof(struct qcow2_header_disk,
				      incompatible_features)) ||
	    vfs_fsync(img->file, 1))
		pr_err("%s: could not set the corrupt bit\n", img->name);
	return true;
}

/**
 * qcow2_mark_corrupt() - stop writing to an inconsistent image
 * @img: the image
 * @what: what is wrong
 * @offset: where, for the message
 *
 * One message per device; see qcow2_set_corrupt().
 *
 * Return: -EIO, for the caller to pass on.
 */
int qcow2_mark_corrupt(struct qcow2_image *img, const char *what, u64 offset)
{
	if (img->read_only)
		return qcow2_corruption(img, what, offset);
	if (qcow2_set_corrupt(img))
		pr_err("%s: Marking image as corrupt: %s (offset %#llx); further corruption events will be suppressed\n",
		       img->name, what, offset);
	return -EIO;
}

/* The overlap check failed: a write would have hit @type metadata. */
static int qcow2_overlap(struct qcow2_image *img, unsigned long type,
			 u64 offset)
{
	if (qcow2_set_corrupt(img))
		pr_err("%s: Marking image as corrupt: Preventing invalid write on metadata (overlaps with %s) (offset %#llx); further corruption events will be suppressed\n",
		       img->name, type ? qcow2_meta_names[type] : "unrecorded space",
		       offset);
	return -EIO;
}

/**
 * qcow2_writable_check() - may the image be changed now?
 * @img: the image
 *
 * Return: 0, or -EIO once the image was marked corrupt or writing its
 * metadata failed.
 */
int qcow2_writable_check(struct qcow2_image *img)
{
	if (test_bit(QCOW2_IMG_CORRUPT, &img->flags) ||
	    test_bit(QCOW2_IMG_BROKEN, &img->flags))
		return -EIO;
	return 0;
}

/**
 * qcow2_check_data_write() - overlap check before writing guest data
 * @img: the image
 * @offset: host offset
 * @len: bytes
 *
 * Lockless: the map only gains clusters that were free (no data write can
 * be aimed at them) and loses clusters whose refcount reached 0.
 *
 * Return: 0, or -EIO after marking the image corrupt.
 */
int qcow2_check_data_write(struct qcow2_image *img, u64 offset, u64 len)
{
	u32 cb = img->lay.cluster_bits;
	unsigned long idx = offset >> cb;
	void *entry;

	if (!len)
		return 0;
	entry = xa_find(&img->meta_map, &idx, (offset + len - 1) >> cb,
			XA_PRESENT);
	if (!entry)
		return 0;
	return qcow2_overlap(img, xa_to_value(entry), (u64)idx << cb);
}

/**
 * qcow2_write_meta() - write metadata after the overlap check
 * @img: the image
 * @type: what the bytes are; every cluster they touch must be recorded
 *	as this kind of metadata
 * @buf: the bytes
 * @len: how many
 * @pos: file offset
 *
 * Return: 0, -EIO after marking the image corrupt, or a write error.
 */
int qcow2_write_meta(struct qcow2_image *img, enum qcow2_meta_type type,
		     const void *buf, size_t len, u64 pos)
{
	u32 cb = img->lay.cluster_bits;
	u64 c, last = (pos + len - 1) >> cb;
	unsigned long found;
	void *entry;

	if (!len)
		return 0;
	for (c = pos >> cb; c <= last; c++) {
		entry = xa_load(&img->meta_map, c);
		found = entry ? xa_to_value(entry) : 0;
		if (found != type) {
			pr_err("%s: %s write at %#llx refused\n", img->name,
			       qcow2_meta_names[type], pos);
			return qcow2_overlap(img, found, c << cb);
		}
	}
	return qcow2_file_write(img->file, buf, len, pos);
}

/**
 * qcow2_write_header_field() - rewrite part of the header
 * @img: the image
 * @field: offset of the field in struct qcow2_header_disk
 * @val: the new bytes, big endian
 * @len: their length
 *
 * The caller syncs when the change must be durable before what follows.
 *
 * Return: 0 or a negative errno.
 */
int qcow2_write_header_field(struct qcow2_image *img, size_t field,
			     const void *val, size_t len)
{
	return qcow2_write_meta(img, QCOW2_META_HEADER, val, len, field);
}

static int qcow2_write_l2_slice(struct qcow2_image *img, struct qcow2_slice *s)
{
	return qcow2_write_meta(img, QCOW2_META_L2, s->data,
				img->cache.slice_size, s->offset);
}

static int qcow2_write_rc_slice(struct qcow2_image *img, struct qcow2_slice *s)
{
	return qcow2_write_meta(img, QCOW2_META_REFBLOCK, s->data,
				img->rc_cache.slice_size, s->offset);
}

/* Write the dirty L1 entries, a run of adjacent ones at a time. */
static int qcow2_write_l1(struct qcow2_image *img)
{
	u32 n = img->lay.l1_size;
	unsigned long i = 0, end;
	int ret;

	for (;;) {
		i = find_next_bit(img->l1_dirty, n, i);
		if (i >= n)
			return 0;
		end = find_next_zero_bit(img->l1_dirty, n, i);
		ret = qcow2_write_meta(img, QCOW2_META_L1, &img->l1[i],
				       (end - i) * sizeof(u64),
				       img->lay.l1_table_offset +
				       i * sizeof(u64));
		if (ret)
			return ret;
		bitmap_clear(img->l1_dirty, i, end - i);
		i = end;
	}
}

/*
 * After a failed write or fsync the page cache may have dropped what it
 * could not write, so nothing written later could be trusted to be
 * ordered after it: stop writing, and leave the image in the last state
 * a successful sync made durable.
 */
static void qcow2_set_broken(struct qcow2_image *img, int err)
{
	if (!test_and_set_bit(QCOW2_IMG_BROKEN, &img->flags))
		pr_err("%s: writing the image failed (%d); the device refuses writes until it is attached again\n",
		       img->name, err);
}

/**
 * qcow2_sync() - fsync the image file
 * @img: the image
 *
 * Return: 0, or the error, after which the image takes no more writes.
 */
int qcow2_sync(struct qcow2_image *img)
{
	int ret = vfs_fsync(img->file, 1);

	if (ret)
		qcow2_set_broken(img, ret);
	return ret;
}

/*
 * Refcount blocks, fsync, L2 slices, fsync, L1 entries, fsync; or, with
 * @img->one_epoch, the three without the fsyncs between them.
 */
static int qcow2_write_back(struct qcow2_image *img)
{
	bool l1_dirty;
	int n, ret;

	l1_dirty = !bitmap_empty(img->l1_dirty, img->lay.l1_size);

	n = qcow2_cache_writeback(&img->rc_cache, qcow2_write_rc_slice, img);
	if (n < 0)
		return n;
	if (n > 0 && !img->one_epoch &&
	    (qcow2_cache_dirty(&img->cache) || l1_dirty)) {
		ret = vfs_fsync(img->file, 1);
		if (ret)
			return ret;
	}
	n = qcow2_cache_writeback(&img->cache, qcow2_write_l2_slice, img);
	if (n < 0)
		return n;
	if (l1_dirty) {
		if (n > 0 && !img->one_epoch) {
			ret = vfs_fsync(img->file, 1);
			if (ret)
				return ret;
		}
		ret = qcow2_write_l1(img);
		if (ret)
			return ret;
	}
	return vfs_fsync(img->file, 1);
}

/**
 * qcow2_meta_flush_locked() - make everything written so far durable
 * @img: the image
 *
 * Writes dirty refcount slices, syncs, writes dirty L2 slices, syncs,
 * writes dirty L1 entries and syncs; then drops the references whose
 * removal is now on disk (they reach the disk at the next flush).  A
 * failed step stops the flush: what is on disk stays consistent, and the
 * image takes no more writes until it is attached again.
 *
 * Context: process context, @img->meta_lock held.
 * Return: 0 or a negative errno.
 */
int qcow2_meta_flush_locked(struct qcow2_image *img)
{
	int ret;

	lockdep_assert_held(&img->meta_lock);
	if (img->read_only)
		return 0;
	ret = qcow2_writable_check(img);
	if (ret)
		return ret;
	ret = qcow2_write_back(img);
	if (ret) {
		qcow2_set_broken(img, ret);
		return ret;
	}
	/* A refcount that cannot drop is reported there; the rest goes on. */
	qcow2_apply_frees(img);
	return 0;
}

/**
 * qcow2_switch_table() - make a new table durable, then the header field
 *	that points to it
 * @img: the image
 * @type: what the table is
 * @table: its bytes, or NULL when the header points to no table any more
 * @len: their length
 * @offset: where the table goes (recorded in the overlap map already)
 * @field: offset of the header field
 * @hdr: the field's new bytes
 * @hdr_len: their length
 *
 * The new clusters' refcounts first (flush), then the table (sync), then
 * the header (sync): a crash leaves the old table or the new one in use.
 *
 * Context: @img->meta_lock held.
 * Return: 0 or a negative errno.
 */
int qcow2_switch_table(struct qcow2_image *img, enum qcow2_meta_type type,
		       const void *table, size_t len, u64 offset, size_t field,
		       const void *hdr, size_t hdr_len)
{
	int ret;

	lockdep_assert_held(&img->meta_lock);
	ret = qcow2_meta_flush_locked(img);
	if (!ret && len)
		ret = qcow2_write_meta(img, type, table, len, offset);
	if (!ret)
		ret = qcow2_sync(img);
	if (!ret)
		ret = qcow2_write_header_field(img, field, hdr, hdr_len);
	if (!ret)
		ret = qcow2_sync(img);
	return ret;
}

/**
 * qcow2_flush() - REQ_OP_FLUSH: metadata in order, then the file
 * @img: the image
 *
 * Return: 0 or a negative errno.
 */
int qcow2_flush(struct qcow2_image *img)
{
	int ret;

	if (img->read_only)
		return 0;
	mutex_lock(&img->meta_lock);
	ret = qcow2_meta_flush_locked(img);
	mutex_unlock(&img->meta_lock);
	return ret;
}

/**
 * qcow2_meta_maybe_flush() - bound the dirty metadata
 * @img: the image
 *
 * Dirty slices cannot be evicted; when they fill half of a cache, write
 * them back now instead of waiting for the next flush.
 *
 * Context: @img->meta_lock held.
 * Return: 0 or a negative errno.
 */
int qcow2_meta_maybe_flush(struct qcow2_image *img)
{
	lockdep_assert_held(&img->meta_lock);
	if (qcow2_cache_dirty(&img->cache) <= img->cache.max_slices / 2 &&
	    qcow2_cache_dirty(&img->rc_cache) <= img->rc_cache.max_slices / 2)
		return 0;
	return qcow2_meta_flush_locked(img);
}
