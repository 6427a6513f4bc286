#!/bin/sh
# expect.sh — the quality-gate benchmark: `mlk-catalog check` against jq.
#
#   sh scripts/bench/expect.sh [--records N] [--seed S] [--bin DIR]
#
# Takes N synthetic flat records (default 1,000,000, about 660 MB) from
# scripts/gen-ehr, cached as for deid.sh (lib.sh, bench_input), and in the
# same run, on the same page-cached input, evaluates ten expectations
# (mlk-expect(5)):
#
#   required x3 (patient_id, encounter_id, encounter_date), type
#   (heart_rate integer), null_share (weight_kg <= 5%), in_set (sex),
#   range (systolic_bp 50-260), pattern (ICD-10 diagnosis_code), unique
#   (encounter_id), freshness (encounter_date within 3650 days)
#
# with `mlk-catalog check` and with one jq program (reduce over inputs)
# computing the same counts; the counts must agree.  Target: mlk at least
# 5x faster than jq.  The last line is "expect benchmark: PASS" or
# "expect benchmark: FAIL".  Exit status: 0 PASS, 1 FAIL, 2 usage or
# missing tool.
set -u

. "$(dirname "$0")/lib.sh"
bench_args expect.sh "$@"
catalog=$bindir/mlk-catalog
[ -x "$catalog" ] || { echo "expect.sh: $catalog not found (make, or --bin DIR)" >&2; exit 2; }
bench_tools jq /usr/bin/time
bench_input flat
bench_work expect

"$catalog" init "$work/lake" >/dev/null || exit 2
cat >"$work/expect.yaml" <<'YAML'
expectations:
  - {name: patient-id, kind: required, field: patient_id}
  - {name: encounter-id, kind: required, field: encounter_id}
  - {name: encounter-date, kind: required, field: encounter_date}
  - {name: heart-rate-int, kind: type, field: heart_rate, type: integer}
  - {name: weight-null, kind: null_share, field: weight_kg, max: 0.05}
  - {name: sex-set, kind: in_set, field: sex, values: [F, M]}
  - {name: sbp-range, kind: range, field: systolic_bp, min: 50, max: 260}
  - name: icd10
    kind: pattern
    field: diagnosis_code
    pattern: '^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$'
  - {name: encounter-unique, kind: unique, field: encounter_id}
  - {name: fresh, kind: freshness, field: encounter_date, days: 3650}
YAML

timed mlk sh -c '"$0" --lake "$1" check bench/flat --expectations "$2" <"$3"' \
	"$catalog" "$work/lake" "$work/expect.yaml" "$input"
mlk_ns=$ns mlk_rss=$rss
# The same ten in one jq program: failed counts per expectation.  The
# state is one object: encounter ids seen are its keys, the counters sit
# under "#" keys, and every update is a plain assignment, which jq 1.6
# does in place (+= or a nested object would copy the state per record).
fresh_since=$(date -u -d '3650 days ago' +%Y-%m-%d)
timed jq jq -n -c --arg since "$fresh_since" '
def inc(k): .[k] = .[k] + 1;
reduce inputs as $r ({"#n": 0, "#pid": 0, "#eid": 0, "#edate": 0, "#hr": 0,
	"#wnull": 0, "#sex": 0, "#sbp": 0, "#icd": 0, "#dup": 0, "#newest": ""};
  inc("#n")
  | if $r.patient_id == null then inc("#pid") else . end
  | if $r.encounter_id == null then inc("#eid") else . end
  | if $r.encounter_date == null then inc("#edate") else . end
  | if ($r.heart_rate != null) and (($r.heart_rate | type) != "number"
      or ($r.heart_rate | floor) != $r.heart_rate) then inc("#hr") else . end
  | if $r.weight_kg == null then inc("#wnull") else . end
  | if ($r.sex != null) and ($r.sex != "F" and $r.sex != "M")
      then inc("#sex") else . end
  | if ($r.systolic_bp != null) and (($r.systolic_bp | type) != "number"
      or $r.systolic_bp < 50 or $r.systolic_bp > 260) then inc("#sbp")
      else . end
  | if ($r.diagnosis_code != null) and (($r.diagnosis_code | type) !=
      "string" or ($r.diagnosis_code |
      test("^[A-TV-Z][0-9][0-9AB](\\.[0-9A-TV-Z]{1,4})?$") | not))
      then inc("#icd") else . end
  | if ($r.encounter_id | type) == "string" then
      (if .[$r.encounter_id] then inc("#dup")
       else .[$r.encounter_id] = true end) else . end
  | if ($r.encounter_date | type) == "string" and
      $r.encounter_date > .["#newest"]
      then .["#newest"] = $r.encounter_date else . end)
| [.["#pid"], .["#eid"], .["#edate"], .["#hr"],
   (if .["#wnull"] / .["#n"] > 0.05 then 1 else 0 end), .["#sex"],
   .["#sbp"], .["#icd"], .["#dup"],
   (if .["#newest"] >= $since then 0 else 1 end)]' \
	"$input"
jq_ns=$ns
mlk_counts=$(jq -c '[.expectations[].failed]' "$work/mlk.out" 2>/dev/null)
jq_counts=$(cat "$work/jq.out")
# null_share reports missing records; compare pass/fail for it instead.
mlk_cmp=$(jq -c '[.expectations[] | if .kind == "null_share" then
	(if .pass then 0 else 1 end) else .failed end]' "$work/mlk.out" 2>/dev/null)
records_seen=$(jq -r .records "$work/mlk.out" 2>/dev/null)
agree=0
[ -n "$mlk_cmp" ] && [ "$mlk_cmp" = "$jq_counts" ] && agree=1

awk -v bytes="$bytes" -v records="$records" -v kns="$mlk_ns" \
    -v jns="$jq_ns" -v krss="$mlk_rss" -v agree="$agree" \
    -v mc="$mlk_counts" -v jc="$jq_counts" -v seen="$records_seen" \
    -v fail="$fail" '
BEGIN {
	mb = bytes / 1e6
	printf "input        %.1f MB, %d records, 10 expectations\n", mb, records
	printf "jq           %7.2f s  %7.1f MB/s\n", jns / 1e9, mb / (jns / 1e9)
	printf "mlk-catalog  %7.2f s  %7.1f MB/s  RSS %.1f MiB, %s records checked\n", kns / 1e9, mb / (kns / 1e9), krss / 1024, seen
	printf "failed counts: mlk %s, jq %s\n", mc, jc
	r = jns / kns
	ok1 = r >= 5; ok2 = agree == 1 && seen == records
	printf "check: mlk %.1fx faster than jq (target >= 5)  %s\n", r, ok1 ? "PASS" : "FAIL"
	printf "counts agree with jq  %s\n", ok2 ? "PASS" : "FAIL"
	pass = ok1 && ok2 && !fail
	printf "expect benchmark: %s\n", pass ? "PASS" : "FAIL"
	exit pass ? 0 : 1
}'
