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
#include <uapi/linux/qcow2.h>

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

/*
 * The other numbers are those of QCOW2_GET_INFO: one function,
 * qcow2_dev_fill_info(), answers both, and each attribute names its field.
 */
struct qcow2_info_attr {
	struct device_attribute attr;
	size_t offset;
	size_t size;
};

static ssize_t qcow2_info_attr_show(struct device *d,
				    struct device_attribute *attr, char *buf)
{
	struct qcow2_info_attr *qa = container_of(attr, struct qcow2_info_attr,
						  attr);
	struct qcow2_info info = { .size = sizeof(info) };
	const u8 *field = (const u8 *)&info + qa->offset;

	qcow2_dev_fill_info(dev_to_disk(d)->private_data, &info);
	if (qa->size == sizeof(u32))
		return sysfs_emit(buf, "%u\n", *(const u32 *)field);
	return sysfs_emit(buf, "%llu\n", *(const u64 *)field);
}

/* @_type is the field's: __u32 or __u64. */
#define QCOW2_INFO_ATTR(_name, _field, _type)				\
static struct qcow2_info_attr qcow2_attr_##_name = {			\
	.attr	= __ATTR(_name, 0444, qcow2_info_attr_show, NULL),	\
	.offset	= offsetof(struct qcow2_info, _field),			\
	.size	= sizeof(_type),					\
}

QCOW2_INFO_ATTR(virtual_size, virtual_size, __u64);
QCOW2_INFO_ATTR(version, version, __u32);
QCOW2_INFO_ATTR(nb_snapshots, nb_snapshots, __u32);
QCOW2_INFO_ATTR(refcount_order, refcount_order, __u32);
QCOW2_INFO_ATTR(compression_type, compression_type, __u32);
QCOW2_INFO_ATTR(cache_size, cache_size, __u64);
QCOW2_INFO_ATTR(cache_slice_size, cache_slice_size, __u64);
QCOW2_INFO_ATTR(cache_used, cache_used, __u64);
QCOW2_INFO_ATTR(cache_hits, cache_hits, __u64);
QCOW2_INFO_ATTR(cache_misses, cache_misses, __u64);
QCOW2_INFO_ATTR(cache_evictions, cache_evictions, __u64);

/* Requests ->queue_rq handed to the issue worker (fast.c). */
static ssize_t handed_off_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct qcow2_dev *dev = dev_to_disk(d)->private_data;

	return sysfs_emit(buf, "%lu\n", READ_ONCE(dev->issuer.handed_off));
}
static DEVICE_ATTR_RO(handed_off);

static struct attribute *qcow2_attrs[] = {
	&dev_attr_image.attr,
	&dev_attr_cluster_size.attr,
	&qcow2_attr_virtual_size.attr.attr,
	&qcow2_attr_version.attr.attr,
	&qcow2_attr_nb_snapshots.attr.attr,
	&qcow2_attr_refcount_order.attr.attr,
	&qcow2_attr_compression_type.attr.attr,
	&qcow2_attr_cache_size.attr.attr,
	&qcow2_attr_cache_slice_size.attr.attr,
	&qcow2_attr_cache_used.attr.attr,
	&qcow2_attr_cache_hits.attr.attr,
	&qcow2_attr_cache_misses.attr.attr,
	&qcow2_attr_cache_evictions.attr.attr,
	&dev_attr_handed_off.attr,
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
