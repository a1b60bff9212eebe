#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the qcow2 guest selftests: every script of TEST_PROGS in the Makefile,
# each under the timeout of ./settings.  Result lines are passed through
# with the kernel version put in front of their names; anything else a
# test prints becomes a "# " diagnostic line.  Exit 1 if any test failed.
#
# The guest has two vCPUs and most tests keep one busy, so after the
# "solo" tests of ./settings (they reload the module) the others run in
# two lanes at once: the "lane1" list of ./settings in that order, and the
# rest of TEST_PROGS in theirs.  A lane's output is printed when both are
# done.  QCOW2_LANES=1, or naming tests, runs them one after the other.
#
# Usage: run.sh [TEST...]   (default: all of TEST_PROGS)

set -u

dir=$(cd "$(dirname "$0")" && pwd)
kver=${QCOW2_KVER:-$(uname -r)}

timeout_s=$(sed -n 's/^timeout=\([0-9][0-9]*\)$/\1/p' "$dir/settings")
timeout_s=${timeout_s:-600}
solo=$(sed -n 's/^solo=//p' "$dir/settings")
lane1=$(sed -n 's/^lane1=//p' "$dir/settings")
lanes=${QCOW2_LANES:-2}

# TEST_PROGS, with make's line continuations joined.
list_tests()
{
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dir/Makefile" |
		sed -n 's/^TEST_PROGS[[:space:]]*:*=[[:space:]]*//p'
}

if [ $# -gt 0 ]; then
	tests=$*
	lanes=1
else
	tests=$(list_tests)
fi
if [ -z "$tests" ]; then
	echo "not ok - $kver: run.sh found no TEST_PROGS in $dir/Makefile"
	exit 1
fi

# Kernel log lines that mean the driver (or the kernel under it) broke.
bad_klog='BUG:|WARNING:|Oops|general protection|KASAN|UBSAN|blocked for more than|Call Trace'

tmp=$(mktemp -d /tmp/qcow2-run.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Rewrite one test's output on the fly; tallies go to $results.
filter()
{
	local t=$1 results=$2 line

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

# run_test TEST: run one test, print its lines, and add its failures to
# $tmp/fails.
run_test()
{
	local t=$1 name=${1%.sh} results=$tmp/${1%.sh}.results
	local mark start end rc fails passes reason klog

	: >"$results"
	if [ ! -f "$dir/$t" ]; then
		echo "not ok - $kver: $name: $t not found"
		echo 1 >>"$tmp/fails"
		return
	fi
	echo "# === $t (timeout ${timeout_s}s)"
	mark="qcow2-run-$name-$$-$RANDOM$RANDOM"
	echo "$mark" >/dev/kmsg 2>/dev/null
	start=$(date +%s)

	timeout -k 10 "$timeout_s" bash "$dir/$t" 2>&1 </dev/null |
		filter "$t" "$results"
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

	# Attribute kernel warnings to the test that caused them (with two
	# lanes, to one of the two tests running then).
	klog=$(dmesg 2>/dev/null | sed -n "/$mark/,\$p" | tail -n +2 |
	       grep -E "$bad_klog")
	if [ -n "$klog" ]; then
		echo "not ok - $kver: $name: kernel log clean"
		printf '%s\n' "$klog" | head -n 40 | sed 's/^/# /'
		fails=$((fails + 1))
	elif [ "$rc" -ne 4 ]; then
		echo "ok - $kver: $name: kernel log clean"
	fi
	echo "$fails" >>"$tmp/fails"
}

# in_list WORD LIST...: WORD is one of LIST.
in_list()
{
	local w=$1

	shift
	case " $* " in *" $w "*) return 0 ;; esac
	return 1
}

: >"$tmp/fails"
if [ "$lanes" -lt 2 ]; then
	for t in $tests; do
		run_test "$t"
	done
else
	first='' a='' b=''
	for t in $tests; do
		if in_list "$t" "$solo"; then
			first="$first $t"
		elif in_list "$t" "$lane1"; then
			a="$a $t"
		else
			b="$b $t"
		fi
	done
	for t in $first; do
		run_test "$t"
	done
	( for t in $a; do run_test "$t"; done ) >"$tmp/lane1.out" 2>&1 &
	pid=$!
	( for t in $b; do run_test "$t"; done ) >"$tmp/lane2.out" 2>&1
	wait "$pid"
	cat "$tmp/lane1.out" "$tmp/lane2.out"
fi

total_fail=$(awk '{ n += $1 } END { print n + 0 }' "$tmp/fails")
[ "$total_fail" -eq 0 ]
