#!/bin/sh
# dicom.sh — the DICOM ingest benchmark.
#
#   sh scripts/bench/dicom.sh [--files N] [--seed S] [--bin DIR] [--rounds R]
#
# Generates N synthetic DICOM files (default 1,000) with scripts/gen-dicom
# from the shared sample files (every transfer syntax of the set: implicit,
# explicit, deflated, JPEG with fragmented pixel data; about 300 MB for
# 1,000), cached under $MLK_BENCH_CACHE (default ${TMPDIR:-/tmp}/mlk-bench)
# and keyed by N, S and the generator's hash.  Then, in the same run, R
# rounds (default 3) of, on the same page-cached files:
#
#   dcmdump  ONE `dcmdump -q +sd DIR` call over the N files (reads every
#            element, prints the header)
#   mlk      mlk-ingest --lake L --dataset imaging/bench DIR on a fresh
#            lake (reads the header, writes the JSON Model record, hashes
#            and stores every file in objects/, partitions, compresses,
#            fsyncs, audits)
#
# and prints the files/s of each and their ratio per round; the verdict
# is on the median ratio mlk/dcmdump against the target >= 1.0, and that
# mlk-ingest wrote one record per file in every round.  The last line is
# "dicom benchmark: PASS" or "dicom benchmark: FAIL".  Exit status: 0
# PASS, 1 FAIL, 2 usage or missing tool.
#
# mlk-ingest creates about 2,300 files (an object and a source marker per
# input, the objects/sha256/XX folders, the batch).  On ext4 without a
# journal, as on the development machine, creating a file scans past
# every inode of its block group deleted in the last minutes, which makes
# a create cost 0.1-0.7 ms after heavy churn in the same group against
# ~0.03 ms on a quiet one; bench_work (lib.sh) places the work folder
# away from the files earlier runs deleted.
set -u

. "$(dirname "$0")/lib.sh"
bench_dicom_args dicom.sh 3 "$@"
ingest=$bindir/mlk-ingest
catalog=$bindir/mlk-catalog
for t in "$ingest" "$catalog"; do
	[ -x "$t" ] || { echo "dicom.sh: $t not found (make, or --bin DIR)" >&2; exit 2; }
done
bench_tools dcmdump /usr/bin/python3 /usr/bin/time
bench_dicom_input

# --- rounds -----------------------------------------------------------------
bench_work dicom
sync
ratios=
peer_all=
mlk_all=
mlk_rss=0
records_ok=1
i=1
while [ "$i" -le "$rounds" ]; do
	sync
	cat "$input"/*.dcm >/dev/null
	timed dcmdump dcmdump -q +sd "$input"
	dump_ns=$ns
	dumped=$(grep -c '^# Dicom-File-Format' "$work/dcmdump.out")
	"$catalog" init "$work/lake$i" >/dev/null || exit 2
	sync
	cat "$input"/*.dcm >/dev/null
	timed mlk "$ingest" --quiet --lake "$work/lake$i" --dataset imaging/bench "$input"
	[ "$rss" -gt "$mlk_rss" ] && mlk_rss=$rss
	out=$(grep -c . "$work/mlk.out")
	[ "$out" -eq "$files" ] || records_ok=0
	bench_round "$i" dcmdump "$dump_ns" "$dumped" mlk-ingest "$ns" "$out"
	i=$((i + 1))
done

awk -v n="$files" -v b="$bytes" -v dfs="$(median $peer_all)" \
    -v mfs="$(median $mlk_all)" -v r="$(median $ratios)" \
    -v rss="$mlk_rss" -v rok="$records_ok" -v fail="$fail" \
    -v rounds="$rounds" '
BEGIN {
	printf "input: %d DICOM files, %.1f MB\n", n, b / 1e6
	printf "dcmdump (one call): median %.0f files/s\n", dfs
	printf "mlk-ingest: median %.0f files/s, %.1f MB/s, peak RSS %.1f MiB\n", mfs, b / 1e6 * mfs / n, rss / 1024
	ok1 = r >= 1.0
	ok2 = rok && !fail
	printf "median ratio mlk/dcmdump over %d rounds: %.2fx (target >= 1.0)  %s\n", rounds, r, ok1 ? "PASS" : "FAIL"
	printf "records: one per file in every round  %s\n", ok2 ? "PASS" : "FAIL"
	print (ok1 && ok2) ? "dicom benchmark: PASS" : "dicom benchmark: FAIL"
	exit !(ok1 && ok2)
}'
