#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of qcowctl; no qcow2 module needed.  The driver's
# answers come from test-fakectl.so (LD_PRELOAD) on a fake control file.
#
# Prints one "ok - NAME", "not ok - NAME" or "ok - NAME # SKIP why" line
# per check, diagnostics as "# ..."; exits 1 if a check failed.
#
# Usage: test-cli.sh [BUILDDIR]   (default: this script's directory)

set -eu

srcdir=$(cd "$(dirname "$0")" && pwd)
builddir=${1:-$srcdir}
qcowctl=$builddir/qcowctl
fake=$builddir/test-fakectl.so

if [ ! -x "$qcowctl" ] || [ ! -x "$builddir/test-strutils" ] ||
   [ ! -e "$fake" ]; then
	make -s -C "$builddir" -f "$srcdir/Makefile" qcowctl tests >&2
fi

tmp=$(mktemp -d)
nbd_pid=
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	if [ -n "$nbd_pid" ]; then
		kill "$nbd_pid" 2>/dev/null || true
		wait "$nbd_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failed=0
missing_ctl=$tmp/no-such-dir/qcow-control

pass() { echo "ok - $1"; }
fail() {
	echo "not ok - $1"
	failed=1
}
skip() { echo "ok - $1 # SKIP $2"; }

diag() {
	sed 's/^/# /' "$@"
}

# check NAME RC STREAM PATTERN CMD...
# Run CMD; pass if it exits with RC and STREAM (out or err) has a line
# matching the extended regex PATTERN ("" matches anything).
check() {
	name=$1 want_rc=$2 stream=$3 pattern=$4
	shift 4
	rc=0
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "$name"
		echo "# exit status $rc, want $want_rc: $*"
		diag "$tmp/out" "$tmp/err"
		return 0
	fi
	if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$tmp/$stream"; then
		fail "$name"
		echo "# std$stream has no match for: $pattern"
		diag "$tmp/out" "$tmp/err"
		return 0
	fi
	pass "$name"
}

# As check, but with the fake driver in place.
fake() {
	env LD_PRELOAD="$fake" QCOWCTL_CONTROL_DEVICE="$tmp/ctl" \
	    FAKE_QCOW2_LOG="$tmp/log" "$@"
}

# log_has NAME PATTERN: the fake driver logged a matching call.
log_has() {
	if grep -Eq -- "$2" "$tmp/log" 2>/dev/null; then
		pass "$1"
	else
		fail "$1"
		echo "# driver log has no match for: $2"
		[ -e "$tmp/log" ] && diag "$tmp/log"
	fi
	rm -f "$tmp/log"
}

# --- unit tests of the string helpers --------------------------------------
"$builddir/test-strutils" || failed=1

# --- usage and exit status 2 ------------------------------------------------
check "--version" 0 out '^qcowctl 0\.1$' "$qcowctl" --version
check "--help lists the commands" 0 out '^ qcowctl features' \
	"$qcowctl" --help
check "help COMMAND" 0 out '^ qcowctl detach --all$' "$qcowctl" help detach
check "COMMAND --help" 0 out '--cache-size SIZE' "$qcowctl" attach --help
check "no command" 2 err "Try 'qcowctl --help'" "$qcowctl"
check "unknown command" 2 err "unknown command 'frobnicate'" \
	"$qcowctl" frobnicate
check "unknown global option" 2 err "unrecognized option '--bogus'" \
	"$qcowctl" --bogus
check "unknown attach option" 2 err "^Try 'qcowctl attach --help'" \
	"$qcowctl" attach --bogus x.qcow2
check "attach without IMAGE" 2 err 'missing IMAGE' "$qcowctl" attach
check "attach with two images" 2 err 'too many arguments' \
	"$qcowctl" attach a b
check "attach --cache-size without value" 2 err 'requires an argument' \
	"$qcowctl" attach x.qcow2 --cache-size
for size in 1X 1.5G -1 1KB "" 99999999999999999999 16777216T; do
	check "attach --cache-size '$size' is bad usage" 2 err \
		'invalid --cache-size' "$qcowctl" attach --cache-size "$size" x
done
check "detach without DEVICE" 2 err 'missing DEVICE' "$qcowctl" detach
check "detach --all with DEVICE" 2 err 'takes no DEVICE' \
	"$qcowctl" detach --all 0
for dev in /dev/sda qcow qcowx 01 4294967295 /dev/qcow0p1 /dev/qcow-control; do
	check "detach '$dev' is bad usage" 2 err 'is not a qcow device' \
		"$qcowctl" detach "$dev"
done
check "info without DEVICE" 2 err 'missing DEVICE' "$qcowctl" info
check "list takes no argument" 2 err "unexpected argument" \
	"$qcowctl" list extra
check "help of unknown command" 2 err "unknown command" \
	"$qcowctl" help frobnicate
if [ -w /dev/full ]; then
	# shellcheck disable=SC2016 # expanded by the inner shell
	check "write error is a failure" 1 err 'write error' \
		sh -c '"$1" --help >/dev/full' sh "$qcowctl"
else
	skip "write error is a failure" "no /dev/full"
fi

# --- failures without the driver (exit 1) -----------------------------------
for cmd in list features "info 0" "detach 0" "detach --all"; do
	# shellcheck disable=SC2086 # $cmd is split on purpose
	check "$cmd without the module" 1 err \
		"^qcowctl: $missing_ctl: cannot open control device: No such file or directory \(is the qcow2 module loaded\?\)$" \
		env QCOWCTL_CONTROL_DEVICE="$missing_ctl" "$qcowctl" $cmd
done
: >"$tmp/ctl"
check "driver without the ioctl (ENOTTY)" 1 err \
	'cannot get driver features: Inappropriate ioctl for device \(' \
	env QCOWCTL_CONTROL_DEVICE="$tmp/ctl" "$qcowctl" features
check "attach of a missing image" 1 err \
	"^qcowctl: $tmp/none.qcow2: cannot open image: No such file or directory$" \
	"$qcowctl" attach -r "$tmp/none.qcow2"
check "attach of a directory" 1 err 'not a regular file' \
	"$qcowctl" attach -r "$tmp"
printf 'not a qcow2 image\n' >"$tmp/raw.img"
check "attach of a non-qcow2 file" 1 err 'raw.img: cannot attach: Image is not in qcow2 format' \
	"$qcowctl" attach -r "$tmp/raw.img"

# A real image: the tool checks the header with the driver's parser.
img=$tmp/a.qcow2
qemu-img create -q -f qcow2 "$img" 64M
check "attach of a good image reaches the control device" 1 err \
	'cannot open control device: .*module loaded' \
	env QCOWCTL_CONTROL_DEVICE="$missing_ctl" "$qcowctl" attach "$img"

# --- requests and output, with the fake driver ------------------------------
check "attach prints the device" 0 out '^/dev/qcow5$' \
	fake "$qcowctl" attach --read-only --cache-size 4M "$img"
log_has "read-only attach sends the right request" \
	'^ADD size=56 flags=1 index=4294967295 cache=4194304 mode=ro direct=0 locks=100,201$'
check "read-write attach" 0 out '^/dev/qcow5$' \
	fake "$qcowctl" attach --cache-size 64KiB "$img"
log_has "read-write attach takes QEMU's writer locks" \
	'^ADD size=56 flags=0 index=4294967295 cache=65536 mode=rw direct=0 locks=100,101,102,103,201,203$'
if fake "$qcowctl" attach -r --direct-io "$img" >/dev/null 2>"$tmp/err"; then
	log_has "--direct-io opens with O_DIRECT" 'ADD .* direct=1 '
elif grep -q 'does not support direct I/O' "$tmp/err"; then
	skip "--direct-io opens with O_DIRECT" "no O_DIRECT on $tmp"
else
	fail "--direct-io opens with O_DIRECT"
	diag "$tmp/err"
fi
check "attach refused by the driver" 1 err \
	'attach failed: Operation not supported \(see dmesg for the feature the driver refused\)$' \
	fake env FAKE_QCOW2_ADD_ERR=95 "$qcowctl" attach -r "$img"
check "read-write attach refused by the driver" 1 err \
	'attach failed: Operation not supported \(see dmesg .*; try --read-only\)$' \
	fake env FAKE_QCOW2_ADD_ERR=95 "$qcowctl" attach "$img"

export FAKE_QCOW2_DEVICES=0,3 FAKE_QCOW2_BUSY=3
check "list" 0 out '^/dev/qcow3 +10G +1 +2097152 +3 -$' fake "$qcowctl" list
check "list has a header" 0 out '^NAME +SIZE +RO +CLUSTER +VERSION +IMAGE$' \
	fake "$qcowctl" list
check "list --noheadings" 0 out '^/dev/qcow0 ' fake "$qcowctl" list -n
if grep -q NAME "$tmp/out"; then
	fail "list --noheadings has no header"
else
	pass "list --noheadings has no header"
fi
check "info" 0 out '^version: +3 \(compat 1\.1\)$' fake "$qcowctl" info qcow3
for line in '^incompatible features: +dirty, compression-type, 0x60$' \
	    '^compression type: +zstd$' '^state: +removing$' \
	    '^cache hit rate: +75\.0%$' '^virtual size: +10G \(10737418752 bytes\)$'; do
	if grep -Eq -- "$line" "$tmp/out"; then
		pass "info shows /$line/"
	else
		fail "info shows /$line/"
		diag "$tmp/out"
	fi
done
check "info of a v2 image" 0 out '^version: +2 \(compat 0\.10\)$' \
	fake "$qcowctl" info /dev/qcow0
check "info of a missing device" 1 err \
	'^qcowctl: /dev/qcow7: cannot get device info: No such device or address \(no such qcow device\)$' \
	fake "$qcowctl" info 7
check "features" 0 out '^features: +read, compressed-zlib, deferred-remove, 0x10000000000$' \
	fake "$qcowctl" features

if command -v python3 >/dev/null 2>&1; then
	# Typed JSON: parse it and compare values, not text.
	check "list --json" 0 out '' fake "$qcowctl" list --json
	cp "$tmp/out" "$tmp/json"
	check "list --json is typed" 0 out '' python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
devs = d["qcowdevices"]
assert [x["name"] for x in devs] == ["/dev/qcow0", "/dev/qcow3"], devs
assert devs[1]["size"] == 10737418752 and devs[1]["ro"] is True, devs
assert devs[1]["cluster-size"] == 2097152 and devs[1]["version"] == 3
assert devs[0]["image"] is None' "$tmp/json"
	check "info --json" 0 out '' fake "$qcowctl" info --json 3
	cp "$tmp/out" "$tmp/json"
	check "info --json is typed" 0 out '' python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["device"] == "/dev/qcow3" and d["version"] == 3, d
assert d["compat"] == "1.1" and d["compression-type"] == "zstd", d
assert d["incompatible-features"] == ["dirty", "compression-type", "0x60"]
assert d["autoclear-features"] == ["data-file-raw"], d
assert d["read-only"] is True and d["corrupt"] is False, d
assert d["state"] == "removing" and d["cache-hit-rate"] == 0.75, d' "$tmp/json"
	check "features --json" 0 out '' fake "$qcowctl" features --json
	cp "$tmp/out" "$tmp/json"
	check "features --json is typed" 0 out '' python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["abi-version"] == 1 and d["attach-flags"] == ["read-only"], d' \
		"$tmp/json"
	check "list --json without devices" 0 out '' \
		fake env FAKE_QCOW2_DEVICES= "$qcowctl" list --json
	cp "$tmp/out" "$tmp/json"
	check "list --json without devices is valid" 0 out '' python3 -c '
import json, sys
assert json.load(open(sys.argv[1])) == {"qcowdevices": []}' "$tmp/json"
else
	skip "JSON output parses" "no python3"
fi
check "list without devices prints nothing" 0 out '' \
	fake env FAKE_QCOW2_DEVICES= "$qcowctl" list
if [ -s "$tmp/out" ]; then
	fail "list without devices is empty"
else
	pass "list without devices is empty"
fi

rm -f "$tmp/log"
check "detach" 0 out '' fake "$qcowctl" detach /dev/qcow0
if [ -s "$tmp/err" ]; then
	fail "detach of an idle device is silent"
	diag "$tmp/err"
else
	pass "detach of an idle device is silent"
fi
log_has "detach sends the index" '^REMOVE size=32 index=0$'
check "detach of a busy device is deferred" 0 err \
	'^qcowctl: /dev/qcow3: device is busy; it will be detached when the last user closes it$' \
	fake "$qcowctl" detach qcow3
check "detach goes on after a failure" 1 err \
	'^qcowctl: /dev/qcow4: detach failed: No such device or address \(no such qcow device\)$' \
	fake "$qcowctl" detach 4 0
log_has "detach after a failure reaches the next device" 'REMOVE size=32 index=0'
check "detach --all" 0 out '' fake "$qcowctl" detach --all
log_has "detach --all removes every device" 'REMOVE size=32 index=3'
unset FAKE_QCOW2_DEVICES FAKE_QCOW2_BUSY

# --- interplay with QEMU's image locks --------------------------------------
if command -v qemu-img >/dev/null 2>&1 && command -v qemu-nbd >/dev/null 2>&1
then
	qimg=$tmp/q.qcow2
	qemu-img create -q -f qcow2 "$qimg" 1M
	for mode in rw ro; do
		opt=
		[ "$mode" = ro ] && opt=-r
		qemu-nbd $opt -k "$tmp/nbd.sock" -f qcow2 "$qimg" \
			>"$tmp/nbd.log" 2>&1 &
		nbd_pid=$!
		i=0
		while [ ! -S "$tmp/nbd.sock" ] && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if [ ! -S "$tmp/nbd.sock" ]; then
			fail "qemu-nbd $mode starts"
			diag "$tmp/nbd.log"
		fi
		check "read-write attach while qemu-nbd ($mode) has the image" 1 err \
			'cannot lock image: it is in use by another process \(qemu\?\)$' \
			env QCOWCTL_CONTROL_DEVICE="$missing_ctl" "$qcowctl" attach "$qimg"
		if [ "$mode" = rw ]; then
			check "read-only attach while qemu-nbd writes" 1 err \
				'cannot lock image: it is in use' \
				env QCOWCTL_CONTROL_DEVICE="$missing_ctl" \
				"$qcowctl" attach -r "$qimg"
		else
			check "read-only attach next to a qemu reader" 1 err \
				'cannot open control device' \
				env QCOWCTL_CONTROL_DEVICE="$missing_ctl" \
				"$qcowctl" attach -r "$qimg"
		fi
		kill "$nbd_pid"
		wait "$nbd_pid" 2>/dev/null || true
		nbd_pid=
		rm -f "$tmp/nbd.sock"
	done
else
	skip "attach respects QEMU's image locks" "no qemu-img/qemu-nbd"
fi

# --- man page -----------------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
	# shellcheck disable=SC2016 # expanded by the inner shell
	check "man page renders without warnings" 0 out '' \
		sh -c '! groff -ww -z -man "$1" 2>&1 | grep .' sh "$srcdir/qcowctl.8"
else
	skip "man page renders without warnings" "no groff"
fi
for cmd in attach detach list info features; do
	if grep -Eq "^\.(B|BI) $cmd( |$)" "$srcdir/qcowctl.8"; then
		pass "man page documents $cmd"
	else
		fail "man page documents $cmd"
	fi
done

exit "$failed"
