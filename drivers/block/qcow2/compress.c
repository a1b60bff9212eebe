// SPDX-License-Identifier: GPL-2.0
/*
 * Compressed clusters: raw deflate (QEMU calls it "zlib", window 2^12)
 * and zstd, decoded as QEMU's qcow2-threads.c does.  The compressed size
 * is only known to 512-byte precision, so trailing bytes after the
 * stream are expected and ignored.
 *
 * The last decompressed cluster is kept: a sequential reader asking for
 * a cluster in small pieces decompresses it once.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include "qcow2.h"

#define QCOW2_DEFLATE_WBITS	12

void qcow2_decomp_init(struct qcow2_decomp *d)
{
	mutex_init(&d->lock);
	d->cached_offset = U64_MAX;
}

void qcow2_decomp_destroy(struct qcow2_decomp *d)
{
	kvfree(d->in);
	kvfree(d->out);
	kvfree(d->zlib_ws);
	kvfree(d->zstd_ws);
	mutex_destroy(&d->lock);
}

/*
 * Buffers are only needed by images that have compressed clusters.  The
 * caller runs in a memalloc_noio scope, which makes GFP_KERNEL safe here
 * and lets kvmalloc() fall back to vmalloc for 2 MiB clusters.
 */
static int qcow2_decomp_alloc(struct qcow2_image *img)
{
	struct qcow2_decomp *d = &img->decomp;
	size_t cs = img->lay.cluster_size;

	lockdep_assert_held(&d->lock);
	if (!d->in) {
		d->in = kvmalloc(2 * cs, GFP_KERNEL);
		if (!d->in)
			return -ENOMEM;
	}
	if (!d->out) {
		d->out = kvmalloc(cs, GFP_KERNEL);
		if (!d->out)
			return -ENOMEM;
	}
	return 0;
}

static int qcow2_inflate(struct qcow2_decomp *d, size_t in_len, size_t out_len)
{
	struct z_stream_s strm = {};
	int ret;

	if (!d->zlib_ws) {
		d->zlib_ws = kvmalloc(zlib_inflate_workspacesize(), GFP_KERNEL);
		if (!d->zlib_ws)
			return -ENOMEM;
	}
	strm.workspace = d->zlib_ws;
	strm.next_in = d->in;
	strm.avail_in = in_len;
	strm.next_out = d->out;
	strm.avail_out = out_len;
	if (zlib_inflateInit2(&strm, -QCOW2_DEFLATE_WBITS) != Z_OK)
		return -EIO;
	ret = zlib_inflate(&strm, Z_FINISH);
	zlib_inflateEnd(&strm);
	/*
	 * Z_BUF_ERROR with a full output is fine: the input length is
	 * rounded to sectors, so the stream end may not have been seen.
	 */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && !strm.avail_out)
		return 0;
	return -EIO;
}

static int qcow2_unzstd(struct qcow2_decomp *d, size_t in_len, size_t out_len)
{
	size_t max_window = max_t(size_t, 2 * out_len, SZ_128K);
	zstd_in_buffer in = { .src = d->in, .size = in_len };
	zstd_out_buffer out = { .dst = d->out, .size = out_len };
	size_t last_in, last_out, zret = 0;
	zstd_dstream *ds;

	if (!d->zstd_ws) {
		d->zstd_ws_size = zstd_dstream_workspace_bound(max_window);
		d->zstd_ws = kvmalloc(d->zstd_ws_size, GFP_KERNEL);
		if (!d->zstd_ws)
			return -ENOMEM;
	}
	ds = zstd_init_dstream(max_window, d->zstd_ws, d->zstd_ws_size);
	if (!ds)
		return -EIO;

	/* The stream may span frames; stop when the cluster is full. */
	while (out.pos < out.size) {
		last_in = in.pos;
		last_out = out.pos;
		zret = zstd_decompress_stream(ds, &out, &in);
		if (zstd_is_error(zret))
			return -EIO;
		if (in.pos == last_in && out.pos == last_out)
			return -EIO;	/* no progress: truncated input */
	}
	/* A frame that still wants input was cut short. */
	return zret ? -EIO : 0;
}

/**
 * qcow2_read_compressed() - read part of a compressed cluster
 * @img: the image
 * @map: a COMPRESSED mapping, already bounds-checked
 * @in_cluster: offset of the wanted bytes within the guest cluster
 * @to: destination
 * @len: bytes wanted, within one cluster
 *
 * Context: process context, may sleep; serialised per image.
 * Return: 0, -EIO for data that does not decompress, or an I/O error.
 */
int qcow2_read_compressed(struct qcow2_image *img,
			  const struct qcow2_mapping *map, u64 in_cluster,
			  struct iov_iter *to, size_t len)
{
	struct qcow2_decomp *d = &img->decomp;
	size_t cs = img->lay.cluster_size;
	ssize_t got;
	int ret;

	mutex_lock(&d->lock);
	if (d->cached_offset == map->host_offset)
		goto copy;

	ret = qcow2_decomp_alloc(img);
	if (ret)
		goto out_unlock;
	d->cached_offset = U64_MAX;
	if (map->csize > 2 * cs) {
		ret = qcow2_corruption(img, "compressed cluster is too large",
				       map->host_offset);
		goto out_unlock;
	}
	got = qcow2_file_read(img->file, d->in, map->csize, map->host_offset);
	if (got < 0) {
		ret = got;
		goto out_unlock;
	}
	/* The last sector of the file may be partial. */
	memset(d->in + got, 0, map->csize - got);

	if (img->lay.compression_type == QCOW2_COMPRESSION_ZSTD)
		ret = qcow2_unzstd(d, map->csize, cs);
	else
		ret = qcow2_inflate(d, map->csize, cs);
	if (ret == -EIO)
		ret = qcow2_corruption(img, "compressed cluster does not decompress",
				       map->host_offset);
	if (ret)
		goto out_unlock;
	d->cached_offset = map->host_offset;
copy:
	ret = copy_to_iter(d->out + in_cluster, len, to) == len ? 0 : -EFAULT;
out_unlock:
	mutex_unlock(&d->lock);
	return ret;
}
