// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of strutils.c: one "ok - NAME" / "not ok - NAME" line per
 * check, diagnostics prefixed with "# ".  Exit status 1 if any failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutils.h"

static int failed;

static void result(int ok, const char *what, const char *arg)
{
	printf("%s - %s '%s'\n", ok ? "ok" : "not ok", what, arg);
	if (!ok)
		failed = 1;
}

static void size_ok(const char *str, uint64_t want)
{
	uint64_t got = 0;
	int ret = parse_size(str, &got);

	result(!ret && got == want, "parse_size accepts", str);
	if (ret || got != want)
		printf("# ret %d, got %" PRIu64 ", want %" PRIu64 "\n",
		       ret, got, want);
}

static void size_bad(const char *str, int want)
{
	uint64_t got = 12345;
	int ret = parse_size(str, &got);

	/* A rejected size must not clobber the caller's value either. */
	result(ret == want && got == 12345, "parse_size rejects", str);
	if (ret != want || got != 12345)
		printf("# ret %d, want %d\n", ret, want);
}

static void human(uint64_t bytes, const char *want)
{
	char buf[32], name[64];

	size_to_human(bytes, buf, sizeof(buf));
	snprintf(name, sizeof(name), "%" PRIu64 " -> %s", bytes, want);
	result(!strcmp(buf, want), "size_to_human", name);
	if (strcmp(buf, want))
		printf("# got '%s'\n", buf);
}

static void qemu_size(uint64_t bytes, const char *want)
{
	char buf[32], name[64];

	size_to_qemu(bytes, buf, sizeof(buf));
	snprintf(name, sizeof(name), "%" PRIu64 " -> %s", bytes, want);
	result(!strcmp(buf, want), "size_to_qemu", name);
	if (strcmp(buf, want))
		printf("# got '%s'\n", buf);
}

static void json(const char *name, const char *in, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		perror("# open_memstream");
		exit(1);
	}
	json_print_string(f, in);
	fclose(f);
	result(!strcmp(buf, want), "json_print_string", name);
	if (strcmp(buf, want))
		printf("# got  %s\n# want %s\n", buf, want);
	free(buf);
}

int main(void)
{
	size_ok("0", 0);
	size_ok("4096", 4096);
	size_ok("1K", 1024);
	size_ok("1k", 1024);
	size_ok("2KiB", 2048);
	size_ok("64M", 64ULL << 20);
	size_ok("64MiB", 64ULL << 20);
	size_ok("1G", 1ULL << 30);
	size_ok("1GiB", 1ULL << 30);
	size_ok("2T", 2ULL << 40);
	size_ok("16777215T", 16777215ULL << 40);
	size_ok("18446744073709551615", UINT64_MAX);

	size_bad("", -EINVAL);
	size_bad("K", -EINVAL);
	size_bad("-1", -EINVAL);
	size_bad("+1", -EINVAL);
	size_bad(" 1", -EINVAL);
	size_bad("1 K", -EINVAL);
	size_bad("1X", -EINVAL);
	size_bad("1KB", -EINVAL);
	size_bad("1Kib", -EINVAL);	/* "iB" is spelled exactly */
	size_bad("1.5G", -EINVAL);
	size_bad("0x10", -EINVAL);
	size_bad("18446744073709551616", -ERANGE);
	size_bad("16777216T", -ERANGE);
	size_bad("17179869184G", -ERANGE);

	human(0, "0B");
	human(512, "512B");
	human(1023, "1023B");
	human(1024, "1K");
	human(1536, "1.5K");
	human(512ULL << 20, "512M");
	human(1ULL << 30, "1G");
	human(1342177280ULL, "1.3G");
	human((10ULL << 30) - 1, "10G");
	human((1ULL << 20) - 1, "1M");
	human(UINT64_MAX, "16E");

	/* What qemu-img snapshot -l prints in its VM SIZE column. */
	qemu_size(0, "0 B");
	qemu_size(999, "999 B");
	qemu_size(1000, "0.977 KiB");
	qemu_size(1024, "1 KiB");
	qemu_size(1536, "1.5 KiB");
	qemu_size(123456789, "118 MiB");
	qemu_size(1023999, "1e+03 KiB");	/* QEMU's "%.3g" quirk */
	qemu_size(1ULL << 30, "1 GiB");
	qemu_size(UINT64_MAX, "16 EiB");

	json("plain", "/srv/a.qcow2", "\"/srv/a.qcow2\"");
	json("empty", "", "\"\"");
	json("quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"");
	json("control characters", "a\nb\tc\rd\x01\x1f\x7f",
	     "\"a\\nb\\tc\\rd\\u0001\\u001f\x7f\"");
	json("valid UTF-8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	json("invalid byte", "a\xff\x62", "\"a\\ufffdb\"");
	json("truncated sequence", "a\xc3", "\"a\\ufffd\"");
	json("overlong", "\xc0\xaf", "\"\\ufffd\\ufffd\"");
	json("surrogate", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");

	return failed;
}
