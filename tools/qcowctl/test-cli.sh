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

# log_none NAME: the fake driver got no request (bad usage stops early).
log_none() {
	if [ -s "$tmp/log" ]; then
		fail "$1"
		echo "# the driver got a request:"
		diag "$tmp/log"
	else
		pass "$1"
	fi
	rm -f "$tmp/log"
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
	'^ADD size=320 flags=1 index=4294967295 cache=4194304 mode=ro direct=0 locks=100,201$'
check "read-write attach" 0 out '^/dev/qcow5$' \
	fake "$qcowctl" attach --cache-size 64KiB "$img"
log_has "read-write attach takes QEMU's writer locks" \
	'^ADD size=320 flags=0 index=4294967295 cache=65536 mode=rw direct=0 locks=100,101,102,103,201,203$'
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
check "features" 0 out '^features: +read, compressed-zlib, deferred-remove, snapshots, snapshot-view, 0x10000000000$' \
	fake "$qcowctl" features
if grep -Eq '^attach flags: +read-only, snapshot$' "$tmp/out"; then
	pass "features names the attach flags"
else
	fail "features names the attach flags"
	diag "$tmp/out"
fi

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
assert d["abi-version"] == 1, d
assert d["attach-flags"] == ["read-only", "snapshot"], d
assert d["features"][-3:] == ["snapshots", "snapshot-view", "0x10000000000"], d' \
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

# --- snapshots, through fake /dev/qcowN nodes --------------------------------
# /dev/qcow5 exists (the fake opens $tmp/dev/qcow5 for it), /dev/qcow7 not.
mkdir "$tmp/dev"
: >"$tmp/dev/qcow5"
export FAKE_QCOW2_DEV_DIR="$tmp/dev" FAKE_QCOW2_SNAPSHOTS="$tmp/snaps" TZ=UTC
n255=$(printf '%255s' '' | tr ' ' n)
n256=${n255}n
id128=$(printf '%128s' '' | tr ' ' 1)
# id, name, date sec, nsec, VM clock ns, VM state size, disk size, icount
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
	1 first 1764109440 533918000 0 0 67108864 -1 \
	2 "$n255" 1764109500 5 3723456000000 123456789 67108864 42 \
	10 'quote"d' 0 0 0 1000 1073741824 0 >"$tmp/snaps"

check "snapshot without a command" 2 err 'missing snapshot command' \
	"$qcowctl" snapshot
check "snapshot with an unknown command" 2 err \
	"^qcowctl snapshot: unknown snapshot command 'frob'" \
	"$qcowctl" snapshot frob 5
check "snapshot --help" 0 out '^ qcowctl snapshot revert \[--id\|--name\] DEVICE ID\|NAME$' \
	"$qcowctl" snapshot --help
check "help snapshot" 0 out '^ qcowctl snapshot create \[--freeze\] DEVICE NAME$' \
	"$qcowctl" help snapshot
check "snapshot create --help" 0 out '--freeze' "$qcowctl" snapshot create --help
check "--help lists snapshot and attach --snapshot" 0 out \
	'^ qcowctl attach --snapshot ID\|NAME ' "$qcowctl" --help
check "unknown snapshot create option" 2 err "^Try 'qcowctl snapshot --help'" \
	fake "$qcowctl" snapshot create --bogus 5 x
check "snapshot create without NAME" 2 err \
	'^qcowctl snapshot create: missing NAME$' fake "$qcowctl" snapshot create 5
check "snapshot create without operands" 2 err 'missing DEVICE and NAME' \
	fake "$qcowctl" snapshot create
check "snapshot create with too many operands" 2 err \
	"too many arguments: 'y'" fake "$qcowctl" snapshot create 5 x y
check "snapshot create of a bad device" 2 err 'is not a qcow device' \
	fake "$qcowctl" snapshot create /dev/sda x
check "snapshot create with an empty NAME" 2 err 'NAME must not be empty' \
	fake "$qcowctl" snapshot create 5 ''
check "snapshot create with a 256-byte NAME" 2 err \
	'NAME is 256 bytes long; the limit is 255 bytes' \
	fake "$qcowctl" snapshot create 5 "$n256"
log_none "bad snapshot create usage reaches no driver"
check "snapshot list without DEVICE" 2 err 'missing DEVICE' \
	fake "$qcowctl" snapshot list
check "snapshot list with two devices" 2 err 'too many arguments' \
	fake "$qcowctl" snapshot list 5 6
check "snapshot delete with --id and --name" 2 err \
	'--id and --name exclude each other' \
	fake "$qcowctl" snapshot delete --id --name 5 1
check "snapshot delete without ID|NAME" 2 err 'missing ID\|NAME' \
	fake "$qcowctl" snapshot delete 5
check "snapshot revert --id without ID" 2 err 'missing ID$' \
	fake "$qcowctl" snapshot revert --id 5
check "snapshot delete --id of a 128-byte ID" 2 err \
	'ID is 128 bytes long; the limit is 127 bytes' \
	fake "$qcowctl" snapshot delete --id 5 "$id128"
check "snapshot revert of a 256-byte key" 2 err \
	'ID\|NAME is 256 bytes long' fake "$qcowctl" snapshot revert 5 "$n256"
check "snapshot revert of an empty key" 2 err 'must not be empty' \
	fake "$qcowctl" snapshot revert --name 5 ''
check "attach --snapshot with an empty name" 2 err \
	'--snapshot must not be empty' fake "$qcowctl" attach --snapshot '' "$img"
check "attach --snapshot with a 256-byte name" 2 err \
	'--snapshot is 256 bytes long' \
	fake "$qcowctl" attach --snapshot "$n256" "$img"
log_none "bad snapshot usage reaches no driver"

# Requests
check "snapshot create prints the new ID" 0 out '^12$' \
	fake env FAKE_QCOW2_SNAP_ID=12 "$qcowctl" snapshot create /dev/qcow5 before
log_has "snapshot create opens the device read-only" '^OPEN /dev/qcow5 mode=ro$'
check "snapshot create" 0 out '^3$' fake "$qcowctl" snapshot create qcow5 before
log_has "snapshot create sends the name" \
	'^SNAPSHOT_CREATE dev=5 size=424 flags=0 len=6 name=before$'
check "snapshot create --freeze" 0 out '^3$' \
	fake "$qcowctl" snapshot create 5 --freeze 'with space'
log_has "snapshot create --freeze sets QCOW2_SNAP_CREATE_FREEZE" \
	'^SNAPSHOT_CREATE dev=5 size=424 flags=1 len=10 name=with space$'
check "snapshot create with a 255-byte NAME" 0 out '^3$' \
	fake "$qcowctl" snapshot create 5 "$n255"
log_has "snapshot create sends all 255 bytes" \
	"^SNAPSHOT_CREATE dev=5 size=424 flags=0 len=255 name=$n255\$"
check "snapshot create -- -name" 0 out '^3$' \
	fake "$qcowctl" snapshot create 5 -- -dash
log_has "a NAME may start with a dash after --" 'len=5 name=-dash$'
for how in '' --id --name; do
	case $how in
	--id) flags=1 ;;
	--name) flags=2 ;;
	*) flags=0 ;;
	esac
	for op in delete revert; do
		uop=$(echo "$op" | tr '[:lower:]' '[:upper:]')
		# shellcheck disable=SC2086 # an empty $how is no argument
		check "snapshot $op $how" 0 out '' \
			fake "$qcowctl" snapshot "$op" $how 5 1
		if [ -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
			fail "snapshot $op $how is silent"
			diag "$tmp/out" "$tmp/err"
		else
			pass "snapshot $op $how is silent"
		fi
		log_has "snapshot $op $how sends flags=$flags" \
			"^SNAPSHOT_$uop dev=5 size=296 flags=$flags len=1 key=1\$"
	done
done
check "snapshot revert --name of a 255-byte name" 0 out '' \
	fake "$qcowctl" snapshot revert --name 5 "$n255"
log_has "snapshot revert sends the whole name" \
	"^SNAPSHOT_REVERT dev=5 size=296 flags=2 len=255 key=$n255\$"

# Output, as qemu-img 7/8 "snapshot -l" prints it
{
	echo 'Snapshot list:'
	echo 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT'
	echo '1         first                 0 B 2025-11-25 22:24:00 00:00:00.000           '
	echo "2         $n255  118 MiB 2025-11-25 22:25:00 01:02:03.456         42"
	echo '10        quote"d          0.977 KiB 1970-01-01 00:00:00 00:00:00.000          0'
} >"$tmp/want"
check "snapshot list" 0 out '^Snapshot list:$' fake "$qcowctl" snapshot list 5
if cmp -s "$tmp/want" "$tmp/out"; then
	pass "snapshot list prints qemu-img's columns"
else
	fail "snapshot list prints qemu-img's columns"
	diff "$tmp/want" "$tmp/out" | diag
fi
log_has "snapshot list asks for the count, then the entries" \
	'^SNAPSHOT_LIST size=40 count=3 entry_size=464$'
check "snapshot list of a growing table" 0 out '^10 ' \
	fake env FAKE_QCOW2_SNAP_GROW=1 "$qcowctl" snapshot list 5
log_has "snapshot list asks again when the table grew" \
	'^SNAPSHOT_LIST size=40 count=2 entry_size=464$'
check "snapshot list without snapshots" 0 out '' \
	fake env FAKE_QCOW2_SNAPSHOTS=/nonexistent "$qcowctl" snapshot list 5
if [ -s "$tmp/out" ]; then
	fail "snapshot list without snapshots prints nothing, as qemu-img"
	diag "$tmp/out"
else
	pass "snapshot list without snapshots prints nothing, as qemu-img"
fi
if command -v python3 >/dev/null 2>&1; then
	check "snapshot list --json" 0 out '' \
		fake "$qcowctl" snapshot list --json 5
	cp "$tmp/out" "$tmp/json"
	check "snapshot list --json is typed" 0 out '' python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [s["id"] for s in d] == ["1", "2", "10"], d
assert d[0] == {"id": "1", "name": "first", "date-sec": 1764109440,
                "date-nsec": 533918000, "vm-clock-sec": 0,
                "vm-clock-nsec": 0, "vm-state-size": 0,
                "disk-size": 67108864, "icount": None}, d[0]
assert d[1]["name"] == "n" * 255 and d[1]["icount"] == 42, d[1]
assert d[1]["vm-clock-sec"] == 3723, d[1]
assert d[1]["vm-clock-nsec"] == 456000000, d[1]
assert d[1]["vm-state-size"] == 123456789, d[1]
assert d[2]["name"] == "quote\"d" and d[2]["disk-size"] == 1 << 30, d[2]' \
		"$tmp/json"
	check "snapshot list --json without snapshots" 0 out '' \
		fake env FAKE_QCOW2_SNAPSHOTS=/nonexistent \
		"$qcowctl" snapshot list --json 5
	cp "$tmp/out" "$tmp/json"
	check "snapshot list --json without snapshots is []" 0 out '' \
		python3 -c '
import json, sys
assert json.load(open(sys.argv[1])) == []' "$tmp/json"
else
	skip "snapshot list --json parses" "no python3"
fi

# The same table through qemu-img and through qcowctl: same bytes.
qver=$(qemu-img --version 2>/dev/null | sed -n 's/^qemu-img version \([0-9]*\)\..*/\1/p')
if [ "$qver" != 7 ] && [ "$qver" != 8 ]; then
	skip "snapshot list matches qemu-img snapshot -l" \
		"qemu-img ${qver:-missing}, not 7 or 8"
elif ! command -v python3 >/dev/null 2>&1; then
	skip "snapshot list matches qemu-img snapshot -l" "no python3"
else
	simg=$tmp/snap.qcow2
	qemu-img create -q -f qcow2 "$simg" 64M
	qemu-img snapshot -c first "$simg"
	qemu-img snapshot -c "a somewhat longer snapshot name" "$simg"
	qemu-img snapshot -c first "$simg"
	qemu-img info --output=json "$simg" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for s in d["snapshots"]:
    print("\t".join(str(v) for v in (s["id"], s["name"], s["date-sec"],
          s["date-nsec"], s["vm-clock-sec"] * 10**9 + s["vm-clock-nsec"],
          s["vm-state-size"], d["virtual-size"], s.get("icount", -1))))' \
		>"$tmp/qsnaps"
	TZ=Europe/Berlin qemu-img snapshot -l "$simg" >"$tmp/want"
	check "snapshot list of qemu-img's snapshots" 0 out '' \
		fake env TZ=Europe/Berlin FAKE_QCOW2_SNAPSHOTS="$tmp/qsnaps" \
		"$qcowctl" snapshot list 5
	if cmp -s "$tmp/want" "$tmp/out"; then
		pass "snapshot list matches qemu-img snapshot -l"
	else
		fail "snapshot list matches qemu-img snapshot -l"
		diff "$tmp/want" "$tmp/out" | diag
	fi
fi

# Errors: the errno, and a hint where strerror() alone misleads
check "snapshot list of a missing device" 1 err \
	'^qcowctl: /dev/qcow7: cannot open device: No such file or directory \(no such qcow device\)$' \
	fake "$qcowctl" snapshot list /dev/qcow7
snap_err() {	# NAME ERRNO PATTERN SUBCOMMAND...
	name=$1 errno=$2 pattern=$3
	shift 3
	check "$name" 1 err "$pattern" \
		fake env FAKE_QCOW2_SNAP_ERR="$errno" "$qcowctl" snapshot "$@"
}
snap_err "snapshot delete of a missing snapshot" 2 \
	"^qcowctl: /dev/qcow5: cannot delete snapshot 'gone': No such file or directory \(no such snapshot\)$" \
	delete 5 gone
snap_err "snapshot revert of a missing snapshot" 2 \
	"cannot revert to snapshot 'gone': .*\(no such snapshot\)$" \
	revert --name 5 gone
snap_err "snapshot revert of a device in use" 16 \
	"^qcowctl: /dev/qcow5: cannot revert to snapshot '1': Device or resource busy \(device is in use; unmount it first, or detach a view of the snapshot\)$" \
	revert 5 1
snap_err "snapshot delete of a viewed snapshot" 16 \
	"cannot delete snapshot '1': Device or resource busy \(a snapshot view shows it; detach the view first\)$" \
	delete 5 1
snap_err "snapshot create on a read-only device" 30 \
	'^qcowctl: /dev/qcow5: cannot create snapshot: Read-only file system \(device is read-only\)$' \
	create 5 x
snap_err "snapshot create the driver cannot do" 95 \
	'cannot create snapshot: Operation not supported \(see dmesg\)$' \
	create 5 x
snap_err "snapshot create in a full table" 27 \
	'cannot create snapshot: File too large \(the image holds as many snapshots as qcow2 allows\)$' \
	create 5 x
snap_err "snapshot create without privilege" 1 \
	'cannot create snapshot: Operation not permitted \(this needs CAP_SYS_ADMIN; are you root\?\)$' \
	create 5 x
snap_err "snapshot list on a driver without snapshots" 25 \
	'^qcowctl: /dev/qcow5: cannot list snapshots: Inappropriate ioctl for device \(driver too old for snapshots\)$' \
	list 5
snap_err "snapshot delete on a driver without snapshots" 25 \
	'\(driver too old for snapshots\)$' delete 5 1
rm -f "$tmp/log"

# attach --snapshot: a read-only view, the image opened and locked as a reader
check "attach --snapshot" 0 out '^/dev/qcow5$' \
	fake "$qcowctl" attach --snapshot first "$img"
log_has "attach --snapshot implies --read-only" \
	'^ADD size=320 flags=3 index=4294967295 cache=0 mode=ro direct=0 locks=100,201 snapshot_flags=0 snapshot=first$'
check "attach --read-only --snapshot" 0 out '^/dev/qcow5$' \
	fake "$qcowctl" attach -r --snapshot "$n255" "$img"
log_has "attach --snapshot sends a 255-byte name" \
	"^ADD size=320 flags=3 .* snapshot_flags=0 snapshot=$n255\$"
check "attach --snapshot of a missing snapshot" 1 err \
	'attach failed: No such file or directory \(no such snapshot\)$' \
	fake env FAKE_QCOW2_ADD_ERR=2 "$qcowctl" attach --snapshot gone "$img"
check "attach --snapshot on a driver without views" 1 err \
	'attach failed: Argument list too long \(the loaded driver has no snapshot views; is it older than qcowctl\?\)$' \
	fake env FAKE_QCOW2_ADD_ERR=7 "$qcowctl" attach --snapshot first "$img"

# A view beside a writer: refused, unless the writer is our own read-write
# device of the same image.  A POSIX lock on byte 101 plays QEMU's (or
# that device's) "write" permission lock.
if command -v python3 >/dev/null 2>&1; then
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "rb")
fcntl.lockf(f, fcntl.LOCK_SH, 1, 101)
open(sys.argv[2], "w").close()
time.sleep(120)' "$img" "$tmp/locked" &
	nbd_pid=$!	# killed by cleanup() if a check below aborts
	i=0
	while [ ! -e "$tmp/locked" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	check "attach --snapshot beside a foreign writer" 1 err \
		'cannot lock image: it is in use by another process' \
		fake "$qcowctl" attach --snapshot first "$img"
	printf '%s\n' "$img" >"$tmp/dev/qcow2.image"
	check "attach --snapshot beside a read-only device of the image" 1 err \
		'cannot lock image: it is in use by another process' \
		fake env FAKE_QCOW2_DEVICES=2 "$qcowctl" attach --snapshot first "$img"
	printf '%s\n' "$tmp/raw.img" >"$tmp/dev/qcow3.image"
	check "attach --snapshot beside a read-write device of another image" 1 err \
		'cannot lock image: it is in use by another process' \
		fake env FAKE_QCOW2_DEVICES=3 FAKE_QCOW2_RW=3 \
		"$qcowctl" attach --snapshot first "$img"
	rm -f "$tmp/log"
	check "attach --snapshot beside our read-write device of the image" 0 out \
		'^/dev/qcow5$' fake env FAKE_QCOW2_DEVICES=2,3 FAKE_QCOW2_RW=2,3 \
		"$qcowctl" attach --snapshot first "$img"
	# 101 is the stand-in writer's lock, seen from the fake driver.
	log_has "a view beside our writer still locks as a reader" \
		'^ADD size=320 flags=3 .* mode=ro direct=0 locks=100,101,201 snapshot_flags=0 snapshot=first$'
	check "attach --read-only beside our read-write device is refused" 1 err \
		'cannot lock image: it is in use' \
		fake env FAKE_QCOW2_DEVICES=2 FAKE_QCOW2_RW=2 \
		"$qcowctl" attach -r "$img"
	kill "$nbd_pid"
	wait "$nbd_pid" 2>/dev/null || true
	nbd_pid=
else
	skip "attach --snapshot beside a writer" "no python3"
fi
unset FAKE_QCOW2_DEV_DIR FAKE_QCOW2_SNAPSHOTS TZ

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
for cmd in attach detach list info features "snapshot create" \
	   "snapshot list" "snapshot delete" "snapshot revert"; do
	if grep -Eq "^\.(B|BI) \"?$cmd( |\"|$)" "$srcdir/qcowctl.8"; then
		pass "man page documents $cmd"
	else
		fail "man page documents $cmd"
	fi
done
# Every long option that a command's --help shows is in the man page.
for cmd in attach detach list info features snapshot; do
	for opt in $("$qcowctl" "$cmd" --help | grep -Eo -- '--[a-z][a-z-]*' |
		     sort -u); do
		man_opt=$(printf '%s\n' "$opt" | sed 's/-/\\\\-/g')
		if grep -q -- "$man_opt" "$srcdir/qcowctl.8"; then
			pass "man page documents $cmd $opt"
		else
			fail "man page documents $cmd $opt"
		fi
	done
done

exit "$failed"
