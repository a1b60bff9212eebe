#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the qcow2 guest selftests: every script of TEST_PROGS in the Makefile,
# in order, each under the timeout of ./settings.  Result lines are passed
# through with the kernel version put in front of their names; anything
# else a test prints becomes a "# " diagnostic line.  Exit 1 if any test
# failed.
#
# Usage: run.sh [TEST...]   (default: all of TEST_PROGS)

set -u

dir=$(cd "$(dirname "$0")" && pwd)
kver=${QCOW2_KVER:-$(uname -r)}

timeout_s=$(sed -n 's/^timeout=\([0-9][0-9]*\)$/\1/p' "$dir/settings")
timeout_s=${timeout_s:-600}

# TEST_PROGS, with make's line continuations joined.
list_tests()
{
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dir/Makefile" |
		sed -n 's/^TEST_PROGS[[:space:]]*:*=[[:space:]]*//p'
}

if [ $# -gt 0 ]; then
	tests=$*
else
	tests=$(list_tests)
fi
if [ -z "$tests" ]; then
	echo "not ok - $kver: run.sh found no TEST_PROGS in $dir/Makefile"
	exit 1
fi

# Kernel log lines that mean the driver (or the kernel under it) broke.
bad_klog='BUG:|WARNING:|Oops|general protection|KASAN|UBSAN|blocked for more than|Call Trace'

total_fail=0
results=$(mktemp /tmp/qcow2-run.XXXXXX) || exit 1
trap 'rm -f "$results"' EXIT

# Rewrite one test's output on the fly; tallies go to $results.
filter()
{
	local t=$1 line

	while IFS= read -r line; do
		case $line in
		"ok - "*)
			echo "ok - $kver: ${line#ok - }"
			echo pass >>"$results"
			;;
		"not ok - "*)
			echo "not ok - $kver: ${line#not ok - }"
			echo fail >>"$results"
			;;
		"# SKIP: "*)
			echo "$line"
			echo "skipreason ${line#\# SKIP: }" >>"$results"
			;;
		"#"*)
			echo "$line"
			;;
		*)
			echo "# $t: $line"
			;;
		esac
	done
}

for t in $tests; do
	name=${t%.sh}
	: >"$results"
	if [ ! -f "$dir/$t" ]; then
		echo "not ok - $kver: $name: $t not found"
		total_fail=$((total_fail + 1))
		continue
	fi
	echo "# === $t (timeout ${timeout_s}s)"
	mark="qcow2-run-$name-$$-$RANDOM$RANDOM"
	echo "$mark" >/dev/kmsg 2>/dev/null
	start=$(date +%s)

	timeout -k 10 "$timeout_s" bash "$dir/$t" 2>&1 </dev/null | filter "$t"
	rc=${PIPESTATUS[0]}

	end=$(date +%s)
	echo "# $t exited $rc after $((end - start))s"
	fails=$(grep -c '^fail$' "$results")
	passes=$(grep -c '^pass$' "$results")
	reason=$(sed -n 's/^skipreason //p' "$results" | tail -n 1)

	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "not ok - $kver: $name timed out after ${timeout_s}s"
		fails=$((fails + 1))
	elif [ "$rc" -eq 4 ]; then
		echo "ok - $kver: $name # SKIP ${reason:-no reason given}"
	elif [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
		echo "not ok - $kver: $name exited $rc"
		fails=$((fails + 1))
	elif [ "$rc" -eq 0 ] && [ "$passes" -eq 0 ]; then
		echo "not ok - $kver: $name reported no results"
		fails=$((fails + 1))
	fi

	# Attribute kernel warnings to the test that caused them.
	klog=$(dmesg 2>/dev/null | sed -n "/$mark/,\$p" | tail -n +2 |
	       grep -E "$bad_klog")
	if [ -n "$klog" ]; then
		echo "not ok - $kver: $name: kernel log clean"
		printf '%s\n' "$klog" | head -n 40 | sed 's/^/# /'
		fails=$((fails + 1))
	elif [ "$rc" -ne 4 ]; then
		echo "ok - $kver: $name: kernel log clean"
	fi
	total_fail=$((total_fail + fails))
done

[ "$total_fail" -eq 0 ]
