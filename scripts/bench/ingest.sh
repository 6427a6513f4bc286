#!/bin/sh
# ingest.sh — the mlk-ingest throughput and memory benchmark.
#
#   sh scripts/bench/ingest.sh [--records N] [--seed S] [--bin DIR] [--keep]
#
# Generates N synthetic FHIR Bulk Data NDJSON records (default 1,000,000,
# about 650 MB) with scripts/gen-ehr, cached under $MLK_BENCH_CACHE
# (default ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and the generator's
# own hash, so a changed generator makes a new file.  Then, in the same run
# and on the same (page-cached) input:
#
#   baseline  gzip -1 < FILE > /dev/null
#   mlk       mlk-ingest --lake L --dataset ehr/bench FILE > /dev/null
#             on a fresh lake made by `mlk-catalog init L`
#
# and prints the throughput of each (MB = 10^6 bytes of input per second),
# the ratio mlk/gzip, mlk-ingest's peak RSS (GNU time %M), and PASS or FAIL
# against the targets:
#
#   ratio mlk/gzip >= 1.0     ingest (parse, hash, partition, compress,
#                             fsync) keeps up with plain single-threaded
#                             gzip -1 on the same bytes
#   peak RSS <= 64 MiB        memory does not grow with the input
#
# Ratios, not absolute numbers, are the target: machines differ.  The last
# line is "ingest benchmark: PASS" or "ingest benchmark: FAIL".
#
# Binaries come from --bin DIR (default: bin/ of the repository); any
# stand-in with the same interface works there.  Exit status: 0 PASS,
# 1 FAIL, 2 usage or missing tool.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
records=1000000
seed=1
bindir=$root/bin
keep=0
RATIO_MIN=1.0
RSS_MAX_KIB=65536

usage() {
	echo "usage: sh scripts/bench/ingest.sh [--records N] [--seed S] [--bin DIR] [--keep]"
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
case $records in ''|*[!0-9]*) echo "ingest.sh: --records must be a number" >&2; exit 2 ;; esac
case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac

ingest=$bindir/mlk-ingest
catalog=$bindir/mlk-catalog
for t in "$ingest" "$catalog"; do
	[ -x "$t" ] || { echo "ingest.sh: $t not found (make, or --bin DIR)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "ingest.sh: /usr/bin/time not found (sh scripts/setup)" >&2; exit 2; }

# --- input, cached ----------------------------------------------------------
cache=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}
mkdir -p "$cache" || exit 2
genhash=$(sha256sum "$root/scripts/gen-ehr" | cut -c1-12)
input=$cache/fhir-n$records-s$seed-$genhash.ndjson
if [ ! -s "$input" ]; then
	echo "generating $records fhir records into $input"
	tmp=$input.tmp.$$
	if ! python3 "$root/scripts/gen-ehr" --format fhir --records "$records" \
		--seed "$seed" >"$tmp"; then
		rm -f "$tmp"
		echo "ingest.sh: gen-ehr failed" >&2
		exit 2
	fi
	mv "$tmp" "$input"
fi
bytes=$(wc -c <"$input" | tr -d ' ')
# Read the input once so both runs start from the page cache.
cat "$input" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/mlk-bench-ingest.XXXXXX") || exit 2
if [ "$keep" -eq 0 ]; then
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
fi

now_ns() { date +%s%N; }

# --- baseline: gzip -1 --------------------------------------------------------
t0=$(now_ns)
gzip -1 <"$input" >/dev/null || { echo "ingest.sh: gzip failed" >&2; exit 2; }
t1=$(now_ns)
gzip_ns=$((t1 - t0))

# --- mlk-ingest ---------------------------------------------------------------
lake=$work/lake
if ! "$catalog" init "$lake" >"$work/init.out" 2>&1; then
	cat "$work/init.out" >&2
	echo "ingest.sh: mlk-catalog init failed" >&2
	exit 1
fi
t0=$(now_ns)
/usr/bin/time -f %M -o "$work/rss" \
	"$ingest" --lake "$lake" --dataset ehr/bench "$input" \
	>/dev/null 2>"$work/ingest.err"
ingest_rc=$?
t1=$(now_ns)
mlk_ns=$((t1 - t0))
# GNU time writes "Command exited with non-zero status N" before %M then.
rss_kib=$(tail -n 1 "$work/rss")
case $rss_kib in ''|*[!0-9]*) rss_kib=0 ;; esac

# --- report -------------------------------------------------------------------
awk -v bytes="$bytes" -v records="$records" -v input="$input" \
    -v gns="$gzip_ns" -v mns="$mlk_ns" -v rss="$rss_kib" -v rc="$ingest_rc" \
    -v rmin="$RATIO_MIN" -v rssmax="$RSS_MAX_KIB" '
BEGIN {
	mb = bytes / 1e6
	gs = gns / 1e9; ms = mns / 1e9
	if (gs <= 0) gs = 1e-9
	if (ms <= 0) ms = 1e-9
	g = mb / gs; m = mb / ms
	ratio = m / g
	printf "input       %s\n", input
	printf "            %.1f MB, %d records, %.0f bytes/record\n", mb, records, bytes / (records ? records : 1)
	printf "gzip -1     %7.2f s  %7.1f MB/s\n", gs, g
	printf "mlk-ingest  %7.2f s  %7.1f MB/s  exit %d\n", ms, m, rc
	ok_ratio = (rc == 0 && ratio >= rmin)
	ok_rss = (rc == 0 && rss > 0 && rss <= rssmax)
	printf "ratio mlk/gzip  %.2f  (target >= %.1f)  %s\n", ratio, rmin, ok_ratio ? "PASS" : "FAIL"
	printf "peak RSS        %.1f MiB  (target <= %d MiB)  %s\n", rss / 1024, rssmax / 1024, ok_rss ? "PASS" : "FAIL"
	if (rc != 0) printf "mlk-ingest exited %d: the run does not count\n", rc
	exit !(ok_ratio && ok_rss)
}'
verdict=$?
if [ "$ingest_rc" -ne 0 ]; then
	echo "--- mlk-ingest stderr (last 20 lines) ---"
	tail -n 20 "$work/ingest.err"
fi
if [ "$keep" -eq 1 ]; then
	echo "lake kept in $lake"
fi
if [ "$verdict" -eq 0 ]; then
	echo "ingest benchmark: PASS"
	exit 0
fi
echo "ingest benchmark: FAIL"
exit 1
