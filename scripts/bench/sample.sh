#!/bin/sh
# sample.sh — the mlk-sample speed and memory benchmark.
#
#   sh scripts/bench/sample.sh [--records N] [--seed S] [--bin DIR]
#
# Generates N synthetic flat records (default 1,000,000, about 660 MB)
# with scripts/gen-ehr, cached under $MLK_BENCH_CACHE (default
# ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and the generator's hash.
# Then, in the same run, on the same page-cached input:
#
#   stratified  mlr --ijsonl --ojsonl sample -k 100 -g diagnosis_code FILE
#               vs mlk-sample --stratify diagnosis_code --per-stratum 100 FILE
#               target: mlk at least 10x faster
#   fraction    shuf -n COUNT FILE (COUNT = the records mlk keeps)
#               vs mlk-sample --fraction 0.1 FILE
#               target: mlk at least half as fast as shuf
#   memory      peak RSS (GNU time %M) of each mlk run at most
#               32 MiB plus the sample's bytes
#
# Prints times, ratios and PASS/FAIL; the last line is
# "sample benchmark: PASS" or "sample benchmark: FAIL".  Exit status:
# 0 PASS, 1 FAIL, 2 usage or missing tool.
set -u

. "$(dirname "$0")/lib.sh"
bench_args sample.sh "$@"
sample=$bindir/mlk-sample
[ -x "$sample" ] || { echo "sample.sh: $sample not found (make, or --bin DIR)" >&2; exit 2; }
bench_tools mlr shuf /usr/bin/time
bench_input flat
bench_work sample

timed mlk_strat "$sample" --key-file "$work/key" --stratify diagnosis_code \
	--per-stratum 100 "$input"
strat_ns=$ns strat_rss=$rss
strat_bytes=$(wc -c <"$work/mlk_strat.out" | tr -d ' ')
timed mlr mlr --ijsonl --ojsonl sample -k 100 -g diagnosis_code "$input"
mlr_ns=$ns
timed mlk_frac "$sample" --key-file "$work/key" --fraction 0.1 "$input"
frac_ns=$ns frac_rss=$rss
count=$(wc -l <"$work/mlk_frac.out" | tr -d ' ')
timed shuf shuf -n "$count" "$input"
shuf_ns=$ns

awk -v bytes="$bytes" -v records="$records" -v sns="$strat_ns" \
    -v mns="$mlr_ns" -v fns="$frac_ns" -v shns="$shuf_ns" \
    -v srss="$strat_rss" -v frss="$frac_rss" -v sbytes="$strat_bytes" \
    -v count="$count" -v fail="$fail" '
BEGIN {
	mb = bytes / 1e6
	printf "input        %.1f MB, %d records\n", mb, records
	printf "mlr sample   %7.2f s\n", mns / 1e9
	printf "mlk strat.   %7.2f s  %7.1f MB/s  RSS %.1f MiB (sample %.1f MiB)\n", sns / 1e9, mb / (sns / 1e9), srss / 1024, sbytes / 1048576
	printf "shuf -n %d %7.2f s\n", count, shns / 1e9
	printf "mlk fraction %7.2f s  %7.1f MB/s  RSS %.1f MiB\n", fns / 1e9, mb / (fns / 1e9), frss / 1024
	r1 = mns / sns; r2 = shns / fns
	ok1 = r1 >= 10; ok2 = r2 >= 0.5
	ok3 = srss > 0 && srss <= 32768 + sbytes / 1024 * 2 && frss > 0 && frss <= 32768
	printf "stratified: mlk %.1fx faster than mlr (target >= 10)  %s\n", r1, ok1 ? "PASS" : "FAIL"
	printf "fraction: mlk speed / shuf speed %.2f (target >= 0.5)  %s\n", r2, ok2 ? "PASS" : "FAIL"
	printf "peak RSS: %.1f / %.1f MiB (target <= 32 MiB + sample)  %s\n", srss / 1024, frss / 1024, ok3 ? "PASS" : "FAIL"
	exit !(ok1 && ok2 && ok3 && !fail)
}'
if [ $? -eq 0 ]; then
	echo "sample benchmark: PASS"
	exit 0
fi
echo "sample benchmark: FAIL"
exit 1
