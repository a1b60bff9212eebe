/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only place format.c learns where it is built.  In the kernel it
 * gets the usual headers; in userspace, tools/include/qcow2_kcompat.h
 * provides the same names (fixed-width types, endian and unaligned
 * helpers, errno values, overflow checks).
 */
#ifndef _QCOW2_FORMAT_DEPS_H
#define _QCOW2_FORMAT_DEPS_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/overflow.h>
#include <linux/string.h>
#include "compat.h"	/* get_unaligned_be*() and put_unaligned_be*() */
#else
#include <string.h>
#include "qcow2_kcompat.h"
#endif

#endif /* _QCOW2_FORMAT_DEPS_H */
