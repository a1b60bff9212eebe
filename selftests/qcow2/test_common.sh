# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers sourced by every test_*.sh.  Result lines follow the project's
# protocol: "ok - NAME", "not ok - NAME", "ok - NAME # SKIP REASON"; all
# other output starts with "# ".  run.sh prefixes the names with the kernel
# version.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

SELFTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
QCOW2_SRC=${QCOW2_SRC:-$(cd "$SELFTEST_DIR/../.." && pwd)}
QCOWCTL=${QCOWCTL:-$QCOW2_SRC/tools/qcowctl/qcowctl}
# shellcheck disable=SC2034 # used by the scripts that source this file
QCOW2_CMP=$SELFTEST_DIR/qcow2_cmp
# shellcheck disable=SC2034
CTL_ABI=$SELFTEST_DIR/ctl_abi
TEST_NAME=$(basename "$0" .sh)

n_pass=0
n_fail=0
n_skip=0

ok()
{
	echo "ok - $TEST_NAME: $*"
	n_pass=$((n_pass + 1))
}

fail()
{
	echo "not ok - $TEST_NAME: $*"
	n_fail=$((n_fail + 1))
}

skip()
{
	local name=$1

	shift
	echo "ok - $TEST_NAME: $name # SKIP $*"
	n_skip=$((n_skip + 1))
}

# Report NAME as ok when the condition (the remaining arguments, a command)
# succeeds.
check()
{
	local name=$1

	shift
	if "$@"; then
		ok "$name"
	else
		fail "$name"
	fi
}

# fails COMMAND...: succeeds when COMMAND fails; for negative controls,
# "check NAME fails cmp -s A B".
fails()
{
	! "$@"
}

# check_match NAME ERE TEXT: TEXT matches the extended regexp ERE.
check_match()
{
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then
		ok "$1"
	else
		fail "$1"
	fi
}

# check_refused NAME RC STDERR_FILE: a qcowctl command failed with exit 1
# and a "qcowctl: ..." message.
check_refused()
{
	if [ "$2" -eq 1 ] && grep -q '^qcowctl: ' "$3"; then
		ok "$1"
	else
		diag "rc $2, stderr: $(head -n 1 "$3")"
		fail "$1"
	fi
}

diag()
{
	local line

	if [ $# -gt 0 ]; then
		echo "# $*"
		return
	fi
	while IFS= read -r line; do
		echo "# $line"
	done
}

# Skip the whole script: run.sh turns exit 4 plus this reason into one SKIP
# line.
skip_all()
{
	echo "# SKIP: $*"
	exit "$KSFT_SKIP"
}

# End of a test script: exit status says whether any case failed.
finish()
{
	diag "$TEST_NAME: $n_pass passed, $n_fail failed, $n_skip skipped"
	[ "$n_fail" -eq 0 ] && exit "$KSFT_PASS"
	exit "$KSFT_FAIL"
}

require_root()
{
	[ "$(id -u)" -eq 0 ] || skip_all "must run as root"
}

require_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "$c not installed"
	done
}

require_module()
{
	[ -c /dev/qcow-control ] ||
		skip_all "/dev/qcow-control missing (qcow2.ko not loaded)"
	[ -x "$QCOWCTL" ] || skip_all "qcowctl not built at $QCOWCTL"
}

# Scratch directory on the guest's tmpfs, removed at exit.
WORKDIR=$(mktemp -d /tmp/qcow2-"$TEST_NAME".XXXXXX) || exit "$KSFT_FAIL"
ATTACHED_LIST=$WORKDIR/.attached
MOUNT_LIST=$WORKDIR/.mounts
: >"$ATTACHED_LIST"
: >"$MOUNT_LIST"

# attach_ro IMAGE [QCOWCTL ATTACH OPTIONS...]: print the device path on
# stdout.  The device is remembered (in a file, since callers use $(...))
# so that the exit trap can detach it.
attach_ro()
{
	local img=$1

	shift
	attach_dev "$img" --read-only "$@"
}

# attach_rw IMAGE [QCOWCTL ATTACH OPTIONS...]: like attach_ro, but the
# device is writable.
attach_rw()
{
	attach_dev "$@"
}

attach_dev()
{
	local img=$1 dev rc

	shift
	dev=$("$QCOWCTL" attach "$@" "$img")
	rc=$?
	if [ $rc -ne 0 ]; then
		return $rc
	fi
	case $dev in
	/dev/qcow[0-9]*) ;;
	*)
		echo "# attach printed '$dev', not /dev/qcowN" >&2
		return 1
		;;
	esac
	echo "$dev" >>"$ATTACHED_LIST"
	echo "$dev"
}

# check_image NAME IMG [ALLOWED]: qemu-img check of IMG (detached) exits
# with one of the codes in ALLOWED (default "0": no errors and no leaks;
# "0 3" accepts leaked clusters, as after a crash).  Reports NAME.
check_image()
{
	local name=$1 img=$2 allowed=${3:-0} rc a

	qemu-img check "$img" >"$WORKDIR/check.log" 2>&1
	rc=$?
	for a in $allowed; do
		if [ "$rc" -eq "$a" ]; then
			if [ "$rc" -ne 0 ]; then
				grep -E 'leak' "$WORKDIR/check.log" | head -n 3 | diag
			fi
			ok "$name: qemu-img check exit $rc"
			return 0
		fi
	done
	head -n 20 "$WORKDIR/check.log" | diag
	fail "$name: qemu-img check exit $rc (want ${allowed// / or })"
	return 1
}

# convert_attach NAME RAW IMG QEMU-IMG-OPTIONS...: convert the raw file RAW
# into the qcow2 image IMG with those options, attach it read-only and set
# DEV to the device.  On failure print "not ok - NAME: ..." and return 1.
# Not for $(...): the result lines must reach stdout.
convert_attach()
{
	local name=$1 raw=$2 img=$3

	shift 3
	if ! qemu-img convert -f raw -O qcow2 "$@" "$raw" "$img" \
		2>"$WORKDIR/err"; then
		diag <"$WORKDIR/err"
		fail "$name: qemu-img convert"
		return 1
	fi
	DEV=$(attach_ro "$img" 2>"$WORKDIR/err")
	if [ -z "$DEV" ]; then
		diag <"$WORKDIR/err"
		fail "$name: attach"
		return 1
	fi
}

forget_dev()
{
	local keep

	keep=$(grep -vx -- "$1" "$ATTACHED_LIST")
	if [ -n "$keep" ]; then
		printf '%s\n' "$keep" >"$ATTACHED_LIST"
	else
		: >"$ATTACHED_LIST"
	fi
}

# disk_seq DEV: the kernel's sequence number of the disk behind DEV, which
# no later disk of the same name shares; empty when there is none.
disk_seq()
{
	cat "/sys/block/${1#/dev/}/diskseq" 2>/dev/null
}

# Call before detaching DEV, so that wait_gone() knows which disk it was.
note_detaching()
{
	DETACHING_DEV=$1
	DETACHING_SEQ=$(disk_seq "$1")
}

detach()
{
	local dev=$1

	note_detaching "$dev"
	"$QCOWCTL" detach "$dev" || return
	forget_dev "$dev"
}

# Wait up to $2 seconds (default 10) for a path to disappear.  A test run
# beside this one may attach a device of the same name meanwhile: for the
# device noted by note_detaching(), another disk at the path counts as gone.
wait_gone()
{
	local path=$1 tries=$((${2:-10} * 10)) seq=

	[ "$path" = "${DETACHING_DEV:-}" ] && seq=$DETACHING_SEQ
	while [ -e "$path" ] && [ $tries -gt 0 ]; do
		if [ -n "$seq" ] && [ "$(disk_seq "$path")" != "$seq" ]; then
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	[ ! -e "$path" ]
}

do_mount()
{
	mount "$@" || return
	echo "${!#}" >>"$MOUNT_LIST"
}

do_umount()
{
	local mnt=$1 keep

	umount "$mnt" || return
	keep=$(grep -vx -- "$mnt" "$MOUNT_LIST")
	if [ -n "$keep" ]; then
		printf '%s\n' "$keep" >"$MOUNT_LIST"
	else
		: >"$MOUNT_LIST"
	fi
}

cleanup()
{
	local rc=$? m d

	while read -r m; do
		[ -n "$m" ] && umount "$m" 2>/dev/null
	done <"$MOUNT_LIST"
	while read -r d; do
		[ -n "$d" ] && [ -e "$d" ] && "$QCOWCTL" detach "$d" >/dev/null 2>&1
	done <"$ATTACHED_LIST"
	rm -rf "$WORKDIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Kernel log markers: kmsg_mark writes a unique line to the kernel log and
# prints it; dmesg_since MARK prints what the kernel logged after it.
kmsg_mark()
{
	local mark="qcow2-selftest-$TEST_NAME-$$-$RANDOM$RANDOM"

	echo "$mark" >/dev/kmsg
	echo "$mark"
}

dmesg_since()
{
	dmesg | sed -n "/$1/,\$p" | tail -n +2
}

# check_dmesg_since MARK [ERE]: the driver logged something matching ERE
# (default: any line naming qcow2) after MARK.
check_dmesg_since()
{
	dmesg_since "$1" | grep -Eiq -- "${2:-qcow}"
}

# The block device's size in bytes.
dev_size()
{
	blockdev --getsize64 "$1"
}

sha256()
{
	sha256sum <"$1" | cut -d' ' -f1
}

# Big-endian byte pokes and peeks into an image file.
poke_hex()
{
	local img=$1 off=$2 hex=$3 esc=""

	while [ -n "$hex" ]; do
		esc="$esc\\x${hex:0:2}"
		hex=${hex:2}
	done
	# shellcheck disable=SC2059
	printf "$esc" | dd of="$img" bs=1 seek="$off" conv=notrunc status=none
}

poke_be32()
{
	poke_hex "$1" "$2" "$(printf '%08x' "$3")"
}

poke_be64()
{
	poke_hex "$1" "$2" "$(printf '%016x' "$3")"
}

peek_hex()
{
	od -A n -t x1 -v -j "$2" -N "$3" "$1" | tr -d ' \n'
}

# Prints a decimal value (bash arithmetic is 64-bit signed; bit 63 wraps to
# negative, which is fine for masking).
peek_be64()
{
	echo $((16#$(peek_hex "$1" "$2" 8)))
}

peek_be32()
{
	echo $((16#$(peek_hex "$1" "$2" 4)))
}
