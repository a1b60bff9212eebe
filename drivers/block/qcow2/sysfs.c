// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/qcowN/qcow2/: what the device serves and how its L2 cache
 * behaves.  The group is removed by del_gendisk() before the image is
 * freed, so the show functions can use the image without more locking.
 */
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/file.h>
#include <linux/sysfs.h>

#include "qcow2.h"

static struct qcow2_image *qcow2_dev_image(struct device *d)
{
	struct qcow2_dev *dev = dev_to_disk(d)->private_data;

	return dev->img;
}

static ssize_t image_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	struct qcow2_image *img = qcow2_dev_image(d);
	char *p;

	p = file_path(img->file, buf, PAGE_SIZE - 1);
	if (IS_ERR(p))
		return PTR_ERR(p);
	memmove(buf, p, strlen(p));
	buf[strlen(p)] = '\n';
	return strlen(p) + 1;
}
static DEVICE_ATTR_RO(image);

static ssize_t cluster_size_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", qcow2_dev_image(d)->lay.cluster_size);
}
static DEVICE_ATTR_RO(cluster_size);

static ssize_t version_show(struct device *d,
			    struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", qcow2_dev_image(d)->lay.version);
}
static DEVICE_ATTR_RO(version);

static ssize_t nb_snapshots_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", qcow2_dev_image(d)->lay.nb_snapshots);
}
static DEVICE_ATTR_RO(nb_snapshots);

static ssize_t refcount_order_show(struct device *d,
				   struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", qcow2_dev_image(d)->lay.refcount_order);
}
static DEVICE_ATTR_RO(refcount_order);

static ssize_t compression_type_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", qcow2_dev_image(d)->lay.compression_type);
}
static DEVICE_ATTR_RO(compression_type);

static ssize_t virtual_size_show(struct device *d,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", qcow2_dev_image(d)->lay.size);
}
static DEVICE_ATTR_RO(virtual_size);

static ssize_t cache_size_show(struct device *d,
			       struct device_attribute *attr, char *buf)
{
	struct qcow2_cache *c = &qcow2_dev_image(d)->cache;

	return sysfs_emit(buf, "%llu\n", (u64)c->max_slices * c->slice_size);
}
static DEVICE_ATTR_RO(cache_size);

static ssize_t cache_slice_size_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", qcow2_dev_image(d)->cache.slice_size);
}
static DEVICE_ATTR_RO(cache_slice_size);

static ssize_t cache_used_show(struct device *d,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  qcow2_cache_used(&qcow2_dev_image(d)->cache));
}
static DEVICE_ATTR_RO(cache_used);

#define QCOW2_CACHE_STAT_ATTR(field)					\
static ssize_t cache_##field##_show(struct device *d,			\
				    struct device_attribute *attr,	\
				    char *buf)				\
{									\
	struct qcow2_cache_stats st;					\
									\
	qcow2_cache_read_stats(&qcow2_dev_image(d)->cache, &st);	\
	return sysfs_emit(buf, "%llu\n", st.field);			\
}									\
static DEVICE_ATTR_RO(cache_##field)

QCOW2_CACHE_STAT_ATTR(hits);
QCOW2_CACHE_STAT_ATTR(misses);
QCOW2_CACHE_STAT_ATTR(evictions);

static struct attribute *qcow2_attrs[] = {
	&dev_attr_image.attr,
	&dev_attr_virtual_size.attr,
	&dev_attr_cluster_size.attr,
	&dev_attr_version.attr,
	&dev_attr_nb_snapshots.attr,
	&dev_attr_refcount_order.attr,
	&dev_attr_compression_type.attr,
	&dev_attr_cache_size.attr,
	&dev_attr_cache_slice_size.attr,
	&dev_attr_cache_used.attr,
	&dev_attr_cache_hits.attr,
	&dev_attr_cache_misses.attr,
	&dev_attr_cache_evictions.attr,
	NULL,
};

static const struct attribute_group qcow2_attr_group = {
	.name	= "qcow2",
	.attrs	= qcow2_attrs,
};

const struct attribute_group *qcow2_disk_groups[] = {
	&qcow2_attr_group,
	NULL,
};
