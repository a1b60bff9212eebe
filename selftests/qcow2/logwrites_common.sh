# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# dm-log-writes recording and replay for the crash-consistency tests
# (test_crash.sh, test_snapshot_crash.sh).  Source it after test_common.sh.
#
# Recording:  lw_start NAME DATA_SIZE LOG_SIZE  ext4 on a log-writes device
#             over two loop devices (files on the guest's tmpfs), mounted at
#             $LW_MNT, with a mark "mkfs"; lw_mark NAME; lw_stop unmounts,
#             checks that the log kept up and tears the devices down.  The
#             log stays in $LW_LOG, the final data device in $LW_DATA.
# Replaying:  lw_list reads the log ($LW_ENTRIES, one line an entry, see
#             log_replay --list; LW_N entries); lw_mark_entry NAME prints a
#             mark's index; lw_replay_to P applies the log up to entry P
#             (not included) onto $LW_BASE, going forward only;
#             lw_mount_copy P mounts a copy of it at $LW_CHK (ext4 recovers
#             its journal there), lw_umount_copy drops that copy.
#
# Loop and dm devices are remembered and torn down at exit, after the qcow
# devices (whose image files live on them) and the mounts.

LOG_REPLAY=$SELFTEST_DIR/log_replay
LW_DATA=$WORKDIR/lw.data
LW_LOG=$WORKDIR/lw.log
LW_MNT=$WORKDIR/lwmnt
LW_BASE=$WORKDIR/replay.raw
LW_CHK=$WORKDIR/chkmnt
LW_ENTRIES=$WORKDIR/entries.txt
LW_ERR=$WORKDIR/lw.err

DM_LIST=$WORKDIR/.dm
LOOP_LIST=$WORKDIR/.loops
: >"$DM_LIST"
: >"$LOOP_LIST"

# lw_require: skip the whole test without loop, ext4, device mapper or the
# log_replay helper.  dm-log-writes itself is left to lw_start's caller.
lw_require()
{
	require_cmd dmsetup losetup mkfs.ext4 truncate cmp
	[ -x "$LOG_REPLAY" ] ||
		skip_all "log_replay not built (make -C selftests/qcow2)"
	modprobe loop 2>/dev/null
	modprobe ext4 2>/dev/null
	grep -qw ext4 /proc/filesystems || skip_all "ext4 not available in this kernel"
	[ -c /dev/mapper/control ] || modprobe dm_mod 2>/dev/null
}

lw_cleanup()
{
	local rc=$? d

	while read -r d; do
		[ -n "$d" ] && [ -e "$d" ] && "$QCOWCTL" detach "$d" >/dev/null 2>&1
	done <"$ATTACHED_LIST"
	for d in $(seq 1 20); do
		[ -e "$(head -n 1 "$ATTACHED_LIST")" ] || break
		sleep 0.1
	done
	while read -r d; do
		[ -n "$d" ] && umount "$d" 2>/dev/null
	done <"$MOUNT_LIST"
	while read -r d; do
		[ -n "$d" ] && dmsetup remove "$d" >/dev/null 2>&1
	done <"$DM_LIST"
	while read -r d; do
		[ -n "$d" ] && losetup -d "$d" 2>/dev/null
	done <"$LOOP_LIST"
	(exit "$rc")
	cleanup
}
trap lw_cleanup EXIT

# new_loop FILE [LOSETUP OPTIONS]: print the loop device set up over FILE.
new_loop()
{
	local f=$1 l

	shift
	l=$(losetup -f --show "$@" "$f") || return
	echo "$l" >>"$LOOP_LIST"
	echo "$l"
}

del_loop()
{
	losetup -d "$1" || return
	grep -vx -- "$1" "$LOOP_LIST" >"$LOOP_LIST.new"
	mv "$LOOP_LIST.new" "$LOOP_LIST"
}

# dm_create NAME TABLE: the node is /dev/mapper/NAME (made by dmsetup
# itself, as there is no udev in the guest).
dm_create()
{
	dmsetup create "$1" --table "$2" || return
	echo "$1" >>"$DM_LIST"
	[ -b "/dev/mapper/$1" ] || dmsetup mknodes "$1"
}

dm_remove()
{
	dmsetup remove "$1" || return
	grep -vx -- "$1" "$DM_LIST" >"$DM_LIST.new"
	mv "$DM_LIST.new" "$DM_LIST"
}

dev_sectors()
{
	blockdev --getsz "$1"
}

# lw_start NAME DATA_SIZE LOG_SIZE: see above.  Reports "not ok - NAME:
# ..." and returns 1 on failure.
lw_start()
{
	LW_NAME=$1
	LW_SIZE=$2
	truncate -s "$2" "$LW_DATA"
	truncate -s "$3" "$LW_LOG"
	if ! LW_LDATA=$(new_loop "$LW_DATA") || ! LW_LLOG=$(new_loop "$LW_LOG"); then
		fail "log-writes: losetup"
		return 1
	fi
	if ! dm_create "$LW_NAME" \
		"0 $(dev_sectors "$LW_LDATA") log-writes $LW_LDATA $LW_LLOG" \
		2>"$LW_ERR"; then
		diag <"$LW_ERR"
		fail "log-writes: dmsetup create log-writes"
		return 1
	fi
	if ! mkfs.ext4 -q -F -b 4096 \
		-E lazy_itable_init=0,lazy_journal_init=0,nodiscard \
		"/dev/mapper/$LW_NAME" >"$LW_ERR" 2>&1; then
		diag <"$LW_ERR"
		fail "log-writes: mkfs.ext4 on the log-writes device"
		return 1
	fi
	lw_mark mkfs
	mkdir -p "$LW_MNT"
	if ! do_mount -t ext4 "/dev/mapper/$LW_NAME" "$LW_MNT" 2>"$LW_ERR"; then
		diag <"$LW_ERR"
		fail "log-writes: mount"
		return 1
	fi
}

lw_mark()
{
	dmsetup message "$LW_NAME" 0 mark "$1"
}

# lw_stop: after the devices on the file system are detached.
lw_stop()
{
	local status

	do_umount "$LW_MNT" || fail "log-writes: umount"
	status=$(dmsetup status "$LW_NAME")
	diag "log-writes status: $status"
	case $status in
	*logging_disabled*)
		fail "log-writes: the log kept up (status: $status)"
		return 1
		;;
	esac
	dm_remove "$LW_NAME" || fail "log-writes: dmsetup remove"
	del_loop "$LW_LDATA"
	del_loop "$LW_LLOG"
}

# lw_list: read the log; sets LW_N and prepares replaying from entry 0.
lw_list()
{
	if ! "$LOG_REPLAY" --list "$LW_LOG" >"$LW_ENTRIES" 2>"$LW_ERR"; then
		diag <"$LW_ERR"
		head -n 3 "$LW_ENTRIES" | diag
		fail "log-writes: log_replay --list reads the log"
		return 1
	fi
	LW_N=$(sed -n 's/^# log: \([0-9]*\) entries.*/\1/p' "$LW_ENTRIES")
	diag "log: $LW_N entries, $(grep -c '^[0-9]* [^ ]*F' "$LW_ENTRIES") flushes, $(grep -c '^[0-9]* [^ ]*U' "$LW_ENTRIES") FUA"
	if [ -z "$LW_N" ]; then
		fail "log-writes: log_replay --list counts the entries"
		return 1
	fi
	ok "log-writes: log_replay --list: $LW_N entries"
	LW_PREV=0
	rm -f "$LW_BASE"
	truncate -s "$LW_SIZE" "$LW_BASE"
}

# lw_mark_entry NAME: the index of the mark NAME (empty if none).
lw_mark_entry()
{
	awk -v m="$1" '$2 ~ /M/ && $5 == m { print $1; exit }' "$LW_ENTRIES"
}

lw_replay_to()
{
	if ! "$LOG_REPLAY" --from "$LW_PREV" --to "$1" "$LW_LOG" "$LW_BASE" \
		>"$LW_ERR" 2>&1; then
		diag <"$LW_ERR"
		fail "log-writes: log_replay up to entry $1"
		return 1
	fi
	LW_PREV=$1
}

# lw_mount_copy P: P names the point in diagnostics.
lw_mount_copy()
{
	cp --sparse=always "$LW_BASE" "$WORKDIR/chk.raw"
	LW_CHKLOOP=$(new_loop "$WORKDIR/chk.raw") || return 1
	mkdir -p "$LW_CHK"
	if ! mount -t ext4 "$LW_CHKLOOP" "$LW_CHK" 2>"$LW_ERR"; then
		diag "entry $1: mount of the replayed file system failed: $(head -n 1 "$LW_ERR")"
		del_loop "$LW_CHKLOOP"
		return 1
	fi
}

lw_umount_copy()
{
	local ret=0

	umount "$LW_CHK" || ret=1
	del_loop "$LW_CHKLOOP"
	rm -f "$WORKDIR/chk.raw"
	return "$ret"
}

# lw_full_replay_check: after the last point, the replay tool must have
# rebuilt the logged data device exactly.
lw_full_replay_check()
{
	check "log-writes: the full replay equals the logged data device" \
		cmp -s "$LW_BASE" "$LW_DATA"
}

lw_free()
{
	rm -f "$LW_BASE" "$LW_DATA" "$LW_LOG"
}
