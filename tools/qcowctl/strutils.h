/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small string helpers of qcowctl: size parsing and formatting, JSON
 * strings.  Kept apart from the ioctl code so that test-strutils.c can
 * exercise them without a driver.
 */
#ifndef QCOWCTL_STRUTILS_H
#define QCOWCTL_STRUTILS_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Parse "N", "NK", "NKiB", "NM", "NMiB", "NG", "NGiB", "NT", "NTiB"
 * (powers of 1024, suffix letter in either case).  Returns 0 or -EINVAL
 * (syntax) / -ERANGE (does not fit in 64 bits).
 */
int parse_size(const char *str, uint64_t *res);

/* lsblk style: "512B", "4K", "1.5G".  Always NUL-terminates @buf. */
void size_to_human(uint64_t bytes, char *buf, size_t len);

/*
 * As qemu-img prints sizes (QEMU's size_to_str()): three significant
 * digits and a binary unit, "0 B", "1.5 KiB", "118 MiB"; the unit steps
 * up once the number would reach 1000.  Always NUL-terminates @buf.
 */
void size_to_qemu(uint64_t bytes, char *buf, size_t len);

/* Write @str as a JSON string literal, quotes included. */
void json_print_string(FILE *out, const char *str);

#endif /* QCOWCTL_STRUTILS_H */
