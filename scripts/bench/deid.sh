#!/bin/sh
# deid.sh — the mlk-deid speed and memory benchmark.
#
#   sh scripts/bench/deid.sh [--records N] [--seed S] [--bin DIR]
#
# Generates N synthetic flat records (default 1,000,000, about 660 MB)
# with scripts/gen-ehr, cached under $MLK_BENCH_CACHE (default
# ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and the generator's hash.
# Then, in the same run, on the same page-cached input:
#
#   safe-harbor  mlk-deid --profile safe-harbor (drops what it does not
#                know, tokens for ids, ZIP3, years, scrubbed notes)
#                vs mlr doing the nearest equivalent: drop the direct
#                identifiers, sha256 the patient id, ZIP to 3 digits,
#                birth date to year;  target: mlk at least 10x faster
#                vs jq doing the drop only;  target: at least 4x faster
#   memory       peak RSS (GNU time %M) of mlk-deid at most 32 MiB
#
# Prints times, ratios and PASS/FAIL; the last line is
# "deid benchmark: PASS" or "deid benchmark: FAIL".  Exit status:
# 0 PASS, 1 FAIL, 2 usage or missing tool.
set -u

. "$(dirname "$0")/lib.sh"
bench_args deid.sh "$@"
deid=$bindir/mlk-deid
[ -x "$deid" ] || { echo "deid.sh: $deid not found (make, or --bin DIR)" >&2; exit 2; }
bench_tools mlr jq /usr/bin/time
bench_input flat
bench_work deid

drop=mrn,ssn,first_name,last_name,phone,email,address,city,notes
timed mlk "$deid" --key-file "$work/key" --project bench "$input"
mlk_ns=$ns mlk_rss=$rss
timed mlr mlr --ijsonl --ojsonl cut -x -f "$drop" then put \
	'$patient_id = sha256($patient_id); $zip = substr0($zip, 0, 2);
	 $birth_date = substr0($birth_date, 0, 3)' "$input"
mlr_ns=$ns
timed jq jq -c "del(.$(echo "$drop" | sed 's/,/, ./g'))" "$input"
jq_ns=$ns
out_records=$(wc -l <"$work/mlk.out" | tr -d ' ')
leaks=$(head -n 100000 "$input" | jq -r '.ssn, .mrn' | sort -u |
	grep -c -F -f - "$work/mlk.out")

awk -v bytes="$bytes" -v records="$records" -v kns="$mlk_ns" \
    -v mns="$mlr_ns" -v jns="$jq_ns" -v krss="$mlk_rss" \
    -v outr="$out_records" -v leaks="$leaks" -v fail="$fail" '
BEGIN {
	mb = bytes / 1e6
	printf "input        %.1f MB, %d records\n", mb, records
	printf "mlr          %7.2f s  %7.1f MB/s\n", mns / 1e9, mb / (mns / 1e9)
	printf "jq (drop)    %7.2f s  %7.1f MB/s\n", jns / 1e9, mb / (jns / 1e9)
	printf "mlk-deid     %7.2f s  %7.1f MB/s  RSS %.1f MiB, %d records out\n", kns / 1e9, mb / (kns / 1e9), krss / 1024, outr
	r1 = mns / kns; r2 = jns / kns
	ok1 = r1 >= 10; ok2 = r2 >= 4; ok3 = krss > 0 && krss <= 32768
	ok4 = outr == records && leaks == 0
	printf "safe-harbor: mlk %.1fx faster than mlr (target >= 10)  %s\n", r1, ok1 ? "PASS" : "FAIL"
	printf "safe-harbor: mlk %.1fx faster than jq drop-only (target >= 4)  %s\n", r2, ok2 ? "PASS" : "FAIL"
	printf "peak RSS: %.1f MiB (target <= 32 MiB)  %s\n", krss / 1024, ok3 ? "PASS" : "FAIL"
	printf "output: %d records, %d SSNs or MRNs of the input found in it  %s\n", outr, leaks, ok4 ? "PASS" : "FAIL"
	exit !(ok1 && ok2 && ok3 && ok4 && !fail)
}'
if [ $? -eq 0 ]; then
	echo "deid benchmark: PASS"
	exit 0
fi
echo "deid benchmark: FAIL"
exit 1
