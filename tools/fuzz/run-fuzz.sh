#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs fuzz_format and reports one "ok - ..." or "not ok - ..." line; the
# fuzzer's own output goes to a log whose tail is shown as "# " lines on
# failure.  Called by the Makefile:
#   run-fuzz.sh fuzz SECONDS    fuzz over $CORPUS, seeded from seeds/ and
#                               regressions/ (which are never written to)
#   run-fuzz.sh regress         replay every file in regressions/ and seeds/
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${ARTIFACTS:=$here/../../build/fuzz-artifacts}"
: "${CORPUS:=$here/../../build/fuzz-corpus}"
fuzzer=$here/fuzz_format
mkdir -p "$ARTIFACTS"
log=$ARTIFACTS/fuzz-${1:-none}.log

show_log() {
	tail -n 25 "$log" | sed 's/^/# /'
}

case ${1:-} in
fuzz)
	secs=${2:-60}
	name="fuzz format.c for ${secs}s"
	mkdir -p "$CORPUS"
	if "$fuzzer" -max_total_time="$secs" -max_len=131072 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$ARTIFACTS/" \
		"$CORPUS" "$here/seeds" "$here/regressions" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
			tail -n 1)
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" |
			tail -n 1)
		echo "# ${runs:-?} executions, ${rate:-?} exec/s, corpus $CORPUS"
		echo "ok - $name"
	else
		show_log
		for f in "$ARTIFACTS"/crash-* "$ARTIFACTS"/leak-* \
			 "$ARTIFACTS"/timeout-* "$ARTIFACTS"/oom-*; do
			[ -e "$f" ] || continue
			echo "# crashing input saved as $f;" \
			     "fix format.c, then copy it into tools/fuzz/regressions/"
		done
		echo "not ok - $name"
		exit 1
	fi
	;;
regress)
	name="fuzz format.c regressions and seeds replay"
	set --
	for f in "$here"/regressions/* "$here"/seeds/*; do
		[ -f "$f" ] && set -- "$@" "$f"
	done
	if [ $# -eq 0 ]; then
		echo "ok - $name # SKIP no inputs"
	elif "$fuzzer" -runs=1 "$@" >"$log" 2>&1; then
		echo "# $# inputs replayed"
		echo "ok - $name"
	else
		show_log
		echo "not ok - $name"
		exit 1
	fi
	;;
*)
	echo "usage: $0 fuzz SECONDS | regress" >&2
	exit 2
	;;
esac
