/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qcow2 block device driver: ioctl ABI.
 *
 * Control operations go to /dev/qcow-control and need CAP_SYS_ADMIN.
 * Every argument structure starts with a __u32 @size that userspace sets to
 * sizeof() of the structure it was built against; the kernel accepts
 * shorter (older) structures and longer ones whose unknown tail is zero
 * (copy_struct_from_user() semantics).  The size bits of a command number
 * are ignored for the same reason: @size, not the number, says how long
 * the structure is.  Unknown flags and non-zero reserved fields are
 * rejected with -EINVAL, unknown commands with -ENOTTY.
 */
#ifndef _UAPI_LINUX_QCOW2_H
#define _UAPI_LINUX_QCOW2_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/* Magic number; unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define QCOW2_IOCTL_MAGIC	0xB9

/* Paths of the nodes the driver creates. */
#define QCOW2_CONTROL_PATH	"/dev/qcow-control"
#define QCOW2_DEVICE_PREFIX	"/dev/qcow"

/* Feature bits reported by QCOW2_CTL_GET_FEATURES (struct qcow2_features). */
#define QCOW2_FEAT_READ			_BITULL(0)	/* read path */
#define QCOW2_FEAT_COMPRESSED_ZLIB	_BITULL(1)	/* deflate clusters */
#define QCOW2_FEAT_COMPRESSED_ZSTD	_BITULL(2)	/* zstd clusters */
#define QCOW2_FEAT_V2			_BITULL(3)	/* compat=0.10 images */
#define QCOW2_FEAT_DEFERRED_REMOVE	_BITULL(4)	/* remove of an open device */
#define QCOW2_FEAT_WRITE		_BITULL(5)	/* read-write attach */
#define QCOW2_FEAT_SNAPSHOTS		_BITULL(6)	/* QCOW2_SNAPSHOT_* ioctls */
#define QCOW2_FEAT_SNAPSHOT_VIEW	_BITULL(7)	/* QCOW2_ADD_SNAPSHOT */

/* Flags of struct qcow2_ctl_add. */
#define QCOW2_ADD_READ_ONLY	_BITUL(0)	/* expose the image read-only */
#define QCOW2_ADD_SNAPSHOT	_BITUL(1)	/* expose @snapshot (read-only) */
#define QCOW2_ADD_FLAGS_ALL	(QCOW2_ADD_READ_ONLY | QCOW2_ADD_SNAPSHOT)

/* Longest snapshot ID and name, in bytes, without the terminating NUL. */
#define QCOW2_SNAPSHOT_ID_MAX	127
#define QCOW2_SNAPSHOT_NAME_MAX	255

/*
 * How a snapshot is looked up (struct qcow2_snapshot_ref, and
 * struct qcow2_ctl_add's @snapshot): by ID only, by name only, or, with
 * neither flag, by ID first and then by name, as QEMU's snapshot goto does.
 */
#define QCOW2_SNAP_BY_ID	_BITUL(0)
#define QCOW2_SNAP_BY_NAME	_BITUL(1)

/* Index value asking QCOW2_CTL_ADD to pick the lowest free index. */
#define QCOW2_INDEX_ANY		0xffffffffU

/**
 * struct qcow2_ctl_add - attach an image file as a new /dev/qcowN
 * @size: sizeof(struct qcow2_ctl_add) as known to the caller
 * @flags: QCOW2_ADD_* flags
 * @fd: open file descriptor of the image (a regular file); the driver takes
 *	its own reference, so the caller may close it afterwards
 * @index: in: wanted N, or QCOW2_INDEX_ANY; out: the N that was assigned
 * @cache_size: bytes of L2 table cache for this device, 0 for the default
 *	(module parameter l2_cache_size)
 * @reserved: must be zero
 * @snapshot_flags: with QCOW2_ADD_SNAPSHOT: QCOW2_SNAP_BY_* lookup flags
 * @reserved2: must be zero
 * @snapshot: with QCOW2_ADD_SNAPSHOT: ID or name of the snapshot to
 *	expose, NUL-terminated; the device is read-only and shows the disk as
 *	it was when the snapshot was taken (QCOW2_ADD_READ_ONLY is implied)
 */
struct qcow2_ctl_add {
	__u32 size;
	__u32 flags;
	__s32 fd;
	__u32 index;
	__u64 cache_size;
	__u64 reserved[4];
	__u32 snapshot_flags;
	__u32 reserved2;
	char snapshot[QCOW2_SNAPSHOT_NAME_MAX + 1];
};

/* Flags of struct qcow2_ctl_remove: none defined yet. */
#define QCOW2_REMOVE_FLAGS_ALL	0U

/**
 * struct qcow2_ctl_remove - detach /dev/qcowN
 * @size: sizeof(struct qcow2_ctl_remove)
 * @index: N
 * @flags: none defined, must be zero
 * @deferred: out: 1 if removal waits for the last close, else 0
 * @reserved: must be zero
 *
 * A device nobody has open is removed at once.  A device that is open
 * (mounted, or held by a program) stops accepting new opens and is
 * removed when its last user closes it; the call then returns 0 and sets
 * @deferred to 1.
 */
struct qcow2_ctl_remove {
	__u32 size;
	__u32 index;
	__u32 flags;
	__u32 deferred;
	__u64 reserved[2];
};

/**
 * struct qcow2_ctl_list - list the indexes of existing devices
 * @size: sizeof(struct qcow2_ctl_list)
 * @count: in: number of __u32 slots at @indexes; out: number of devices
 *	(may exceed the slots given; only that many are written)
 * @indexes: user pointer to an array of __u32
 * @reserved: must be zero
 */
struct qcow2_ctl_list {
	__u32 size;
	__u32 count;
	__u64 indexes;
	__u64 reserved[2];
};

/**
 * struct qcow2_features - what this driver supports
 * @size: sizeof(struct qcow2_features)
 * @abi_version: QCOW2_ABI_VERSION of the running driver
 * @features: QCOW2_FEAT_* bits
 * @add_flags: QCOW2_ADD_* flags the driver accepts
 * @reserved: zeroed by the kernel
 */
struct qcow2_features {
	__u32 size;
	__u32 abi_version;
	__u64 features;
	__u64 add_flags;
	__u64 reserved[4];
};

#define QCOW2_ABI_VERSION	1

/* Flags of struct qcow2_info. */
#define QCOW2_INFO_READ_ONLY	_BITUL(0)
#define QCOW2_INFO_DIRTY	_BITUL(1)	/* image has the dirty bit */
#define QCOW2_INFO_CORRUPT	_BITUL(2)	/* image has the corrupt bit */
#define QCOW2_INFO_REMOVING	_BITUL(3)	/* deferred remove pending */
#define QCOW2_INFO_SNAPSHOT_VIEW _BITUL(4)	/* shows a snapshot, not the disk */

/**
 * struct qcow2_info - state of one device
 * @size: sizeof(struct qcow2_info)
 * @index: in: N
 * @flags: out: QCOW2_INFO_* bits
 * @version: qcow2 version, 2 or 3
 * @virtual_size: capacity in bytes
 * @cluster_bits: log2 of the cluster size
 * @refcount_order: log2 of the refcount width in bits
 * @compression_type: 0 deflate, 1 zstd
 * @nb_snapshots: internal snapshots in the image
 * @incompatible_features: header field, as in the image
 * @compatible_features: header field, as in the image
 * @autoclear_features: header field, as in the image
 * @l1_size: active L1 entries
 * @cache_size: bytes the L2 cache may hold
 * @cache_slice_size: bytes per cached L2 slice
 * @cache_used: bytes the L2 cache holds now
 * @cache_hits: L2 lookups served from the cache
 * @cache_misses: L2 lookups that read the image
 * @cache_evictions: slices dropped to stay within @cache_size
 * @reserved: zeroed by the kernel
 */
struct qcow2_info {
	__u32 size;
	__u32 index;
	__u32 flags;
	__u32 version;
	__u64 virtual_size;
	__u32 cluster_bits;
	__u32 refcount_order;
	__u32 compression_type;
	__u32 nb_snapshots;
	__u64 incompatible_features;
	__u64 compatible_features;
	__u64 autoclear_features;
	__u64 l1_size;
	__u64 cache_size;
	__u64 cache_slice_size;
	__u64 cache_used;
	__u64 cache_hits;
	__u64 cache_misses;
	__u64 cache_evictions;
	__u64 reserved[8];
};

/**
 * struct qcow2_snapshot_entry - one internal snapshot (QCOW2_SNAPSHOT_LIST)
 * @id: ID string, NUL-terminated (QEMU numbers them 1, 2, ...)
 * @name: name, NUL-terminated
 * @date_sec: creation time, seconds since the epoch
 * @date_nsec: and nanoseconds
 * @vm_clock_nsec: guest clock at creation (0 for disk-only snapshots)
 * @vm_state_size: bytes of saved VM state (0 for disk-only snapshots)
 * @disk_size: virtual disk size when the snapshot was taken
 * @icount: instruction count, or -1
 * @reserved: zeroed by the kernel
 */
struct qcow2_snapshot_entry {
	char id[QCOW2_SNAPSHOT_ID_MAX + 1];
	char name[QCOW2_SNAPSHOT_NAME_MAX + 1];
	__u64 date_sec;
	__u32 date_nsec;
	__u32 reserved0;
	__u64 vm_clock_nsec;
	__u64 vm_state_size;
	__u64 disk_size;
	__s64 icount;
	__u64 reserved[4];
};

/**
 * struct qcow2_snapshot_list - list the snapshots of /dev/qcowN
 * @size: sizeof(struct qcow2_snapshot_list)
 * @count: in: entries at @entries; out: number of snapshots (may exceed
 *	the entries given; only that many are written), in table order
 * @entry_size: sizeof(struct qcow2_snapshot_entry) as known to the caller
 * @reserved0: must be zero
 * @entries: user pointer to @count entries of @entry_size bytes
 * @reserved: must be zero
 */
struct qcow2_snapshot_list {
	__u32 size;
	__u32 count;
	__u32 entry_size;
	__u32 reserved0;
	__u64 entries;
	__u64 reserved[2];
};

/* Flags of struct qcow2_snapshot_create. */
#define QCOW2_SNAP_CREATE_FREEZE	_BITUL(0)	/* freeze the mounted fs */
#define QCOW2_SNAP_CREATE_FLAGS_ALL	QCOW2_SNAP_CREATE_FREEZE

/**
 * struct qcow2_snapshot_create - take an internal snapshot of /dev/qcowN
 * @size: sizeof(struct qcow2_snapshot_create)
 * @flags: QCOW2_SNAP_CREATE_* flags
 * @name: the new snapshot's name, NUL-terminated, 1 to 255 bytes
 * @id: out: the ID given to it (highest numeric ID + 1)
 * @reserved: must be zero
 *
 * Needs CAP_SYS_ADMIN and a writable device.  Writes are held back while
 * the snapshot is taken; with QCOW2_SNAP_CREATE_FREEZE a file system
 * mounted on the device is frozen around it, so the snapshot holds it
 * clean.
 */
struct qcow2_snapshot_create {
	__u32 size;
	__u32 flags;
	char name[QCOW2_SNAPSHOT_NAME_MAX + 1];
	char id[QCOW2_SNAPSHOT_ID_MAX + 1];
	__u64 reserved[4];
};

/**
 * struct qcow2_snapshot_ref - name a snapshot (delete, revert)
 * @size: sizeof(struct qcow2_snapshot_ref)
 * @flags: QCOW2_SNAP_BY_* lookup flags
 * @key: ID or name, NUL-terminated
 * @reserved: must be zero
 */
struct qcow2_snapshot_ref {
	__u32 size;
	__u32 flags;
	char key[QCOW2_SNAPSHOT_NAME_MAX + 1];
	__u64 reserved[4];
};

#define QCOW2_CTL_ADD		_IOWR(QCOW2_IOCTL_MAGIC, 0x00, struct qcow2_ctl_add)
#define QCOW2_CTL_REMOVE	_IOWR(QCOW2_IOCTL_MAGIC, 0x01, struct qcow2_ctl_remove)
#define QCOW2_CTL_LIST		_IOWR(QCOW2_IOCTL_MAGIC, 0x02, struct qcow2_ctl_list)
#define QCOW2_CTL_GET_FEATURES	_IOWR(QCOW2_IOCTL_MAGIC, 0x03, struct qcow2_features)
#define QCOW2_CTL_GET_INFO	_IOWR(QCOW2_IOCTL_MAGIC, 0x04, struct qcow2_info)

/* On /dev/qcowN itself (any opener): same structure as QCOW2_CTL_GET_INFO. */
#define QCOW2_GET_INFO		_IOWR(QCOW2_IOCTL_MAGIC, 0x40, struct qcow2_info)

/*
 * Snapshot operations on /dev/qcowN.  Listing needs only an open device;
 * the others need CAP_SYS_ADMIN and a writable device.  Errors: -ENOENT no
 * such snapshot; -EBUSY revert while another opener has the device, or
 * delete/revert of a snapshot a view shows; -EROFS read-only device;
 * -EFBIG 65536 snapshots; -EOPNOTSUPP refcounts too narrow to share
 * clusters (refcount_bits=1); -ENAMETOOLONG, -EINVAL bad names.  The
 * kernel log says why.
 */
#define QCOW2_SNAPSHOT_LIST	_IOWR(QCOW2_IOCTL_MAGIC, 0x41, struct qcow2_snapshot_list)
#define QCOW2_SNAPSHOT_CREATE	_IOWR(QCOW2_IOCTL_MAGIC, 0x42, struct qcow2_snapshot_create)
#define QCOW2_SNAPSHOT_DELETE	_IOW(QCOW2_IOCTL_MAGIC, 0x43, struct qcow2_snapshot_ref)
#define QCOW2_SNAPSHOT_REVERT	_IOW(QCOW2_IOCTL_MAGIC, 0x44, struct qcow2_snapshot_ref)

#endif /* _UAPI_LINUX_QCOW2_H */
