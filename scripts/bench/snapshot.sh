#!/bin/sh
# snapshot.sh — the mlk-snapshot benchmark.
#
#   sh scripts/bench/snapshot.sh [--records N] [--seed S] [--bin DIR] [--keep]
#
# Generates N synthetic FHIR records (default 1,120,000, about 1 GB once
# they carry an envelope) with scripts/gen-ehr, adds a de-identified
# envelope to each with sed (as mlk-deid would write it), caches the file
# under $MLK_BENCH_CACHE (default ${TMPDIR:-/tmp}/mlk-bench), and then, in
# the same run, on the same page-cached bytes:
#
#   create    gzip -1 < FILE > /dev/null                      (the floor)
#             mlk-snapshot create training/bench < FILE        (fresh lake)
#   verify    openssl dgst -sha256 over the snapshot's stored files
#             mlk-snapshot verify ID
#   again     mlk-snapshot create training/bench < FILE        (unchanged)
#
# and prints throughputs (MB = 10^6 bytes per second), ratios and peak
# RSS, and PASS or FAIL against the targets of issue 7:
#
#   create: mlk/gzip >= 1.0
#   verify: mlk/openssl >= 0.8
#   again:  no new data files, and under a tenth of the first create's time
#
# The last line is "snapshot benchmark: PASS" or "snapshot benchmark: FAIL".
# The lake is made in a temporary directory and removed afterwards (--keep
# keeps it and the input).  Exit status: 0 PASS, 1 FAIL, 2 usage.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
records=1120000
seed=1
bindir=$root/bin
keep=0

usage() {
	echo "usage: sh scripts/bench/snapshot.sh [--records N] [--seed S] [--bin DIR] [--keep]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--records) [ $# -ge 2 ] || { usage >&2; exit 2; }; records=$2; shift 2 ;;
	--seed) [ $# -ge 2 ] || { usage >&2; exit 2; }; seed=$2; shift 2 ;;
	--bin) [ $# -ge 2 ] || { usage >&2; exit 2; }; bindir=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
case $records in ''|*[!0-9]*) echo "snapshot.sh: --records must be a number" >&2; exit 2 ;; esac
case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac
snap=$bindir/mlk-snapshot
catalog=$bindir/mlk-catalog
for t in "$snap" "$catalog"; do
	[ -x "$t" ] || { echo "snapshot.sh: $t not found (make, or --bin DIR)" >&2; exit 2; }
done
for t in /usr/bin/time openssl jq gzip; do
	command -v "$t" >/dev/null 2>&1 || { echo "snapshot.sh: $t not found" >&2; exit 2; }
done

cache=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}
mkdir -p "$cache" || exit 2
genhash=$(sha256sum "$root/scripts/gen-ehr" | cut -c1-12)
input=$cache/snap-n$records-s$seed-$genhash.ndjson
if [ ! -s "$input" ]; then
	echo "generating $records records into $input"
	tmp=$input.tmp.$$
	if ! python3 "$root/scripts/gen-ehr" --format fhir --records "$records" \
		--seed "$seed" | sed 's/}$/,"_mlk":{"v":1,"kind":"ehr","type":"fhir","batch":"b000000000000000000000001","deid":{"profile":"safe-harbor","profile_sha256":"0000000000000000000000000000000000000000000000000000000000000000","key_id":"k-0000000000000000","project":"bench"}}}/' \
		>"$tmp"; then
		rm -f "$tmp"
		echo "snapshot.sh: gen-ehr failed" >&2
		exit 2
	fi
	mv "$tmp" "$input"
fi
bytes=$(wc -c <"$input" | tr -d ' ')
work=$(mktemp -d "${TMPDIR:-/tmp}/mlk-bench-snap.XXXXXX") || exit 2
cleanup() {
	[ "$keep" -eq 1 ] || { chmod -R u+w "$work" 2>/dev/null; rm -rf "$work" "$input"; }
}
trap cleanup EXIT

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / t / 1e6 }'; }

cat "$input" >/dev/null   # page cache
echo "input: $records records, $bytes bytes"

t0=$(now); gzip -1 <"$input" >/dev/null; t1=$(now)
t_gz=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

"$catalog" init "$work/lake" >/dev/null || exit 2
export MLK_LAKE=$work/lake
t0=$(now)
/usr/bin/time -f %M -o "$work/rss" "$snap" create --quiet training/bench \
	<"$input" >"$work/first" || { echo "snapshot.sh: create failed" >&2; exit 1; }
t1=$(now)
t_c=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rss=$(cat "$work/rss")
id=$(jq -r .snapshot "$work/first")

# The floor for verify: one SHA-256 pass over every stored file.
ls "$work"/lake/objects/sha256/*/* >"$work/files"
stored=$(xargs cat <"$work/files" | wc -c | tr -d ' ')
xargs cat <"$work/files" >/dev/null
t0=$(now); xargs openssl dgst -sha256 <"$work/files" >/dev/null; t1=$(now)
t_ssl=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
t0=$(now); "$snap" verify "$id" >/dev/null || { echo "snapshot.sh: verify failed" >&2; exit 1; }; t1=$(now)
t_v=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

t0=$(now)
"$snap" create --quiet training/bench <"$input" >"$work/second" || exit 1
t1=$(now)
t_2=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
new=$(jq -r .new_files "$work/second")
same=$(jq -r .snapshot "$work/second")

r_c=$(awk -v a="$t_gz" -v b="$t_c" 'BEGIN { printf "%.2f", a / b }')
r_v=$(awk -v a="$t_ssl" -v b="$t_v" 'BEGIN { printf "%.2f", a / b }')
r_2=$(awk -v a="$t_2" -v b="$t_c" 'BEGIN { printf "%.3f", a / b }')
echo "create:  mlk-snapshot $(mbps "$bytes" "$t_c") MB/s vs gzip -1 $(mbps "$bytes" "$t_gz") MB/s: ratio $r_c (target >= 1.0), peak RSS $((rss / 1024)) MiB"
echo "verify:  mlk-snapshot $(mbps "$stored" "$t_v") MB/s vs openssl dgst -sha256 $(mbps "$stored" "$t_ssl") MB/s over $stored stored bytes: ratio $r_v (target >= 0.8)"
echo "again:   $t_2 s vs $t_c s: $r_2 of the first (target < 0.1), new data files: $new, same id: $([ "$same" = "$id" ] && echo yes || echo no)"
ok=$(awk -v c="$r_c" -v v="$r_v" -v s="$r_2" 'BEGIN { print (c >= 1.0 && v >= 0.8 && s < 0.1) ? 1 : 0 }')
if [ "$ok" -eq 1 ] && [ "$new" = 0 ] && [ "$same" = "$id" ]; then
	echo "snapshot benchmark: PASS"
	exit 0
fi
echo "snapshot benchmark: FAIL"
exit 1
