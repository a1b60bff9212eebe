/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libqcowctl: the part of qcowctl that talks to the driver and to the image
 * file.  Every function returns 0 (or a value >= 0) on success and -errno on
 * failure, and never prints: wording errors is the front end's job.
 */
#ifndef QCOWCTL_LIB_H
#define QCOWCTL_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qcow2.h>

/* Overrides QCOW2_CONTROL_PATH; meant for tests. */
#define QC_CONTROL_ENV	"QCOWCTL_CONTROL_DEVICE"

struct qc_ctx {
	int ctl_fd;
	const char *ctl_path;
};

void qc_init(struct qc_ctx *ctx);
int qc_open_control(struct qc_ctx *ctx);
void qc_close(struct qc_ctx *ctx);

/*
 * @snapshot: NULL, or the ID or name of the snapshot to expose (add
 * QCOW2_ADD_SNAPSHOT to @flags), looked up as @snapshot_flags says.
 */
int qc_add(struct qc_ctx *ctx, int image_fd, uint32_t flags,
	   uint64_t cache_size, const char *snapshot, uint32_t snapshot_flags,
	   uint32_t *index);
int qc_remove(struct qc_ctx *ctx, uint32_t index, bool *deferred);
/* On success *indexes is malloc()ed (NULL when *count is 0). */
int qc_list(struct qc_ctx *ctx, uint32_t **indexes, uint32_t *count);
int qc_get_info(struct qc_ctx *ctx, uint32_t index, struct qcow2_info *info);
int qc_get_features(struct qc_ctx *ctx, struct qcow2_features *feat);

/*
 * Snapshots, through /dev/qcowN itself.  qc_open_device() returns an fd
 * (read-only: the driver checks the device, not the open mode, and a
 * mounted device may refuse writers) or -errno.
 */
int qc_open_device(uint32_t index);
/* On success *entries is malloc()ed (NULL when *count is 0). */
int qc_snapshot_list(int dev_fd, struct qcow2_snapshot_entry **entries,
		     uint32_t *count);
/* @id gets the new snapshot's ID. */
int qc_snapshot_create(int dev_fd, const char *name, uint32_t flags,
		       char id[QCOW2_SNAPSHOT_ID_MAX + 1]);
/* @flags: QCOW2_SNAP_BY_*; 0 looks up by ID, then by name. */
int qc_snapshot_delete(int dev_fd, const char *key, uint32_t flags);
int qc_snapshot_revert(int dev_fd, const char *key, uint32_t flags);

/* Open an image for attach; returns the fd, -EMEDIUMTYPE if not a file. */
int qc_open_image(const char *path, bool read_only, bool direct_io);
/*
 * Validate the image header with the driver's parser (format.c): 0, or
 * -errno with *why saying what is wrong (NULL for an I/O error).
 */
int qc_check_image(int fd, const char **why);
/* Flags of qc_lock_image(). */
#define QC_LOCK_READ_ONLY	0x1	/* lock as a reader, not a writer */
/*
 * As a reader, but not refused by a writer: the writer is one of our own
 * read-write devices of the same image (qc_find_writer()), next to which
 * the driver serves snapshot views.  Foreign writers stay out all the
 * same: that device does not share write permission with them.
 */
#define QC_LOCK_BESIDE_WRITER	0x2

/*
 * Take the OFD locks a QEMU reader or writer would take.  -EBUSY means
 * another process holds a conflicting lock.
 */
int qc_lock_image(int fd, unsigned int flags);
/*
 * The index of a read-write qcow device whose image is the file open at
 * @fd (same inode as the path in its sysfs "image"), or -ENOENT.
 */
int qc_find_writer(struct qc_ctx *ctx, int fd, uint32_t *index);

/* Accepts "/dev/qcowN", "qcowN" and "N"; -EINVAL otherwise. */
int qc_parse_device(const char *name, uint32_t *index);
/* Backing file path from sysfs, without the trailing newline. */
int qc_read_image_path(uint32_t index, char *buf, size_t len);

#endif /* QCOWCTL_LIB_H */
