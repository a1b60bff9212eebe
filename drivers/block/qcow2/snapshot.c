// SPDX-License-Identifier: GPL-2.0
/*
 * Internal snapshots: list, create, delete and revert, as QEMU's
 * block/qcow2-snapshot.c does them, on a live device.
 *
 * Each operation runs with the queue frozen (no request in flight) and
 * the image's meta_lock held, starts from a flushed state and ends with a
 * flush, and changes the disk in QEMU's crash-safe order: references are
 * added before anything points to them, and dropped only after what
 * pointed to them is gone from the disk.  A crash at any point leaves the
 * old or the new snapshot table, and at most leaked clusters.
 */
#include <linux/blkdev.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include <uapi/linux/qcow2.h>

#include "qcow2.h"

/**
 * qcow2_snapshot_find() - look a snapshot up as QEMU does
 * @img: the image
 * @key: ID or name
 * @flags: QCOW2_SNAP_BY_ID, QCOW2_SNAP_BY_NAME, or neither: ID first,
 *	then name (qemu-img snapshot -a)
 *
 * Context: @img->meta_lock held.
 * Return: the index in @img->snapshots, or -ENOENT.
 */
int qcow2_snapshot_find(struct qcow2_image *img, const char *key,
			unsigned int flags)
{
	u32 i, n = img->lay.nb_snapshots;

	lockdep_assert_held(&img->meta_lock);
	if (!(flags & QCOW2_SNAP_BY_NAME))
		for (i = 0; i < n; i++)
			if (!strcmp(img->snapshots[i].id, key))
				return i;
	if (!(flags & QCOW2_SNAP_BY_ID))
		for (i = 0; i < n; i++)
			if (!strcmp(img->snapshots[i].name, key))
				return i;
	return -ENOENT;
}

/*
 * Under meta_lock: the snapshot a delete or revert may change: the image
 * takes writes, and no view shows it.  Return its index or an errno.
 */
static int qcow2_snapshot_find_changeable(struct qcow2_image *img,
					  const char *key, unsigned int flags)
{
	int i, ret;

	ret = qcow2_writable_check(img);
	if (ret)
		return ret;
	i = qcow2_snapshot_find(img, key, flags);
	if (i >= 0 && img->snapshots[i].views)
		return -EBUSY;
	return i;
}

/* Drop the reference every entry of an L2 table holds, or add one. */
static int qcow2_l2_refs(struct qcow2_image *img, u64 l2, s64 addend,
			 bool fix_copied)
{
	const struct qcow2_layout *lay = &img->lay;
	unsigned int slice_size = img->cache.slice_size;
	unsigned int per_slice = slice_size / sizeof(u64), j;
	u64 cs = lay->cluster_size, off, e, rc = 0;
	struct qcow2_mapping map;
	struct qcow2_slice *s;
	const char *why;
	int ret = 0;
	bool sole;

	for (off = 0; off < cs && !ret; off += slice_size) {
		ret = qcow2_cache_get(&img->cache, l2 + off, &s);
		if (ret)
			return ret;
		for (j = 0; j < per_slice; j++) {
			e = be64_to_cpu(s->data[j]);
			ret = qcow2_decode_l2_entry(lay, e, &map, &why);
			if (ret) {
				ret = qcow2_mark_corrupt(img, why, l2 + off + j * 8);
				break;
			}
			if (addend && map.type == QCOW2_CLUSTER_COMPRESSED)
				ret = qcow2_update_refcount(img, map.host_offset & ~511ULL,
							    map.csize + (map.host_offset & 511),
							    addend);
			if (map.type != QCOW2_CLUSTER_NORMAL &&
			    map.type != QCOW2_CLUSTER_ZERO_ALLOC)
				goto next;
			if (addend)
				ret = qcow2_update_refcount(img, map.host_offset,
							    cs, addend);
			if (ret || !fix_copied)
				goto next;
			/* COPIED says exactly "refcount is 1" (QEMU 2.1). */
			ret = qcow2_get_refcount(img, map.host_offset >>
						 lay->cluster_bits, &rc);
			sole = rc == 1;
			if (!ret && sole != map.copied) {
				e ^= QCOW2_OFLAG_COPIED;
				WRITE_ONCE(s->data[j], cpu_to_be64(e));
				qcow2_cache_mark_dirty(&img->cache, s);
			}
next:
			if (ret)
				break;
		}
		qcow2_slice_put(s);
	}
	return ret;
}

/**
 * qcow2_update_snapshot_refcount() - add @addend to every cluster a tree
 *	reaches, and make COPIED exact
 * @img: the image
 * @l1: the tree's L1 table, big endian
 * @l1_size: its entries
 * @addend: +1, -1, or 0 to only fix COPIED
 * @active: @l1 is the active table: its COPIED flags are made exact
 *
 * As QEMU's qcow2_update_snapshot_refcount(): each L2 table's data
 * clusters once per L1 that reaches it, then the table itself.  Dirty
 * metadata is written back along the way.  A refcount and the COPIED flag
 * of the entry pointing to it live in different clusters, and qemu-img
 * check calls either one on disk without the other a corruption: callers
 * that change COPIED set @img->one_epoch, so that both reach the disk
 * between the same two fsyncs (they have no allocation to order, the
 * caches being flushed first) and every flush point sees both or neither.
 *
 * Context: @img->meta_lock held, queue frozen.
 * Return: 0 or a negative errno.
 */
static int qcow2_update_snapshot_refcount(struct qcow2_image *img, __be64 *l1,
					  u32 l1_size, s64 addend, bool active)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 cs = lay->cluster_size, l1e, l2, rc = 0;
	const char *why;
	bool sole;
	u32 i;
	int ret;

	lockdep_assert_held(&img->meta_lock);
	for (i = 0; i < l1_size; i++) {
		l1e = be64_to_cpu(READ_ONCE(l1[i]));
		ret = qcow2_decode_l1_entry(lay, l1e, &l2, &why);
		if (ret)
			return qcow2_mark_corrupt(img, why, i);
		if (!l2)
			continue;
		ret = qcow2_l2_refs(img, l2, addend, active);
		if (!ret && addend)
			ret = qcow2_update_refcount(img, l2, cs, addend);
		if (!ret && active) {
			ret = qcow2_get_refcount(img, l2 >> lay->cluster_bits,
						 &rc);
			sole = rc == 1;
			if (!ret && sole != !!(l1e & QCOW2_OFLAG_COPIED)) {
				WRITE_ONCE(l1[i], cpu_to_be64(l1e ^
							      QCOW2_OFLAG_COPIED));
				set_bit(i, img->l1_dirty);
			}
		}
		if (!ret)
			ret = qcow2_meta_maybe_flush(img);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Write a new snapshot table holding @v[0..@n) and switch the header to
 * it; the old table's clusters are freed once the header is on disk.
 */
static int qcow2_write_snapshot_table(struct qcow2_image *img,
				      const struct qcow2_snapshot *v, u32 n)
{
	struct qcow2_layout *lay = &img->lay;
	u64 old_offset = lay->snapshots_offset, old_size = img->snapshots_size;
	u64 cs = lay->cluster_size, bytes = 0, offset = 0, end = 0;
	struct {
		__be32 nb_snapshots;
		__be64 snapshots_offset;
	} __packed hdr;
	u32 i, id_len, name_len;
	u8 *buf = NULL;
	int ret;

	for (i = 0; i < n; i++)
		bytes += qcow2_snapshot_entry_size(v[i].extra_len,
						   strlen(v[i].id),
						   strlen(v[i].name));
	if (bytes > QCOW2_MAX_SNAPSHOTS_BYTES)
		return -EFBIG;
	if (n) {
		buf = kvzalloc(bytes, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		for (i = 0; i < n; i++) {
			id_len = strlen(v[i].id);
			name_len = strlen(v[i].name);
			/* The table ends after the last name (QEMU's size). */
			bytes = end + sizeof(struct qcow2_snapshot_disk) +
				sizeof(struct qcow2_snapshot_extra_disk) +
				v[i].extra_len + id_len + name_len;
			end += qcow2_encode_snapshot(buf + end, &v[i].info,
						     v[i].extra, v[i].extra_len,
						     v[i].id, id_len, v[i].name,
						     name_len);
		}
		ret = qcow2_alloc_clusters(img, DIV_ROUND_UP(end, cs), &offset);
		if (ret)
			goto out_free;
		ret = qcow2_meta_claim(img, offset, end, QCOW2_META_SNAPSHOTS);
		if (ret)
			goto out_unref;
	}

	hdr.nb_snapshots = cpu_to_be32(n);
	hdr.snapshots_offset = cpu_to_be64(offset);
	ret = qcow2_switch_table(img, QCOW2_META_SNAPSHOTS, buf, end, offset,
				 offsetof(struct qcow2_header_disk,
					  nb_snapshots), &hdr, sizeof(hdr));
	if (ret)
		goto out_forget;
	kvfree(buf);

	lay->nb_snapshots = n;
	lay->snapshots_offset = offset;
	img->snapshots_size = n ? bytes : 0;
	if (old_size)
		qcow2_update_refcount(img, old_offset, old_size, -1);
	return 0;

out_forget:
	if (n)
		qcow2_meta_del(img, offset, end);
out_unref:
	if (n)
		qcow2_update_refcount(img, offset, end, -1);
out_free:
	kvfree(buf);
	return ret;
}

/* Read a snapshot's L1 table, padded with zeros to @entries. */
static __be64 *qcow2_read_snapshot_l1(struct qcow2_image *img,
				      const struct qcow2_snapshot_info *sn,
				      u32 entries)
{
	__be64 *l1;
	int ret;

	l1 = kvcalloc(max_t(u32, entries, 1), sizeof(u64), GFP_KERNEL);
	if (!l1)
		return ERR_PTR(-ENOMEM);
	ret = qcow2_read_exact(img->file, l1, (size_t)sn->l1_size * sizeof(u64),
			       sn->l1_table_offset);
	if (ret) {
		kvfree(l1);
		return ERR_PTR(ret);
	}
	return l1;
}

static void qcow2_snapshot_free(struct qcow2_snapshot *sn)
{
	kfree(sn->id);
	kfree(sn->name);
	kfree(sn->extra);
}

/**
 * qcow2_snapshot_list() - copy the snapshot list out
 * @img: the image
 * @arg: the request, @count and @entries filled by the caller
 * @out: user array of @arg->count entries of @arg->entry_size bytes
 *
 * Return: 0 or -EFAULT; @arg->count is set to the number of snapshots.
 */
int qcow2_snapshot_list(struct qcow2_image *img,
			struct qcow2_snapshot_list *arg, void __user *out)
{
	struct qcow2_snapshot_entry e;
	const struct qcow2_snapshot *sn;
	u32 i, n;
	int ret = 0;

	mutex_lock(&img->meta_lock);
	n = img->lay.nb_snapshots;
	for (i = 0; i < n && i < arg->count; i++) {
		sn = &img->snapshots[i];
		memset(&e, 0, sizeof(e));
		strscpy(e.id, sn->id, sizeof(e.id));
		strscpy(e.name, sn->name, sizeof(e.name));
		e.date_sec = sn->info.date_sec;
		e.date_nsec = sn->info.date_nsec;
		e.vm_clock_nsec = sn->info.vm_clock_nsec;
		e.vm_state_size = sn->info.vm_state_size;
		e.disk_size = sn->info.disk_size;
		e.icount = sn->info.icount;
		if (copy_to_user(out + (size_t)i * arg->entry_size, &e,
				 min_t(size_t, arg->entry_size, sizeof(e))) ||
		    (arg->entry_size > sizeof(e) &&
		     clear_user(out + (size_t)i * arg->entry_size + sizeof(e),
				arg->entry_size - sizeof(e)))) {
			ret = -EFAULT;
			break;
		}
	}
	mutex_unlock(&img->meta_lock);
	arg->count = n;
	return ret;
}

/* The next ID: highest numeric ID + 1, as QEMU's find_new_snapshot_id(). */
static void qcow2_snapshot_new_id(struct qcow2_image *img, char *id,
				  size_t len)
{
	unsigned long max = 0, v;
	u32 i;

	for (i = 0; i < img->lay.nb_snapshots; i++)
		if (!kstrtoul(img->snapshots[i].id, 10, &v) && v > max)
			max = v;
	snprintf(id, len, "%lu", max + 1);
}

/**
 * qcow2_snapshot_create() - take an internal snapshot
 * @img: the image
 * @name: its name, validated by the caller
 * @id: out: its ID (QCOW2_SNAPSHOT_ID_MAX + 1 bytes)
 *
 * Context: queue frozen.
 * Return: 0 or a negative errno (with a message).
 */
int qcow2_snapshot_create(struct qcow2_image *img, const char *name, char *id)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 cs = lay->cluster_size, l1_bytes = (u64)lay->l1_size * sizeof(u64);
	u32 n = lay->nb_snapshots;
	struct qcow2_snapshot *v, *sn;
	struct timespec64 now;
	u64 l1_offset = 0;
	int ret;

	if (lay->refcount_order == 0) {
		pr_err("%s: snapshot: 1-bit refcounts cannot count a second reference\n",
		       img->name);
		return -EOPNOTSUPP;
	}
	if (n >= QCOW2_MAX_SNAPSHOTS)
		return -EFBIG;
	v = kvcalloc(n + 1, sizeof(*v), GFP_KERNEL);
	if (!v)
		return -ENOMEM;

	mutex_lock(&img->meta_lock);
	ret = qcow2_writable_check(img);
	if (!ret)
		ret = qcow2_meta_flush_locked(img);
	if (ret)
		goto out_unlock;
	qcow2_snapshot_new_id(img, id, QCOW2_SNAPSHOT_ID_MAX + 1);
	sn = &v[n];
	sn->id = kstrdup(id, GFP_KERNEL);
	sn->name = kstrdup(name, GFP_KERNEL);
	if (!sn->id || !sn->name) {
		ret = -ENOMEM;
		goto out_unlock;
	}

	/* Every cluster the active tree reaches gains the snapshot's path. */
	img->one_epoch = true;
	ret = qcow2_update_snapshot_refcount(img, img->l1, lay->l1_size, 1,
					     true);
	if (ret)
		goto out_unlock;
	if (l1_bytes) {
		ret = qcow2_alloc_clusters(img, DIV_ROUND_UP(l1_bytes, cs),
					   &l1_offset);
		if (ret)
			goto out_unlock;
		ret = qcow2_meta_claim(img, l1_offset, l1_bytes,
				       QCOW2_META_SNAPSHOT_L1);
		if (!ret)
			ret = qcow2_write_meta(img, QCOW2_META_SNAPSHOT_L1,
					       img->l1, l1_bytes, l1_offset);
		if (ret)
			goto out_unlock;
	}
	ret = qcow2_meta_flush_locked(img);
	img->one_epoch = false;
	if (ret)
		goto out_unlock;

	ktime_get_real_ts64(&now);
	sn->info.l1_table_offset = l1_offset;
	sn->info.l1_size = lay->l1_size;
	sn->info.date_sec = now.tv_sec;
	sn->info.date_nsec = now.tv_nsec;
	sn->info.disk_size = lay->size;
	sn->info.icount = -1;
	memcpy(v, img->snapshots, n * sizeof(*v));
	ret = qcow2_write_snapshot_table(img, v, n + 1);
	if (ret)
		goto out_unlock;
	kvfree(img->snapshots);
	img->snapshots = v;
	v = NULL;
	ret = qcow2_meta_flush_locked(img);
	pr_info("%s: created snapshot %s (ID %s)\n", img->name, name, id);

out_unlock:
	/*
	 * On failure the references taken stay (leaks, as in QEMU), and so
	 * does the L1 copy: nothing points to it.
	 */
	img->one_epoch = false;
	mutex_unlock(&img->meta_lock);
	if (v) {
		qcow2_snapshot_free(&v[n]);
		kvfree(v);
	}
	return ret;
}

/**
 * qcow2_snapshot_delete() - delete a snapshot, freeing what only it used
 * @img: the image
 * @key: ID or name
 * @flags: QCOW2_SNAP_BY_* lookup flags
 *
 * Context: queue frozen.
 * Return: 0, -ENOENT, -EBUSY (a view shows it) or another errno.
 */
int qcow2_snapshot_delete(struct qcow2_image *img, const char *key,
			  unsigned int flags)
{
	struct qcow2_layout *lay = &img->lay;
	struct qcow2_snapshot gone, *v = NULL;
	u32 n = lay->nb_snapshots;
	__be64 *l1 = NULL;
	int i, ret;

	mutex_lock(&img->meta_lock);
	i = qcow2_snapshot_find_changeable(img, key, flags);
	if (i < 0) {
		ret = i;
		goto out_unlock;
	}
	ret = qcow2_meta_flush_locked(img);
	if (ret)
		goto out_unlock;
	gone = img->snapshots[i];
	l1 = qcow2_read_snapshot_l1(img, &gone.info, gone.info.l1_size);
	if (IS_ERR(l1)) {
		ret = PTR_ERR(l1);
		l1 = NULL;
		goto out_unlock;
	}
	if (n > 1) {
		v = kvcalloc(n - 1, sizeof(*v), GFP_KERNEL);
		if (!v) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		memcpy(v, img->snapshots, i * sizeof(*v));
		memcpy(v + i, img->snapshots + i + 1, (n - 1 - i) * sizeof(*v));
	}
	/* The table goes first: afterwards nothing reaches the tree. */
	ret = qcow2_write_snapshot_table(img, v, n - 1);
	if (ret)
		goto out_unlock;
	kvfree(img->snapshots);
	img->snapshots = v;
	v = NULL;

	img->one_epoch = true;
	ret = qcow2_update_snapshot_refcount(img, l1, gone.info.l1_size, -1,
					     false);
	if (!ret && gone.info.l1_size)
		ret = qcow2_update_refcount(img, gone.info.l1_table_offset,
					    (u64)gone.info.l1_size * sizeof(u64),
					    -1);
	/* Clusters only the snapshot shared are ours alone again. */
	if (!ret)
		ret = qcow2_update_snapshot_refcount(img, img->l1, lay->l1_size,
						     0, true);
	if (!ret)
		ret = qcow2_meta_flush_locked(img);
	img->one_epoch = false;
	if (ret)
		pr_err("%s: snapshot %s deleted, but freeing its clusters failed (%d); they leak\n",
		       img->name, gone.id, ret);
	else
		pr_info("%s: deleted snapshot %s (ID %s)\n", img->name,
			gone.name, gone.id);
	qcow2_snapshot_free(&gone);
	ret = 0;

out_unlock:
	mutex_unlock(&img->meta_lock);
	kvfree(v);
	kvfree(l1);
	return ret;
}

/* Move the active L1 to a bigger table, as QEMU's qcow2_grow_l1_table(). */
static int qcow2_grow_l1(struct qcow2_image *img, u32 entries)
{
	struct qcow2_layout *lay = &img->lay;
	u64 cs = lay->cluster_size, bytes = (u64)entries * sizeof(u64);
	u64 old_offset = lay->l1_table_offset;
	u64 old_bytes = (u64)lay->l1_size * sizeof(u64), offset;
	unsigned long *dirty;
	struct {
		__be32 l1_size;
		__be64 l1_table_offset;
	} __packed hdr;
	__be64 *l1;
	int ret;

	l1 = kvcalloc(entries, sizeof(u64), GFP_KERNEL);
	dirty = bitmap_zalloc(entries, GFP_KERNEL);
	if (!l1 || !dirty) {
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(l1, img->l1, old_bytes);
	ret = qcow2_alloc_clusters(img, DIV_ROUND_UP(bytes, cs), &offset);
	if (ret)
		goto out_free;
	ret = qcow2_meta_claim(img, offset, bytes, QCOW2_META_L1);
	if (ret)
		goto out_unref;
	hdr.l1_size = cpu_to_be32(entries);
	hdr.l1_table_offset = cpu_to_be64(offset);
	ret = qcow2_switch_table(img, QCOW2_META_L1, l1, bytes, offset,
				 offsetof(struct qcow2_header_disk, l1_size),
				 &hdr, sizeof(hdr));
	if (ret)
		goto out_forget;

	kvfree(img->l1);
	img->l1 = l1;
	bitmap_free(img->l1_dirty);
	img->l1_dirty = dirty;
	lay->l1_size = entries;
	lay->l1_table_offset = offset;
	if (old_bytes)
		qcow2_update_refcount(img, old_offset, old_bytes, -1);
	return 0;

out_forget:
	qcow2_meta_del(img, offset, bytes);
out_unref:
	qcow2_update_refcount(img, offset, bytes, -1);
out_free:
	bitmap_free(dirty);
	kvfree(l1);
	return ret;
}

/* Record the L2 tables of the (new) active L1 for the overlap check. */
static int qcow2_meta_add_l2s(struct qcow2_image *img)
{
	const struct qcow2_layout *lay = &img->lay;
	const char *why;
	u64 l2;
	u32 i;
	int ret;

	for (i = 0; i < lay->l1_size; i++) {
		ret = qcow2_decode_l1_entry(lay, be64_to_cpu(img->l1[i]), &l2,
					    &why);
		if (ret)
			return qcow2_mark_corrupt(img, why, i);
		if (!l2)
			continue;
		ret = qcow2_meta_add(img, l2, lay->cluster_size, QCOW2_META_L2);
		if (ret == -EEXIST)
			return qcow2_mark_corrupt(img, "L2 table overlaps other metadata",
						  l2);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * qcow2_snapshot_revert() - make the active state a snapshot's (goto)
 * @img: the image
 * @key: ID or name
 * @flags: QCOW2_SNAP_BY_* lookup flags
 * @new_size: set to the virtual size afterwards (the snapshot's)
 *
 * As QEMU's qcow2_snapshot_goto(): the disk size becomes the snapshot's,
 * the L1 grows if the snapshot's is longer, the snapshot's tree gains a
 * reference, its L1 is written over the active one, and the old active
 * tree loses its reference.
 *
 * Context: queue frozen; nobody else has the device open.
 * Return: 0, -ENOENT, -EBUSY (a view shows it) or another errno.
 */
int qcow2_snapshot_revert(struct qcow2_image *img, const char *key,
			  unsigned int flags, u64 *new_size)
{
	struct qcow2_layout *lay = &img->lay;
	struct qcow2_snapshot_info sn;
	__be64 *l1 = NULL, *old = NULL, size;
	u32 j;
	int i, ret;

	mutex_lock(&img->meta_lock);
	*new_size = lay->size;
	i = qcow2_snapshot_find_changeable(img, key, flags);
	if (i < 0) {
		ret = i;
		goto out_unlock;
	}
	sn = img->snapshots[i].info;
	ret = qcow2_meta_flush_locked(img);
	if (!ret && sn.l1_size > lay->l1_size)
		ret = qcow2_grow_l1(img, sn.l1_size);
	if (ret)
		goto out_unlock;
	l1 = qcow2_read_snapshot_l1(img, &sn, lay->l1_size);
	old = kvmalloc_array(lay->l1_size, sizeof(u64), GFP_KERNEL);
	if (old)
		memcpy(old, img->l1, (size_t)lay->l1_size * sizeof(u64));
	if (IS_ERR(l1) || !old) {
		ret = IS_ERR(l1) ? PTR_ERR(l1) : -ENOMEM;
		l1 = NULL;
		goto out_unlock;
	}

	/*
	 * The snapshot's tree gains the active path before L1 points to it;
	 * every table it reaches is then shared, so no entry of the L1
	 * written has COPIED (the snapshot's copy may say otherwise).
	 */
	for (j = 0; j < lay->l1_size; j++)
		l1[j] &= ~cpu_to_be64(QCOW2_OFLAG_COPIED);
	ret = qcow2_update_snapshot_refcount(img, l1, sn.l1_size, 1, false);
	if (!ret)
		ret = qcow2_meta_flush_locked(img);
	if (!ret)
		ret = qcow2_write_meta(img, QCOW2_META_L1, l1,
				       (size_t)lay->l1_size * sizeof(u64),
				       lay->l1_table_offset);
	if (!ret)
		ret = qcow2_sync(img);
	if (ret)
		goto out_unlock;
	for (j = 0; j < lay->l1_size; j++)
		WRITE_ONCE(img->l1[j], l1[j]);
	if (sn.disk_size != lay->size) {
		size = cpu_to_be64(sn.disk_size);
		ret = qcow2_write_header_field(img,
					       offsetof(struct qcow2_header_disk,
							size),
					       &size, sizeof(size));
		if (!ret)
			ret = qcow2_sync(img);
		if (ret)
			goto out_unlock;
		lay->size = sn.disk_size;
	}
	*new_size = lay->size;

	/* From here on only leaks can result from a failure. */
	ret = qcow2_meta_add_l2s(img);
	img->one_epoch = true;
	if (!ret)
		ret = qcow2_update_snapshot_refcount(img, old, lay->l1_size, -1,
						     false);
	if (!ret)
		ret = qcow2_update_snapshot_refcount(img, img->l1, lay->l1_size,
						     0, true);
	if (!ret)
		ret = qcow2_meta_flush_locked(img);
	img->one_epoch = false;
	if (!ret)
		pr_info("%s: reverted to snapshot %s (ID %s)\n", img->name,
			img->snapshots[i].name, img->snapshots[i].id);

out_unlock:
	mutex_unlock(&img->meta_lock);
	kvfree(old);
	kvfree(l1);
	return ret;
}

/**
 * qcow2_view_open() - set up a read-only view of a snapshot
 * @img: the image
 * @key: ID or name
 * @flags: QCOW2_SNAP_BY_* lookup flags
 * @viewp: the view
 *
 * While the view exists the snapshot cannot be deleted or reverted to,
 * so its tree never changes under the view.
 *
 * Return: 0, -ENOENT, or another errno.
 */
int qcow2_view_open(struct qcow2_image *img, const char *key,
		    unsigned int flags, struct qcow2_view **viewp)
{
	struct qcow2_snapshot *sn;
	struct qcow2_view *view;
	int i, ret;

	view = kzalloc(sizeof(*view), GFP_KERNEL);
	if (!view)
		return -ENOMEM;
	mutex_lock(&img->meta_lock);
	i = qcow2_snapshot_find(img, key, flags);
	if (i < 0) {
		ret = i;
		goto out_unlock;
	}
	sn = &img->snapshots[i];
	view->l1 = qcow2_read_snapshot_l1(img, &sn->info, sn->info.l1_size);
	if (IS_ERR(view->l1)) {
		ret = PTR_ERR(view->l1);
		view->l1 = NULL;
		goto out_unlock;
	}
	view->id = kstrdup(sn->id, GFP_KERNEL);
	if (!view->id) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	view->l1_size = sn->info.l1_size;
	view->size = sn->info.disk_size;
	sn->views++;
	mutex_unlock(&img->meta_lock);
	*viewp = view;
	return 0;

out_unlock:
	mutex_unlock(&img->meta_lock);
	kvfree(view->l1);
	kfree(view);
	return ret;
}

/**
 * qcow2_view_close() - release a view
 * @img: the image
 * @view: the view, or NULL
 */
void qcow2_view_close(struct qcow2_image *img, struct qcow2_view *view)
{
	int i;

	if (!view)
		return;
	mutex_lock(&img->meta_lock);
	i = qcow2_snapshot_find(img, view->id, QCOW2_SNAP_BY_ID);
	if (i >= 0)
		img->snapshots[i].views--;
	mutex_unlock(&img->meta_lock);
	kvfree(view->l1);
	kfree(view->id);
	kfree(view);
}
