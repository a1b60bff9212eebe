// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "strutils.h"

static const struct {
	const char *name;
	unsigned int shift;
} size_suffixes[] = {
	{ "",    0 },
	{ "K",   10 }, { "KiB", 10 },
	{ "M",   20 }, { "MiB", 20 },
	{ "G",   30 }, { "GiB", 30 },
	{ "T",   40 }, { "TiB", 40 },
};

int parse_size(const char *str, uint64_t *res)
{
	const char *p = str;
	uint64_t val = 0;
	size_t i;

	/*
	 * Digits by hand: strtoull() would accept leading blanks, a sign and
	 * wrap "-1" around to 2^64-1.
	 */
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = *p - '0';

		if (val > (UINT64_MAX - d) / 10)
			return -ERANGE;
		val = val * 10 + d;
	}

	for (i = 0; i < ARRAY_SIZE(size_suffixes); i++) {
		unsigned int shift = size_suffixes[i].shift;

		/* The unit letter may be lower case; "iB" is spelled exactly. */
		if (strlen(p) != strlen(size_suffixes[i].name) ||
		    strncasecmp(p, size_suffixes[i].name, 1) ||
		    (*p && strcmp(p + 1, size_suffixes[i].name + 1)))
			continue;
		if (shift && val > (UINT64_MAX >> shift))
			return -ERANGE;
		*res = val << shift;
		return 0;
	}
	return -EINVAL;
}

void size_to_human(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	unsigned int exp = 0;
	uint64_t whole, frac;

	while (exp < sizeof(units) - 2 && bytes >> (10 * (exp + 1)))
		exp++;
	if (!exp) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return;
	}

	whole = bytes >> (10 * exp);
	/* One decimal, rounded to nearest, like lsblk; "1.0G" prints "1G". */
	frac = bytes & ((1ULL << (10 * exp)) - 1);
	frac = ((frac >> (10 * (exp - 1))) * 10 + 512) / 1024;
	if (frac == 10) {
		whole++;
		frac = 0;
		/* 1023.96K is shown as 1M, not 1024K */
		if (whole == 1024 && exp < sizeof(units) - 2) {
			whole = 1;
			exp++;
		}
	}
	if (frac)
		snprintf(buf, len, "%llu.%llu%c", (unsigned long long)whole,
			 (unsigned long long)frac, units[exp]);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)whole,
			 units[exp]);
}

void size_to_qemu(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	/* Scaled by 1024/1000 so that 1000..1023 of a unit already step up. */
	double x = bytes / (1000.0 / 1024.0);
	unsigned int i = 0;

	while (i < ARRAY_SIZE(units) - 1 &&
	       x >= (double)(1ULL << (10 * (i + 1))))
		i++;
	/* "%.3g", as QEMU: 999.9 KiB rounds to "1e+03 KiB" there too. */
	snprintf(buf, len, "%.3g %sB",
		 (double)bytes / (double)(1ULL << (10 * i)), units[i]);
}

/* Length of the well-formed UTF-8 sequence at @p, or 0 if there is none. */
static size_t utf8_seq_len(const unsigned char *p)
{
	unsigned int cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void json_print_string(FILE *out, const char *str)
{
	const unsigned char *p;

	fputc('"', out);
	for (p = (const unsigned char *)str; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\b':
			fputs("\\b", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*p < 0x20) {
				fprintf(out, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, out);
			} else {
				/*
				 * A file name is bytes, JSON text is UTF-8:
				 * pass valid sequences, replace the rest
				 * with U+FFFD so the output stays parseable.
				 */
				size_t n = utf8_seq_len(p);

				if (n) {
					fwrite(p, 1, n, out);
					p += n - 1;
				} else {
					fputs("\\ufffd", out);
				}
			}
		}
	}
	fputc('"', out);
}
