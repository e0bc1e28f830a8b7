#!/usr/bin/env bash
# One registry reached through two hard links, 16 writers split across the
# two paths (docs/reliability.md, "Not tried before"). Each writer assigns
# the same N shared names (every one must get one port, whichever path
# asked) and N of its own, and leases N ports for one live owner (N=40). Prints
# what each check found. Usage: hardlink-writers.sh [portfor binary]
set -u
bin=${1:-portfor}
n=${N:-40} # rounds per writer
dir=$(mktemp -d /tmp/portfor-hl.XXXXXX)
trap 'kill "$owner" 2>/dev/null; rm -rf "$dir"' EXIT
chmod 700 "$dir"
a=$dir/a.db b=$dir/b.db
PORTFOR_DB=$a "$bin" seed >/dev/null || { echo "cannot create $a"; exit 1; }
ln "$a" "$b"
sleep 600 & owner=$!
for w in $(seq 0 15); do
	db=$a; ((w % 2)) && db=$b
	(
		for i in $(seq 0 $((n - 1))); do
			p=$(PORTFOR_DB=$db "$bin" "shared-$i" 2>>"$dir/err.$w") && echo "shared-$i $p"
			p=$(PORTFOR_DB=$db "$bin" "w$w-$i" 2>>"$dir/err.$w") && echo "w$w-$i $p"
			p=$(PORTFOR_DB=$db "$bin" pick "$owner" 2>>"$dir/err.$w") && echo "lease:$w $p"
		done >"$dir/out.$w"
	) &
done
wait $(jobs -p | grep -v "^$owner$") 2>/dev/null
ok=$(cat "$dir"/out.* | wc -l)
errs=$(cat "$dir"/err.* | wc -l)
echo "acknowledged: $ok, failed: $errs"
cat "$dir"/err.* | sed -E 's/[0-9]+(\.[0-9]+)?(ms|s)\b/N\2/; s/pid [0-9]+/pid N/; s/"[^"]*"/"ID"/' | sort | uniq -c | head -5
# one id, one port: each shared name was answered with one port only
echo "names answered with more than one port: $(grep '^shared-' "$dir"/out.* -h | sort -u | awk '{print $1}' | uniq -d | wc -l)"
# one port, one holder: across stable answers and the leases of both paths
echo "ports acknowledged to two holders: $(cat "$dir"/out.* | sed 's/^lease:[0-9]*/lease/' | sort -u | awk '{print $2}' | sort | uniq -d | wc -l)"
echo "leases: $(grep -h '^lease' "$dir"/out.* | wc -l), distinct ports among them: $(grep -h '^lease' "$dir"/out.* | awk '{print $2}' | sort -u | wc -l)"
ls "$dir" | grep -E 'leases|pending|lock' | sed 's/^/  file: /'
for db in "$a" "$b"; do
	PORTFOR_DB=$db "$bin" doctor >"$dir/doctor" 2>&1
	rc=$?
	echo "doctor $(basename "$db"): exit $rc: $(tail -1 "$dir/doctor")"
done
