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

int qc_add(struct qc_ctx *ctx, int image_fd, uint32_t flags,
	   uint64_t cache_size, uint32_t *index);
int qc_remove(struct qc_ctx *ctx, uint32_t index, bool *deferred);
/* On success *indexes is malloc()ed (NULL when *count is 0). */
int qc_list(struct qc_ctx *ctx, uint32_t **indexes, uint32_t *count);
int qc_get_info(struct qc_ctx *ctx, uint32_t index, struct qcow2_info *info);
int qc_get_features(struct qc_ctx *ctx, struct qcow2_features *feat);

/* Open an image for attach; returns the fd, -EMEDIUMTYPE if not a file. */
int qc_open_image(const char *path, bool read_only, bool direct_io);
/*
 * Validate the image header with the driver's parser (format.c): 0, or
 * -errno with *why saying what is wrong (NULL for an I/O error).
 */
int qc_check_image(int fd, const char **why);
/*
 * Take the OFD locks a QEMU reader (@read_only) or writer would take.
 * -EBUSY means another process holds a conflicting lock.
 */
int qc_lock_image(int fd, bool read_only);

/* Accepts "/dev/qcowN", "qcowN" and "N"; -EINVAL otherwise. */
int qc_parse_device(const char *name, uint32_t *index);
/* Backing file path from sysfs, without the trailing newline. */
int qc_read_image_path(uint32_t index, char *buf, size_t len);

#endif /* QCOWCTL_LIB_H */
