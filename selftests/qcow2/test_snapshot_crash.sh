#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency of internal snapshot create, delete and revert.
#
# The image (16 MiB, 4k clusters) lives on ext4 on dm-log-writes.  It is
# attached read-write and goes through a sequence of operations on
# /dev/qcowN (OPS below: writes, snapshot create A, writes, create B,
# delete A, ...), each followed by a log mark.  Writes end with an fsync;
# a snapshot ioctl is durable when it returns.  After each operation the
# test records the snapshot list (qcowctl snapshot list --json, which must
# also match the test's own model) and the device's content; when a
# snapshot is created, its content.
#
# The log is then replayed to every mark, to every Kth entry, to every entry
# of one create and of one delete, and to the end.  At each point a copy of
# the file system is mounted (ext4 recovers its journal) and:
#   - qemu-img check exits 0 or 3 (leaked clusters are allowed, corruption
#     never; after the detach, 0), except between two flushes inside a
#     snapshot operation, where a refcount and the COPIED flag of the
#     entry pointing to it may disagree (they are two clusters; no single
#     write changes both, in QEMU either) and nothing else may be wrong;
#     every flush inside an operation is a replay point;
#   - qemu-img snapshot -l lists (as ID and name) the table before or after
#     the operation in progress;
#   - at a mark, exactly the recorded table, the active content is the
#     recorded one, and every snapshot reads (qemu-img convert -l) as it did
#     when it was created.
# Negative controls: at the mark of an operation that changed the table,
# the replayed table differs from the one before it; at the mark of a write
# step the content differs from the one before it; and an image with a
# broken refcount makes the same check report corruption.
#
# Findings (points that fail) go to $QCOW2_OUT/snapshot-crash-findings.txt
# with the first bad image beside it.
#
# Env: QCOW2_SNAPCRASH_POINTS (default 10: spread points, the K of every
# Kth entry follows from it), QCOW2_SNAPCRASH_WINDOW (default 12: at most
# that many points inside each operation of FULL; 1000 replays every entry
# of them, about twice the runtime),
# QCOW2_SNAPCRASH_CLUSTER (default 4096), QCOW2_OPS_SEED (printed).

set -u
. "$(dirname "$0")/test_common.sh"
. "$(dirname "$0")/logwrites_common.sh"

require_root
require_cmd qemu-img jq sha256sum dd
require_module
lw_require
"$QCOWCTL" snapshot list --help >/dev/null 2>&1 ||
	skip_all "qcowctl has no snapshot command"
modprobe dm_log_writes 2>/dev/null
dmsetup targets 2>/dev/null | grep -qw log-writes ||
	skip_all "dm-log-writes not available"

err=$WORKDIR/err
SEED=${QCOW2_OPS_SEED:-$(( $(date +%s) % 100000 ))}
NPOINTS=${QCOW2_SNAPCRASH_POINTS:-10}
WINDOW=${QCOW2_SNAPCRASH_WINDOW:-12}
CLUSTER=${QCOW2_SNAPCRASH_CLUSTER:-4096}
VSIZE=$((16 << 20))
LW=qcow2snlw-$$
FINDINGS=${QCOW2_OUT:-$WORKDIR}/snapshot-crash-findings.txt
diag "random offsets use seed $SEED (QCOW2_OPS_SEED=$SEED repeats them)"
RANDOM=$SEED

# The operations, one a mark (op1, op2, ...; op0 is the initial data).
# The points of FULL (operation numbers) are replayed at every entry.
OPS=("create A" write "create B" "delete A" write "revert B" "create C"
     "delete B" write "revert C")
FULL="3 4"

# The model: snapshot ID -> name, and ID -> content hash at creation.
declare -A SNAP_NAME SNAP_HASH

# S/<K>.list: "ID NAME" lines, sorted, after operation K; S/<K>.hash: the
# device's content then; S/snap-<ID>.hash.
S=$WORKDIR/state
mkdir -p "$S"

dev_hash()
{
	dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}

model_list()
{
	local id

	for id in "${!SNAP_NAME[@]}"; do
		echo "$id ${SNAP_NAME[$id]}"
	done | sort
}

# write_some DEV: 24 writes of 0.5 to 8 KiB (partial clusters: copy on
# write where a snapshot shares them) at random places, then an fsync.
write_some()
{
	local n sec cnt

	for ((n = 0; n < 24; n++)); do
		cnt=$((RANDOM % 16 + 1))
		sec=$(( (RANDOM * 32768 + RANDOM) % (VSIZE / 512 - cnt) ))
		head -c $((cnt * 512)) /dev/urandom |
			dd of="$1" bs=512 seek="$sec" count="$cnt" \
			oflag=direct iflag=fullblock status=none || return
	done
	sync "$1"
}

# by_name NAME: the model's ID of NAME.
by_name()
{
	local id

	for id in "${!SNAP_NAME[@]}"; do
		[ "${SNAP_NAME[$id]}" = "$1" ] && echo "$id"
	done
}

# run_op K DEV: operation K; sets WANT_HASH when it fixes the content.
run_op()
{
	local k=$1 dev=$2 op name id

	read -r op name <<<"${OPS[$((k - 1))]}"
	WANT_HASH=
	case $op in
	write)
		write_some "$dev"
		;;
	create)
		id=$("$QCOWCTL" snapshot create "$dev" "$name" 2>"$err") &&
			[ -n "$id" ] || return 1
		SNAP_NAME[$id]=$name
		SNAP_HASH[$id]=$(cat "$S/$((k - 1)).hash")
		echo "${SNAP_HASH[$id]}" >"$S/snap-$id.hash"
		WANT_HASH=${SNAP_HASH[$id]}
		;;
	delete)
		id=$(by_name "$name")
		"$QCOWCTL" snapshot delete --name "$dev" "$name" 2>"$err" ||
			return 1
		unset "SNAP_NAME[$id]"
		WANT_HASH=$(cat "$S/$((k - 1)).hash")
		;;
	revert)
		id=$(by_name "$name")
		"$QCOWCTL" snapshot revert --name "$dev" "$name" 2>"$err" ||
			return 1
		WANT_HASH=${SNAP_HASH[$id]}
		;;
	esac
}

# record_state K DEV: the list and content after operation K.
record_state()
{
	local k=$1 dev=$2

	"$QCOWCTL" snapshot list --json "$dev" 2>"$err" |
		jq -r '.[] | "\(.id) \(.name)"' | sort >"$S/$k.list"
	dev_hash "$dev" >"$S/$k.hash"
	if ! model_list | cmp -s - "$S/$k.list"; then
		diag "after op$k: qcowctl lists $(tr '\n' ';' <"$S/$k.list"), expected $(model_list | tr '\n' ';')"
		model_bad=$((model_bad + 1))
	fi
	if [ -n "$WANT_HASH" ] && [ "$WANT_HASH" != "$(cat "$S/$k.hash")" ]; then
		diag "after op$k (${OPS[$((k - 1))]}): the device does not hold the expected content"
		model_bad=$((model_bad + 1))
	fi
}

record()
{
	local img dev k

	lw_start "$LW" 64M 256M || return 1
	img=$LW_MNT/img.qcow2
	if ! qemu-img create -q -f qcow2 -o cluster_size="$CLUSTER" \
		"$img" "$VSIZE" 2>"$err"; then
		diag <"$err"
		fail "record: create the image"
		return 1
	fi
	sync "$img"
	sync -f "$LW_MNT"
	lw_mark created
	dev=$(attach_rw "$img" 2>"$err")
	if [ -z "$dev" ]; then
		diag <"$err"
		fail "record: attach read-write"
		return 1
	fi
	model_bad=0
	WANT_HASH=
	head -c $((4 << 20)) /dev/urandom |
		dd of="$dev" bs=1M oflag=direct iflag=fullblock status=none
	write_some "$dev"
	lw_mark op0
	record_state 0 "$dev"
	for k in $(seq 1 ${#OPS[@]}); do
		if ! run_op "$k" "$dev"; then
			diag <"$err"
			fail "record: op$k (${OPS[$((k - 1))]})"
			return 1
		fi
		lw_mark "op$k"
		record_state "$k" "$dev"
	done
	ok "record: ${#OPS[@]} operations on /dev/qcowN, each marked: ${OPS[*]}"
	check "record: after each operation qcowctl lists the expected table and the device holds the expected content" \
		[ "$model_bad" -eq 0 ]
	note_detaching "$dev"
	if ! timeout 60 "$QCOWCTL" detach "$dev"; then
		fail "record: detach"
		return 1
	fi
	forget_dev "$dev"
	wait_gone "$dev" 10
	lw_stop
}

# ---------------------------------------------------------------------------
# Checking a replayed image.

# finding P WHAT FILE: note a failed point in the findings file; keep the
# first bad image.
finding()
{
	{
		echo "== ${QCOW2_KVER:-$(uname -r)} seed $SEED: entry $1: $2"
		[ -n "$3" ] && grep -v '^Leaked cluster' "$3" | head -n 30
	} >>"$FINDINGS"
	if [ "$n_findings" -eq 0 ] && [ -n "${QCOW2_OUT:-}" ]; then
		cp --sparse=always "$LW_CHK/img.qcow2" \
			"$QCOW2_OUT/snapshot-crash-entry-$1.qcow2" 2>/dev/null
	fi
	n_findings=$((n_findings + 1))
}

# img_check_rc IMG: qemu-img check's exit status; output in check.log.
img_check_rc()
{
	qemu-img check "$1" >"$WORKDIR/check.log" 2>&1
}

# img_list IMG: the snapshot table as "ID NAME" lines, sorted.
img_list()
{
	qemu-img snapshot -l "$1" 2>"$err" | awk 'NR > 2 { print $1, $2 }' | sort
}

# img_hash IMG [SNAPSHOT-ID]: sha256 of the active layer or of a snapshot.
img_hash()
{
	local raw=$WORKDIR/conv.raw

	rm -f "$raw"
	qemu-img convert -f qcow2 -O raw ${2:+-l "snapshot.id=$2"} "$1" "$raw" \
		2>"$err" </dev/null || { echo "convert-failed"; return 1; }
	sha256 "$raw"
	rm -f "$raw"
}

# flush_point P: log entry P is a flush: replaying up to it gives the state
# every write before it made durable.
flush_point()
{
	awk -v p="$1" '$1 == p && $2 ~ /F/ { f = 1 } END { exit !f }' "$LW_ENTRIES"
}

# flush_points POINTS: how many replay points are flushes.
flush_points()
{
	local n=0 p

	while read -r p _; do
		flush_point "$p" && n=$((n + 1))
	done <"$1"
	echo "$n"
}

# copied_only CHECK_LOG: every error qemu-img check reported is a COPIED
# flag that disagrees with a refcount.
copied_only()
{
	grep -q '^ERROR' "$1" && ! grep '^ERROR' "$1" | grep -qv 'OFLAG_COPIED'
}

# check_point P KIND K: the replayed data device is at entry P, during
# operation K (KIND between), right at its mark (mark), after the last
# mark, while detaching (detach), or after the detach (final).  Returns 1 on a failure (diagnosed and noted).
check_point()
{
	local p=$1 kind=$2 k=$3 img=$LW_CHK/img.qcow2 rc got id h ret=0
	local prev=$S/$((k > 0 ? k - 1 : 0)).list what="entry $p ($kind, op$k)"

	lw_mount_copy "$what" || { finding "$p" "mount failed" "$LW_ERR"; return 1; }
	img_check_rc "$img"
	rc=$?
	case $rc in
	0) ;;
	3)
		n_leaky=$((n_leaky + 1))
		if [ "$kind" = final ]; then
			diag "$what: leaked clusters after the detach"
			ret=1
		fi
		;;
	*)
		if [ "$kind" = between ] && ! flush_point "$p" &&
		   copied_only "$WORKDIR/check.log"; then
			# Between two flushes of a snapshot operation a refcount
			# and the COPIED flag of the entry pointing to it (two
			# clusters, no single write) may disagree; the flush
			# ends that, and qemu-img check -r all repairs it.
			n_copied=$((n_copied + 1))
		else
			diag "$what: qemu-img check exit $rc:"
			grep -v '^Leaked cluster' "$WORKDIR/check.log" | head -n 6 | diag
			finding "$p" "qemu-img check exit $rc ($kind, during/at op$k)" \
				"$WORKDIR/check.log"
			ret=1
		fi
		;;
	esac
	got=$(img_list "$img")
	if [ "$kind" = between ]; then
		if [ "$got" != "$(cat "$prev")" ] &&
		   [ "$got" != "$(cat "$S/$k.list")" ]; then
			diag "$what: table $(echo "$got" | tr '\n' ';') is neither the old one nor the new one"
			finding "$p" "snapshot table neither old nor new: $got" ""
			ret=1
		fi
	else
		if [ "$got" != "$(cat "$S/$k.list")" ]; then
			diag "$what: table $(echo "$got" | tr '\n' ';'), recorded $(tr '\n' ';' <"$S/$k.list")"
			finding "$p" "snapshot table at mark differs: $got" ""
			ret=1
		elif [ "$kind" = mark ] && ! cmp -s "$prev" "$S/$k.list"; then
			# Negative control: the table the operation replaced
			# must not pass for this one.
			if [ "$got" = "$(cat "$prev")" ]; then
				diag "$what: table equals the previous one too: comparison proves nothing"
				ret=1
			else
				n_neg=$((n_neg + 1))
			fi
		fi
		h=$(img_hash "$img")
		if [ "$h" != "$(cat "$S/$k.hash")" ]; then
			diag "$what: active content differs from the device at op$k"
			finding "$p" "active content differs at mark op$k" "$err"
			ret=1
		elif [ "$kind" = mark ] && [ "$k" -gt 0 ] &&
		     [ "${OPS[$((k - 1))]}" = write ]; then
			# Negative control: the write step changed the content.
			if [ "$h" = "$(cat "$S/$((k - 1)).hash")" ]; then
				diag "$what: content equals op$((k - 1)) too: comparison proves nothing"
				ret=1
			else
				n_neg=$((n_neg + 1))
			fi
		fi
		while read -r id _; do
			if [ "$(img_hash "$img" "$id")" != "$(cat "$S/snap-$id.hash")" ]; then
				diag "$what: snapshot $id does not read as when it was created"
				finding "$p" "snapshot $id content differs at op$k" "$err"
				ret=1
			fi
		done <"$S/$k.list"
	fi
	[ "$kind" = final ] && cp --sparse=always "$img" "$WORKDIR/final.qcow2"
	lw_umount_copy || ret=1
	return "$ret"
}

# points: "ENTRY KIND K" lines, sorted by entry, one per entry; marks win.
points()
{
	local created=$1 n=$2 step p k first last

	awk '$2 ~ /M/ && $5 ~ /^op[0-9]+$/ { print $1, "mark", substr($5, 3) }' \
		"$LW_ENTRIES"
	echo "$n final ${#OPS[@]}"
	step=$(( (n - created) / (NPOINTS + 1) ))
	[ "$step" -ge 1 ] || step=1
	diag "spread points: every ${step}th entry" >&2
	seq $((created + step)) "$step" $((n - 1))
	for k in $FULL; do
		first=$(lw_mark_entry "op$((k - 1))")
		last=$(lw_mark_entry "op$k")
		step=$(( (last - first) / WINDOW + 1 ))
		diag "op$k (${OPS[$((k - 1))]}): entries $first-$last, every ${step}th, and every flush" >&2
		seq $((first + 1)) "$step" $((last - 1))
		awk -v a="$first" -v b="$last" '$1 > a && $1 < b && $2 ~ /F/ { print $1 }' \
			"$LW_ENTRIES"
	done
}

# Give each spread entry the operation in progress: the first op mark at
# or after it (none: during the detach, after the last one).
classify()
{
	awk -v nops=${#OPS[@]} '
		NR == FNR { if ($2 == "mark") mark[$3] = $1; next }
		NF == 3 { print; next }
		{
			for (k = 0; k <= nops; k++)
				if ($1 <= mark[k]) { print $1, "between", k; next }
			print $1, "detach", nops
		}' "$1" "$1"
}

replay()
{
	local created p kind k checked=0 bad=0 marks_ok=0 pts=$WORKDIR/points
	local n_neg_want

	n_neg_want=$(printf '%s\n' "${OPS[@]}" | grep -vc '^revert')

	lw_list || return
	created=$(lw_mark_entry created)
	if [ -z "$created" ] || [ -z "$(lw_mark_entry "op${#OPS[@]}")" ]; then
		fail "replay: the log has the 'created' and all op marks"
		return
	fi
	points "$created" "$LW_N" >"$pts.raw"
	classify "$pts.raw" | sort -s -n -k1,1 -u >"$pts"
	diag "replay points: $(wc -l <"$pts") ($(grep -c ' mark ' "$pts") marks), from entry $created to $LW_N"
	diag "log entries per operation: $(awk '$2 ~ /M/ && $5 ~ /^op[0-9]+$/ {
		if (prev != "") printf "%s %d, ", $5, $1 - prev; prev = $1 }' "$LW_ENTRIES")"
	n_leaky=0
	n_copied=0
	n_neg=0
	n_findings=0
	while read -r p kind k; do
		lw_replay_to "$p" || return
		checked=$((checked + 1))
		if check_point "$p" "$kind" "$k" </dev/null; then
			[ "$kind" = mark ] && marks_ok=$((marks_ok + 1))
		else
			bad=$((bad + 1))
		fi
	done <"$pts"
	lw_full_replay_check

	echo "# $checked replay points checked ($(flush_points "$pts") at flushes; $n_leaky with leaked clusters; $n_copied between flushes with COPIED-only mismatches; $n_neg negative controls passed)"
	check "replay: qemu-img check finds no corruption and the snapshot table is the old or the new one at all $checked replay points" \
		[ "$bad" -eq 0 ]
	check "replay: at all $((${#OPS[@]} + 1)) marks the table, the active content and every snapshot's content are as recorded" \
		[ "$marks_ok" -eq $((${#OPS[@]} + 1)) ]
	# Every operation but a revert changes the table or the content.
	check "replay: negative controls: each of the $n_neg_want table changes and write steps is seen as a difference at its mark" \
		[ "$n_neg" -eq "$n_neg_want" ]
	lw_free
}

# The checker must be able to fail: a refcount of 0 for the header cluster
# is corruption to qemu-img check, and a table from another mark differs.
negative_control()
{
	local img=$WORKDIR/final.qcow2 rt rb rc

	if [ ! -f "$img" ]; then
		fail "negative control: no final image"
		return
	fi
	check "negative control: the final table differs from the one at op1" \
		[ "$(img_list "$img")" != "$(cat "$S/1.list")" ]
	rt=$(peek_be64 "$img" 48)
	rb=$(peek_be64 "$img" "$rt")
	diag "negative control: refcount table at $rt, first block at $rb"
	poke_hex "$img" "$rb" 0000
	img_check_rc "$img"
	rc=$?
	check "negative control: header cluster refcount 0 is corruption to qemu-img check (exit $rc)" \
		[ "$rc" -eq 2 ]
	rm -f "$img"
}

t0=$SECONDS
if record; then
	diag "record took $((SECONDS - t0)) s"
	t1=$SECONDS
	replay
	diag "replay took $((SECONDS - t1)) s"
	negative_control
fi
[ -s "$FINDINGS" ] && diag "findings written to $FINDINGS"
finish
