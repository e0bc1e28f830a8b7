#!/usr/bin/env bash
# 16 writers assigning new names on a 1 MiB tmpfs while the file system
# fills up (full) or is remounted read-only (ro); then the checks of
# docs/reliability.md ("Not tried before"): every acknowledged name is
# there with its port, failures are one line and exit 1, doctor (bbolt's
# page check and the index check) passes, and after freeing space /
# remounting rw 16 writers succeed again. Needs root (mount).
# Usage: diskfault-writers.sh full|ro [portfor binary]
set -u
mode=${1:?full or ro}
bin=${2:-portfor}
ctl=$(mktemp -d /tmp/portfor-df.XXXXXX)
mnt=$ctl/mnt
mkdir "$mnt"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$mnt" || exit 1
trap 'umount -l "$mnt"; rm -rf "$ctl"' EXIT
db=$mnt/registry.db
export PORTFOR_DB=$db
"$bin" seed >/dev/null
writer() { # writer W ROUND: new names until $ctl/stop, at most 200
	local i=0 out rc
	while [ ! -e "$ctl/stop" ] && ((i < 200)); do
		out=$("$bin" "w$1-$2-$i" 2>"$ctl/e.$1") && echo "ok w$1-$2-$i $out" || {
			rc=$?
			echo "fail w$1-$2-$i rc=$rc lines=$(wc -l <"$ctl/e.$1") $(cat "$ctl/e.$1")"
		}
		i=$((i + 1))
	done >>"$ctl/out.$1"
}
for w in $(seq 0 15); do writer "$w" a & done
sleep 1
case $mode in
full) dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null ;;
ro) mount -o remount,ro "$mnt" ;;
esac
echo "fault at $(cat "$ctl"/out.* | grep -c '^ok') acknowledged"
sleep 2
touch "$ctl/stop"
wait
ok=$(cat "$ctl"/out.* | grep -c '^ok')
fail=$(cat "$ctl"/out.* | grep -c '^fail')
echo "acknowledged: $ok, failed: $fail"
echo "failures by exit status and line count:"; grep -h '^fail' "$ctl"/out.* | awk '{print "  " $3, $4}' | sort | uniq -c
echo "failure messages:"; grep -h '^fail' "$ctl"/out.* | cut -d' ' -f5- | sed -E 's/"w[0-9]+-a-[0-9]+"/"NAME"/; s/[0-9]+ bytes/N bytes/g' | sort | uniq -c | sort -rn | head -4 | sed 's/^/  /'
"$bin" list --json >"$ctl/list" 2>&1 || echo "list failed: $(cat "$ctl/list")"
lost=0
while read -r _ name port; do
	grep -q "\"name\": \"$name\"" "$ctl/list" && grep -A3 "\"name\": \"$name\"" "$ctl/list" | grep -q "\"port\": $port\b" || { lost=$((lost + 1)); echo "  lost: $name $port"; }
done < <(grep -h '^ok' "$ctl"/out.*)
echo "acknowledged and lost: $lost; names in the registry: $(grep -c '"name"' "$ctl/list") (seed + acknowledged = $((ok + 1)))"
"$bin" doctor >"$ctl/doctor" 2>&1; echo "doctor while faulted: exit $? ($(tail -1 "$ctl/doctor"))"
echo "pending dir: $(ls -A "$db.pending" 2>/dev/null | wc -l) files"
case $mode in
full) rm "$mnt/filler" ;;
ro) mount -o remount,rw "$mnt" ;;
esac
rm "$ctl/stop" "$ctl"/out.*
for w in $(seq 0 15); do (writer "$w" b) & done
sleep 1; touch "$ctl/stop"; wait
echo "after the fault is gone: $(cat "$ctl"/out.* | grep -c '^ok') acknowledged, $(cat "$ctl"/out.* | grep -c '^fail') failed"
"$bin" doctor >"$ctl/doctor" 2>&1; echo "doctor: exit $? ($(tail -1 "$ctl/doctor"))"
