#!/usr/bin/env bash
# One member of a group floods a shared registry's pending directory with
# valid requests (live asker: a process of its own); how long does another
# member's `portfor NEWNAME` take, with and without the flood? Needs root:
# makes two users and a group (removed at the end). docs/reliability.md,
# "Not tried before". Usage: queue-flood.sh [portfor binary] [requests] [calls]
set -u
bin=$(realpath "${1:-$(command -v portfor)}")
flood=${2:-5000}
calls=${3:-10}
g=pfxgrp fl=pfxflood vi=pfxvictim
groupadd "$g" && useradd -M -N -g "$g" -s /bin/sh "$fl" && useradd -M -N -g "$g" -s /bin/sh "$vi" || exit 1
top=$(mktemp -d /tmp/portfor-flood.XXXXXX)
trap 'kill "$asker" 2>/dev/null; rm -rf "$top"; userdel "$fl"; userdel "$vi"; groupdel "$g"' EXIT
chmod 755 "$top"
cp "$bin" "$top/portfor" && chmod 755 "$top/portfor"
reg=$top/shared
mkdir -m 3770 "$reg" && chgrp "$g" "$reg"   # setgid and sticky, as the README says
db=$reg/registry.db
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$g" --clear-groups env PORTFOR_DB="$db" HOME="$top" "$@"; }
as "$vi" "$top/portfor" seed >/dev/null || exit 1

victim() { # victim LABEL: $calls new names, one after another; prints ms per call
	local i t0 t1 ms=()
	for i in $(seq 1 "$calls"); do
		t0=$(date +%s%N)
		as "$vi" "$top/portfor" "$1-$i" >/dev/null || echo "victim call failed"
		t1=$(date +%s%N)
		ms+=($(((t1 - t0) / 1000)))
	done
	printf '%s\n' "${ms[@]}" | sort -n | awk -v l="$1" '{a[NR]=$1} END {printf "%-12s calls %d: min %.1f ms, median %.1f ms, max %.1f ms\n", l, NR, a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000}'
}
pending() { ls -A "$db.pending" 2>/dev/null | wc -l; }

victim baseline
# The flooder's long-running process is the asker of every request.
setpriv --reuid "$fl" --regid "$g" --clear-groups sleep 3600 &
asker=$!
sleep 0.2
start=$(awk '{print $22}' "/proc/$asker/stat")
ns=$(stat -L -c %i "/proc/$asker/ns/pid")
as "$fl" bash -c '
	dir=$1.pending; mkdir -p -m 2770 "$dir"
	now=$(date +%s%N)
	for i in $(seq 1 "$2"); do
		printf "portfor-request 2\nid flood-%d\nport 0\ndir \"/\"\n" "$i" >"$dir/$(printf "q2-%016x-%d-%d-%d-%08x" $((now + i)) "$3" "$4" "$5" "$i")"
	done' _ "$db" "$flood" "$asker" "$start" "$ns"
echo "flood: $(pending) requests queued by uid $(id -u "$fl")"
victim flooded
echo "left in the queue (requests and answers their live asker has not read): $(pending); names in the registry: $(as "$vi" "$top/portfor" list --json | grep -c '"name"')"
as "$vi" "$top/portfor" doctor >/dev/null 2>&1; echo "doctor: exit $?"
