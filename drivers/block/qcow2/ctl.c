// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/qcow-control: add, remove and list devices, query features.
 *
 * Every argument structure carries its own size so it can grow
 * (copy_struct_from_user()); unknown flags and non-zero reserved fields
 * are refused so they can be given a meaning later.
 */
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/idr.h>
#include <linux/miscdevice.h>
#include <linux/uaccess.h>
#include <uapi/linux/qcow2.h>

#include "qcow2.h"

/* Copy an extensible argument whose first member is its __u32 size. */
static int qcow2_copy_arg(void *karg, size_t ksize, void __user *uarg)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < sizeof(u32) * 2)
		return -EINVAL;
	return copy_struct_from_user(karg, ksize, uarg, usize);
}

/* Copy a result back, no more than the caller's structure holds. */
static int qcow2_copy_result(void __user *uarg, const void *karg,
			     size_t ksize)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (copy_to_user(uarg, karg, min_t(size_t, usize, ksize)))
		return -EFAULT;
	return 0;
}

static bool qcow2_zeroed(const u64 *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static long qcow2_ctl_add(struct qcow2_ctl_add __user *uarg)
{
	struct qcow2_ctl_add arg;
	struct file *file;
	int ret;

	ret = qcow2_copy_arg(&arg, sizeof(arg), uarg);
	if (ret)
		return ret;
	if (arg.flags & ~QCOW2_ADD_FLAGS_ALL ||
	    !qcow2_zeroed(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;

	if (arg.reserved2 || arg.snapshot_flags & ~(QCOW2_SNAP_BY_ID |
						    QCOW2_SNAP_BY_NAME))
		return -EINVAL;
	if (arg.flags & QCOW2_ADD_SNAPSHOT) {
		ret = strnlen(arg.snapshot, sizeof(arg.snapshot));
		if (ret == sizeof(arg.snapshot))
			return -ENAMETOOLONG;
		if (!ret)
			return -EINVAL;
	} else if (memchr_inv(arg.snapshot, 0, sizeof(arg.snapshot))) {
		return -EINVAL;
	}

	file = fget(arg.fd);
	if (!file)
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode)) {
		pr_info("attach: %pD is not a regular file\n", file);
		ret = -EINVAL;
		goto out_put_file;
	}
	if (!(file->f_mode & FMODE_READ)) {
		ret = -EBADF;
		goto out_put_file;
	}
	if (!(file->f_mode & FMODE_CAN_READ) || !file->f_op->read_iter) {
		pr_info("attach: %pD cannot be read through read_iter\n", file);
		ret = -EINVAL;
		goto out_put_file;
	}
	if (!(arg.flags & QCOW2_ADD_READ_ONLY)) {
		/* Writing needs a descriptor opened for writing, as loop does. */
		if (!(file->f_mode & FMODE_WRITE)) {
			pr_info("attach: %pD is open read-only; attach it read-only or open it read-write\n",
				file);
			ret = -EBADF;
			goto out_put_file;
		}
		if (!(file->f_mode & FMODE_CAN_WRITE) || !file->f_op->write_iter ||
		    !file->f_op->fsync) {
			pr_info("attach: %pD cannot be written through write_iter\n",
				file);
			ret = -EINVAL;
			goto out_put_file;
		}
	}

	ret = qcow2_dev_add(file, arg.flags, arg.cache_size, arg.index,
			    arg.snapshot, arg.snapshot_flags);
	if (ret < 0)
		goto out_put_file;
	/* The device owns the file reference now. */
	arg.index = ret;
	return qcow2_copy_result(uarg, &arg, sizeof(arg));

out_put_file:
	fput(file);
	return ret;
}

static long qcow2_ctl_remove(struct qcow2_ctl_remove __user *uarg)
{
	struct qcow2_ctl_remove arg;
	bool deferred;
	int ret;

	ret = qcow2_copy_arg(&arg, sizeof(arg), uarg);
	if (ret)
		return ret;
	if (arg.flags & ~QCOW2_REMOVE_FLAGS_ALL || arg.deferred ||
	    !qcow2_zeroed(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;

	ret = qcow2_dev_remove(arg.index, &deferred);
	if (ret)
		return ret;
	arg.deferred = deferred;
	return qcow2_copy_result(uarg, &arg, sizeof(arg));
}

static long qcow2_ctl_list(struct qcow2_ctl_list __user *uarg)
{
	u32 __user *uindexes;
	struct qcow2_ctl_list arg;
	struct qcow2_dev *dev;
	u32 n = 0, *indexes;
	int id, ret;

	ret = qcow2_copy_arg(&arg, sizeof(arg), uarg);
	if (ret)
		return ret;
	if (!qcow2_zeroed(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;
	uindexes = u64_to_user_ptr(arg.indexes);

	/* Snapshot the indexes under the lock, copy them out after it. */
	mutex_lock(&qcow2_ctl_mutex);
	idr_for_each_entry(&qcow2_index_idr, dev, id)
		n++;
	indexes = kcalloc(max(n, 1U), sizeof(*indexes), GFP_KERNEL);
	if (!indexes) {
		mutex_unlock(&qcow2_ctl_mutex);
		return -ENOMEM;
	}
	n = 0;
	idr_for_each_entry(&qcow2_index_idr, dev, id)
		indexes[n++] = id;
	mutex_unlock(&qcow2_ctl_mutex);

	ret = 0;
	if (copy_to_user(uindexes, indexes,
			 min(n, arg.count) * sizeof(*indexes)))
		ret = -EFAULT;
	kfree(indexes);
	if (ret)
		return ret;
	arg.count = n;
	return qcow2_copy_result(uarg, &arg, sizeof(arg));
}

static long qcow2_ctl_get_features(struct qcow2_features __user *uarg)
{
	struct qcow2_features arg;
	int ret;

	ret = qcow2_copy_arg(&arg, sizeof(arg), uarg);
	if (ret)
		return ret;
	memset(arg.reserved, 0, sizeof(arg.reserved));
	arg.abi_version = QCOW2_ABI_VERSION;
	arg.features = QCOW2_FEAT_READ | QCOW2_FEAT_COMPRESSED_ZLIB |
		       QCOW2_FEAT_COMPRESSED_ZSTD | QCOW2_FEAT_V2 |
		       QCOW2_FEAT_DEFERRED_REMOVE | QCOW2_FEAT_WRITE |
		       QCOW2_FEAT_SNAPSHOTS | QCOW2_FEAT_SNAPSHOT_VIEW;
	arg.add_flags = QCOW2_ADD_FLAGS_ALL;
	return qcow2_copy_result(uarg, &arg, sizeof(arg));
}

static long qcow2_ctl_get_info(struct qcow2_info __user *uarg)
{
	struct qcow2_info arg;
	struct qcow2_dev *dev;
	int ret;

	ret = qcow2_copy_arg(&arg, sizeof(arg), uarg);
	if (ret)
		return ret;
	if (arg.flags || !qcow2_zeroed(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;

	mutex_lock(&qcow2_ctl_mutex);
	dev = idr_find(&qcow2_index_idr, arg.index);
	if (dev)
		qcow2_dev_fill_info(dev, &arg);
	mutex_unlock(&qcow2_ctl_mutex);
	if (!dev)
		return -ENXIO;
	return qcow2_copy_result(uarg, &arg, sizeof(arg));
}

static long qcow2_ctl_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (QCOW2_IOC_BASE(cmd)) {
	case QCOW2_IOC_BASE(QCOW2_CTL_ADD):
		return qcow2_ctl_add(uarg);
	case QCOW2_IOC_BASE(QCOW2_CTL_REMOVE):
		return qcow2_ctl_remove(uarg);
	case QCOW2_IOC_BASE(QCOW2_CTL_LIST):
		return qcow2_ctl_list(uarg);
	case QCOW2_IOC_BASE(QCOW2_CTL_GET_FEATURES):
		return qcow2_ctl_get_features(uarg);
	case QCOW2_IOC_BASE(QCOW2_CTL_GET_INFO):
		return qcow2_ctl_get_info(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations qcow2_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= qcow2_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice qcow2_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "qcow-control",
	.fops		= &qcow2_ctl_fops,
};

int qcow2_ctl_init(void)
{
	return misc_register(&qcow2_misc);
}

void qcow2_ctl_exit(void)
{
	misc_deregister(&qcow2_misc);
}
