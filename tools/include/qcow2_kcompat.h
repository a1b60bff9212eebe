/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Just enough of the kernel's environment for drivers/block/qcow2/format.c
 * to build in userspace (unit tests, fuzzers).  The endian helpers keep
 * the __bitwise annotations of <linux/types.h>, so running sparse over a
 * userspace build still catches a missing be64_to_cpu().
 */
#ifndef _QCOW2_KCOMPAT_H
#define _QCOW2_KCOMPAT_H

#ifdef __KERNEL__
#error "qcow2_kcompat.h is for userspace builds only"
#endif

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

/* As in the kernel: on-disk structures may sit at any address. */
#ifndef __packed
#define __packed	__attribute__((__packed__))
#endif

#ifdef __CHECKER__
#define __force		__attribute__((force))
#else
#define __force
#endif

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;

#ifndef EUCLEAN
#define EUCLEAN		117
#endif

#ifndef U32_MAX
#define U32_MAX		((u32)~0U)
#endif
#ifndef U64_MAX
#define U64_MAX		((u64)~0ULL)
#endif

/* As the kernel's: the expression doubles as the message. */
#define static_assert(expr, ...)	__static_assert(expr, ##__VA_ARGS__, #expr)
#define __static_assert(expr, msg, ...)	_Static_assert(expr, msg)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define check_add_overflow(a, b, d)	__builtin_add_overflow(a, b, d)
#define check_sub_overflow(a, b, d)	__builtin_sub_overflow(a, b, d)
#define check_mul_overflow(a, b, d)	__builtin_mul_overflow(a, b, d)

/* Byte-wise conversions: correct on any host, whatever its endianness. */
static inline u16 __qcow2_load_be16(const void *p)
{
	const u8 *b = p;

	return (u16)((u16)b[0] << 8 | b[1]);
}

static inline u32 __qcow2_load_be32(const void *p)
{
	const u8 *b = p;

	return (u32)b[0] << 24 | (u32)b[1] << 16 | (u32)b[2] << 8 | b[3];
}

static inline u64 __qcow2_load_be64(const void *p)
{
	const u8 *b = p;

	return (u64)__qcow2_load_be32(b) << 32 | __qcow2_load_be32(b + 4);
}

static inline void __qcow2_store_be16(void *p, u16 v)
{
	u8 *b = p;

	b[0] = (u8)(v >> 8);
	b[1] = (u8)v;
}

static inline void __qcow2_store_be32(void *p, u32 v)
{
	u8 *b = p;

	b[0] = (u8)(v >> 24);
	b[1] = (u8)(v >> 16);
	b[2] = (u8)(v >> 8);
	b[3] = (u8)v;
}

static inline void __qcow2_store_be64(void *p, u64 v)
{
	u8 *b = p;

	__qcow2_store_be32(b, (u32)(v >> 32));
	__qcow2_store_be32(b + 4, (u32)v);
}

static inline u16 be16_to_cpu(__be16 x)
{
	return __qcow2_load_be16(&x);
}

static inline u32 be32_to_cpu(__be32 x)
{
	return __qcow2_load_be32(&x);
}

static inline u64 be64_to_cpu(__be64 x)
{
	return __qcow2_load_be64(&x);
}

static inline __be16 cpu_to_be16(u16 x)
{
	__be16 r;

	__qcow2_store_be16(&r, x);
	return r;
}

static inline __be32 cpu_to_be32(u32 x)
{
	__be32 r;

	__qcow2_store_be32(&r, x);
	return r;
}

static inline __be64 cpu_to_be64(u64 x)
{
	__be64 r;

	__qcow2_store_be64(&r, x);
	return r;
}

#define get_unaligned_be16(p)		__qcow2_load_be16(p)
#define get_unaligned_be32(p)		__qcow2_load_be32(p)
#define get_unaligned_be64(p)		__qcow2_load_be64(p)
#define put_unaligned_be16(v, p)	__qcow2_store_be16(p, (u16)(v))
#define put_unaligned_be32(v, p)	__qcow2_store_be32(p, (u32)(v))
#define put_unaligned_be64(v, p)	__qcow2_store_be64(p, v)

#endif /* _QCOW2_KCOMPAT_H */
