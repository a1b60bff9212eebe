// SPDX-License-Identifier: GPL-2.0
/*
 * Opening an image: read the header cluster, have format.c validate it,
 * apply the driver's policy (what it refuses, what it only warns about),
 * load the active L1 table and the snapshot table.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "qcow2.h"

/* Largest snapshot table entry: fixed part, extra data, ID, name. */
#define QCOW2_MAX_SNAPSHOT_ENTRY \
	(sizeof(struct qcow2_snapshot_disk) + QCOW2_MAX_SNAPSHOT_EXTRA + \
	 2 * U16_MAX + 8)
#define QCOW2_SNAPSHOT_WINDOW	(2 * QCOW2_MAX_SNAPSHOT_ENTRY)

/**
 * qcow2_corruption() - report metadata the driver cannot trust
 * @img: the image
 * @what: what is wrong
 * @offset: host offset of the bad metadata, or guest offset, for context
 *
 * A read-only image is not changed: the message is printed once per
 * device and the I/O fails.  A writable one is marked corrupt.
 *
 * Return: -EIO, for the caller to pass on.
 */
int qcow2_corruption(struct qcow2_image *img, const char *what, u64 offset)
{
	/* A writable image must not be changed any further. */
	if (!img->read_only)
		return qcow2_mark_corrupt(img, what, offset);
	if (!READ_ONCE(img->corrupt_logged)) {
		WRITE_ONCE(img->corrupt_logged, true);
		pr_err("%s: image is corrupt: %s (offset %#llx); further corruption events will be suppressed\n",
		       img->name, what, offset);
	}
	return -EIO;
}

/**
 * qcow2_file_read() - read metadata or compressed data from the image
 * @file: the image file
 * @buf: kernel buffer
 * @len: bytes wanted
 * @pos: file offset
 *
 * Always through the page cache, even when the file was opened with
 * O_DIRECT for the data path: metadata buffers and compressed ranges
 * are not aligned for direct I/O, and are small.
 *
 * Context: process context, may sleep.
 * Return: bytes read (short at end of file) or negative errno.
 */
ssize_t qcow2_file_read(struct file *file, void *buf, size_t len, u64 pos)
{
	struct kvec kvec = { .iov_base = buf, .iov_len = len };
	struct iov_iter iter;
	struct kiocb kiocb;
	size_t done = 0;
	ssize_t ret;

	if (pos > LLONG_MAX || len > LLONG_MAX - pos)
		return -EINVAL;
	init_sync_kiocb(&kiocb, file);
	kiocb.ki_flags &= ~IOCB_DIRECT;
	kiocb.ki_pos = pos;
	iov_iter_kvec(&iter, ITER_DEST, &kvec, 1, len);
	while (done < len) {
		ret = file->f_op->read_iter(&kiocb, &iter);
		if (ret < 0)
			return ret;
		if (!ret)
			break;
		done += ret;
	}
	return done;
}

/* Read exactly @len bytes at @pos; a short read is -EIO. */
int qcow2_read_exact(struct file *file, void *buf, size_t len, u64 pos)
{
	ssize_t ret = qcow2_file_read(file, buf, len, pos);

	if (ret < 0)
		return ret;
	return (size_t)ret == len ? 0 : -EIO;
}

/* Refuse what the driver does not implement yet, warn about the rest. */
static int qcow2_check_policy(struct qcow2_image *img, struct file *file,
			      bool read_only)
{
	const struct qcow2_layout *lay = &img->lay;

	if (lay->backing_file_offset) {
		pr_err("attach %pD: backing files are not supported yet\n",
		       file);
		return -EOPNOTSUPP;
	}
	if (lay->incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
		if (!read_only) {
			pr_err("attach %pD: image is corrupt; cannot be opened read/write\n",
			       file);
			return -EACCES;
		}
		pr_warn("attach %pD: image is marked corrupt; reading it anyway\n",
			file);
	}
	if (lay->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
		if (!read_only) {
			pr_err("attach %pD: image is dirty; run 'qemu-img check -r all' first\n",
			       file);
			return -EUCLEAN;
		}
		pr_warn("attach %pD: image is dirty (refcounts may be stale); reading it anyway\n",
			file);
	}
	if (read_only)
		return 0;
	if (lay->has_bitmaps_ext &&
	    (lay->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
		/*
		 * Writing without updating the bitmaps would make QEMU drop
		 * them and count their clusters as leaks.
		 */
		pr_err("attach %pD: image has persistent dirty bitmaps, which this driver cannot keep up to date; attach it read-only, or remove them with 'qemu-img bitmap --remove'\n",
		       file);
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * A writer that does not know an autoclear feature must clear its bit, so
 * that the program that set it knows the data it describes is stale.
 */
static int qcow2_clear_autoclear(struct qcow2_image *img)
{
	struct qcow2_layout *lay = &img->lay;
	__be64 v;
	int ret;

	if (lay->version < 3 || !(lay->autoclear_features & ~QCOW2_AUTOCLEAR_KNOWN))
		return 0;
	v = cpu_to_be64(lay->autoclear_features & QCOW2_AUTOCLEAR_KNOWN);
	ret = qcow2_write_header_field(img, offsetof(struct qcow2_header_disk,
						     autoclear_features),
				       &v, sizeof(v));
	if (!ret)
		ret = qcow2_sync(img);
	if (ret) {
		pr_err("attach %pD: could not clear unknown autoclear features\n",
		       img->file);
		return ret;
	}
	pr_info("attach %pD: cleared unknown autoclear features %#llx\n",
		img->file, lay->autoclear_features & ~QCOW2_AUTOCLEAR_KNOWN);
	lay->autoclear_features &= QCOW2_AUTOCLEAR_KNOWN;
	return 0;
}

static int qcow2_load_header(struct qcow2_image *img, struct file *file,
			     u64 file_size)
{
	size_t len = min_t(u64, file_size, 1U << QCOW2_MAX_CLUSTER_BITS);
	const char *why = NULL;
	void *buf;
	int ret;

	if (file_size < QCOW2_V2_HEADER_SIZE) {
		pr_err("attach %pD: file too small to be a qcow2 image\n",
		       file);
		return -EINVAL;
	}
	buf = kvmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = qcow2_read_exact(file, buf, len, 0);
	if (ret)
		goto out_free;

	ret = qcow2_parse_header(buf, len, file_size, &img->lay, &why);
	if (!ret)
		ret = qcow2_parse_extensions(buf,
					     min_t(u64, len,
						   img->lay.cluster_size),
					     &img->lay, &why);
	if (ret)
		pr_err("attach %pD: %s\n", file, why ? why : "invalid header");
out_free:
	kvfree(buf);
	return ret;
}

static int qcow2_load_l1(struct qcow2_image *img)
{
	const struct qcow2_layout *lay = &img->lay;
	size_t bytes = (size_t)lay->l1_size * sizeof(u64);

	if (!bytes)
		return 0;
	img->l1 = kvmalloc(bytes, GFP_KERNEL);
	if (!img->l1)
		return -ENOMEM;
	return qcow2_read_exact(img->file, img->l1, bytes,
				lay->l1_table_offset);
}

static char *qcow2_strndup(const u8 *s, u32 len)
{
	char *p = kmalloc(len + 1, GFP_KERNEL);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/*
 * Read and validate the whole snapshot table through a window that always
 * holds at least one maximal entry.
 */
static int qcow2_load_snapshots(struct qcow2_image *img, u64 file_size)
{
	const struct qcow2_layout *lay = &img->lay;
	u64 pos = lay->snapshots_offset, win_pos = 0, table_bytes = 0;
	struct qcow2_snapshot_info *sn;
	u32 extra_len, extra_off;
	size_t win_len = 0;
	const char *why;
	u8 *win;
	u32 i;
	int ret = 0;

	if (!lay->nb_snapshots)
		return 0;
	img->snapshots = kvcalloc(lay->nb_snapshots, sizeof(*img->snapshots),
				  GFP_KERNEL);
	if (!img->snapshots)
		return -ENOMEM;
	win = kvmalloc(QCOW2_SNAPSHOT_WINDOW, GFP_KERNEL);
	if (!win)
		return -ENOMEM;

	for (i = 0; i < lay->nb_snapshots; i++) {
		sn = &img->snapshots[i].info;
		if (pos >= file_size) {
			why = "Snapshot table entry outside the image file";
			ret = -EINVAL;
			break;
		}
		if (!win_len || pos + QCOW2_MAX_SNAPSHOT_ENTRY > win_pos + win_len) {
			win_pos = pos;
			win_len = min_t(u64, QCOW2_SNAPSHOT_WINDOW,
					file_size - pos);
			ret = qcow2_read_exact(img->file, win, win_len, win_pos);
			if (ret) {
				why = "Could not read the snapshot table";
				break;
			}
		}
		ret = qcow2_parse_snapshot(lay, win + (pos - win_pos),
					   win_len - (pos - win_pos), file_size,
					   sn, &why);
		if (ret)
			break;
		table_bytes += sn->entry_len;
		if (table_bytes > QCOW2_MAX_SNAPSHOTS_BYTES) {
			why = "Snapshot table is too big";
			ret = -EFBIG;
			break;
		}
		img->snapshots[i].id = qcow2_strndup(win + (pos - win_pos) +
						     sn->id_offset, sn->id_len);
		img->snapshots[i].name = qcow2_strndup(win + (pos - win_pos) +
						       sn->name_offset,
						       sn->name_len);
		extra_len = qcow2_snapshot_unknown_extra(sn, &extra_off);
		if (extra_len)
			img->snapshots[i].extra = kmemdup(win + (pos - win_pos) +
							  extra_off, extra_len,
							  GFP_KERNEL);
		img->snapshots[i].extra_len = extra_len;
		if (!img->snapshots[i].id || !img->snapshots[i].name ||
		    (extra_len && !img->snapshots[i].extra)) {
			why = "out of memory";
			ret = -ENOMEM;
			break;
		}
		/* QEMU's table ends after the last name, without padding. */
		img->snapshots_size = pos - lay->snapshots_offset +
				      sn->name_offset + sn->name_len;
		pos += sn->entry_len;
	}
	if (ret)
		pr_err("attach %pD: snapshot %u: %s\n", img->file, i, why);
	kvfree(win);
	return ret;
}

/* tmpfs: file data is page cache only; fallocate() allocates memory. */
static bool qcow2_file_in_memory(struct file *file)
{
	return file_inode(file)->i_sb->s_magic == TMPFS_MAGIC;
}

/* What writing needs beyond reading: refcounts, overlap map, header. */
static int qcow2_open_writable(struct qcow2_image *img, u64 cache_size)
{
	u64 cs = img->lay.cluster_size;
	int ret;

	ret = qcow2_load_reftable(img);
	if (ret)
		return ret;
	ret = qcow2_meta_init(img);
	if (ret)
		return ret;
	/* QEMU keeps 4 clusters of refcounts; a quarter of the L2 budget here. */
	ret = qcow2_cache_init(&img->rc_cache, img->file,
			       min_t(u64, cs, QCOW2_MAX_SLICE_SIZE),
			       max_t(u64, 4 * cs, cache_size / 4),
			       "qcow2-refcount-cache");
	if (ret)
		return ret;
	img->prealloc_end = round_up(i_size_read(file_inode(img->file)), cs);
	/*
	 * Reserving space ahead keeps a file system's extents long; on tmpfs
	 * it would only fill clusters with zeroed pages the guest may never
	 * write.
	 */
	img->prealloc = !qcow2_file_in_memory(img->file);
	return qcow2_clear_autoclear(img);
}

/*
 * Whether ->queue_rq may do a request's file I/O itself (fast.c)
 * depends on whether that I/O can wait for a device.
 */
static enum qcow2_inline qcow2_inline_mode(struct file *file)
{
	if (!qcow2_inline_io)
		return QCOW2_INLINE_NEVER;
	if (file->f_flags & O_DIRECT)
		return QCOW2_INLINE_ASYNC;
	if (file->f_mode & FMODE_NOWAIT)
		return QCOW2_INLINE_NOWAIT;
	if (qcow2_file_in_memory(file))
		return QCOW2_INLINE_MEMORY;
	return QCOW2_INLINE_NEVER;
}

/**
 * qcow2_image_open() - validate an image file and set up its state
 * @file: the image; not consumed (see qcow2_image_close())
 * @read_only: the device will not write
 * @cache_size: bytes of L2 cache
 * @imgp: the new image on success
 *
 * Every refusal prints one line naming the image and the reason.
 *
 * Context: process context, may sleep.
 * Return: 0 or negative errno.
 */
int qcow2_image_open(struct file *file, bool read_only, u64 cache_size,
		     struct qcow2_image **imgp)
{
	u64 file_size = i_size_read(file_inode(file));
	struct qcow2_image *img;
	int ret;

	img = kzalloc(sizeof(*img), GFP_KERNEL);
	if (!img)
		return -ENOMEM;
	img->read_only = read_only;
	mutex_init(&img->meta_lock);
	xa_init(&img->inflight);
	xa_init(&img->meta_map);
	atomic_set(&img->io_count[0], 0);
	atomic_set(&img->io_count[1], 0);
	qcow2_decomp_init(&img->decomp);
	strscpy(img->name, "qcow2", sizeof(img->name));

	ret = qcow2_load_header(img, file, file_size);
	if (ret)
		goto out_free;
	ret = qcow2_check_policy(img, file, read_only);
	if (ret)
		goto out_free;

	img->file = file;
	img->inline_mode = qcow2_inline_mode(file);
	ret = qcow2_load_l1(img);
	if (ret) {
		pr_err("attach %pD: could not read the L1 table\n", file);
		goto out_free;
	}
	ret = qcow2_load_snapshots(img, file_size);
	if (ret)
		goto out_free;

	ret = qcow2_cache_init(&img->cache, file,
			       min_t(u64, img->lay.cluster_size,
				     QCOW2_MAX_SLICE_SIZE),
			       cache_size, "qcow2-l2-cache");
	if (ret)
		goto out_free;
	if (!read_only) {
		ret = qcow2_open_writable(img, cache_size);
		if (ret)
			goto out_free;
	}

	*imgp = img;
	return 0;

out_free:
	/* The caller still owns @file. */
	img->file = NULL;
	qcow2_image_close(img);
	return ret;
}

/**
 * qcow2_image_shutdown() - write everything back before a clean detach
 * @img: the image; no request is in flight any more
 *
 * Flushes until the dropped references are on disk too (each flush
 * applies the frees of the one before), then gives back the file space
 * reserved past the end.
 *
 * Context: process context.
 */
void qcow2_image_shutdown(struct qcow2_image *img)
{
	u64 end;
	int i, ret = 0;

	if (!img || img->read_only)
		return;
	mutex_lock(&img->meta_lock);
	for (i = 0; i < 4 && !ret && !qcow2_writable_check(img); i++) {
		ret = qcow2_meta_flush_locked(img);
		if (!img->frees_new.nr && !img->frees_old.nr &&
		    !qcow2_cache_dirty(&img->rc_cache))
			break;
	}
	end = round_up(i_size_read(file_inode(img->file)), img->lay.cluster_size);
	if (img->prealloc_end > end)
		vfs_fallocate(img->file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      end, img->prealloc_end - end);
	mutex_unlock(&img->meta_lock);
	if (ret)
		pr_err("%s: could not write back metadata at detach: %d\n",
		       img->name, ret);
}

/**
 * qcow2_image_close() - free an image and drop its file reference
 * @img: the image, or NULL
 *
 * Context: process context; no I/O may be in flight.
 */
void qcow2_image_close(struct qcow2_image *img)
{
	u32 i;

	if (!img)
		return;
	qcow2_cache_destroy(&img->cache);
	qcow2_cache_destroy(&img->rc_cache);
	qcow2_meta_destroy(img);
	xa_destroy(&img->inflight);
	qcow2_free_list_destroy(&img->frees_new);
	qcow2_free_list_destroy(&img->frees_old);
	kvfree(img->reftable);
	qcow2_decomp_destroy(&img->decomp);
	if (img->snapshots) {
		for (i = 0; i < img->lay.nb_snapshots; i++) {
			kfree(img->snapshots[i].id);
			kfree(img->snapshots[i].name);
			kfree(img->snapshots[i].extra);
		}
		kvfree(img->snapshots);
	}
	kvfree(img->l1);
	if (img->file)
		fput(img->file);
	kfree(img);
}
