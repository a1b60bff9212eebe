#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# "make bench" in short: bench/bench-guest.sh runs one job (4k random read,
# iodepth 32) for 1 s once on each of its devices (qcow, loop, qemu-nbd)
# over a 64 MiB image, so that the benchmark keeps working.  Checks that
# every device produced a figure and the table was printed; never how fast
# anything is (the other lane runs at the same time).

set -u
. "$(dirname "$0")/test_common.sh"

require_root
require_cmd fio qemu-img qemu-nbd python3 losetup
require_module
modprobe nbd 2>/dev/null || skip_all "no nbd module"

bench=$QCOW2_SRC/bench/bench-guest.sh
out=$WORKDIR/out
log=$WORKDIR/bench.log
job=randread-qd32

QCOW2_BENCH_OUT=$out QCOW2_BENCH_SIZE=64M QCOW2_BENCH_RUNTIME=1 \
	QCOW2_BENCH_REPEAT=1 QCOW2_BENCH_JOBS=$job \
	QCOW2_BENCH_DEVICES="qcow loop nbd" \
	bash "$bench" >"$log" 2>&1
rc=$?
diag <"$log"
check "bench-guest.sh exits 0" test "$rc" -eq 0

# iops DEVICE: the run's IOPS from results.json, or nothing.
iops()
{
	python3 - "$out/results.json" "$1" <<'EOF' 2>/dev/null
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
for r in runs:
    if r["job"] == "randread-qd32" and r["device"] == sys.argv[2] and r["ok"]:
        print("%.0f" % r["iops"])
EOF
}

for dev in qcow loop nbd; do
	n=$(iops "$dev")
	if [ -n "$n" ] && [ "$n" -gt 0 ]; then
		ok "$dev: $job produced a positive IOPS figure"
	else
		fail "$dev: $job produced a positive IOPS figure"
	fi
done

check_match "the table has a $job row with three figures" \
	"^\| $job \(IOPS\) \| [0-9,]+ \| [0-9,]+ \| [0-9,]+ \|" "$(cat "$log")"
check "results.md saved" grep -q "^| $job " "$out/results.md"
check "the table states the image cache mode" \
	grep -q '^- image cache mode: buffered' "$out/results.md"
# Nothing left behind: the devices are gone again.
check "qemu-nbd disconnected" \
	test "$(blockdev --getsize64 /dev/nbd0 2>/dev/null || echo 0)" = 0

finish
