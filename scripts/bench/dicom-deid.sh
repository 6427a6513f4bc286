#!/bin/sh
# dicom-deid.sh — the DICOM object de-identification benchmark (issue #5).
#
#   sh scripts/bench/dicom-deid.sh [--files N] [--seed S] [--bin DIR]
#
# Uses the N synthetic DICOM files (default 1,000) of scripts/gen-dicom
# that dicom.sh uses, cached under $MLK_BENCH_CACHE (default
# ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and the generator's hash.
# Then, in the same run, on the same page-cached files:
#
#   gdcmanon  ONE `gdcmanon -e --certificate CERT -r -i DIR -o OUT` call:
#             GDCM's PS3.15 basic profile, with a throwaway self-signed
#             certificate made by openssl for this run
#   mlk       mlk-deid --lake L --project bench over the records of
#             mlk-ingest (the ingest into a fresh lake is not timed):
#             PS3.15 basic profile, a de-identified Part 10 file written
#             into the object store for each record, fsynced, audited
#
# gdcmanon stops at the first file it cannot de-identify (two of the nine
# shared samples, about 2 studies in 9), so the files it accepts are found
# first, one call per file, untimed and cached beside the input; the timed
# call gets a folder of those files only.  mlk-deid takes all N and
# leaves out (with a reason) those its profile refuses, such as
# ultrasound without BurnedInAnnotation.  Each tool's files/s is counted
# over the files it actually wrote, and both counts are printed.
#
# mlk's output is checked too: every file it wrote is read by dcmdump
# without error, and no PatientName of the input is found in what dcmdump
# prints of any of them.
# The target is mlk at least 2x gdcmanon's files/s.  The last line is
# "dicom-deid benchmark: PASS" or "dicom-deid benchmark: FAIL".  Exit
# status: 0 PASS, 1 FAIL, 2 usage or missing tool.
set -u

. "$(dirname "$0")/lib.sh"
bench_name=dicom-deid.sh
root=$(cd "$(dirname "$0")/../.." && pwd)
files=1000
seed=1
bindir=$root/bin
fail=0
usage="usage: sh scripts/bench/dicom-deid.sh [--files N] [--seed S] [--bin DIR]"
while [ $# -gt 0 ]; do
	case $1 in
	--files|--seed|--bin)
		[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
		case $1 in
		--files) files=$2 ;;
		--seed) seed=$2 ;;
		--bin) bindir=$2 ;;
		esac
		shift 2 ;;
	-h|--help) echo "$usage"; exit 0 ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
case $files in ''|*[!0-9]*|0) echo "dicom-deid.sh: --files must be a positive number" >&2; exit 2 ;; esac
case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac
ingest=$bindir/mlk-ingest
deid=$bindir/mlk-deid
catalog=$bindir/mlk-catalog
for t in "$ingest" "$deid" "$catalog"; do
	[ -x "$t" ] || { echo "dicom-deid.sh: $t not found (make, or --bin DIR)" >&2; exit 2; }
done
bench_tools gdcmanon openssl dcmdump jq /usr/bin/python3 /usr/bin/time

# --- input, cached (the same files as dicom.sh) -----------------------------
cache=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}
mkdir -p "$cache" || exit 2
genhash=$(sha256sum "$root/scripts/gen-dicom" | cut -c1-12)
input=$cache/dicom-n$files-s$seed-$genhash
if [ ! -f "$input.done" ]; then
	echo "generating $files DICOM files into $input"
	rm -rf "$input"
	if ! /usr/bin/python3 "$root/scripts/gen-dicom" --files "$files" \
		--seed "$seed" "$input"; then
		rm -rf "$input"
		echo "dicom-deid.sh: gen-dicom failed" >&2
		exit 2
	fi
	: >"$input.done"
fi
bytes=$(cat "$input"/*.dcm | wc -c | tr -d ' ')

bench_work dicom-deid
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mlk-bench \
	-keyout "$work/cert-key.pem" -out "$work/cert.pem" >/dev/null 2>&1 || {
	echo "dicom-deid.sh: openssl could not make a certificate" >&2
	exit 2
}

# --- the files gdcmanon accepts, found once per input and gdcmanon ----------
gdcmver=$(gdcmanon --version 2>&1 | head -n 1 | tr -cd '0-9.')
accepted=$input.gdcmanon-$gdcmver.ok
if [ ! -f "$accepted" ]; then
	echo "finding the files gdcmanon accepts (once, one call per file)"
	mkdir "$work/probe" || exit 2
	for f in "$input"/*.dcm; do
		n=${f##*/}
		if gdcmanon -e --certificate "$work/cert.pem" "$f" \
			"$work/probe/$n" >/dev/null 2>&1; then
			echo "$n"
		fi
		rm -f "$work/probe/$n"
	done >"$accepted.tmp.$$" && mv "$accepted.tmp.$$" "$accepted"
	rmdir "$work/probe"
fi
mkdir "$work/gdcm-in" || exit 2
while read -r n; do
	ln "$input/$n" "$work/gdcm-in/$n" 2>/dev/null ||
		cp "$input/$n" "$work/gdcm-in/$n" || exit 2
done <"$accepted"
gdcm_in=$(grep -c . "$accepted")

# --- mlk: ingest (not timed), then mlk-deid over its records (timed) --------
"$catalog" init "$work/lake" >/dev/null || exit 2
"$ingest" --quiet --lake "$work/lake" --dataset imaging/bench "$input" \
	>"$work/in.ndjson" || { echo "dicom-deid.sh: mlk-ingest failed" >&2; exit 2; }
cat "$input"/*.dcm "$work"/gdcm-in/*.dcm >/dev/null

# --- runs -------------------------------------------------------------------
timed gdcmanon gdcmanon -e --certificate "$work/cert.pem" -r \
	-i "$work/gdcm-in" -o "$work/gdcm-out"
gdcm_ns=$ns
gdcm_out=$(find "$work/gdcm-out" -type f 2>/dev/null | grep -c .)

# mlk-deid exits 1 when its profile leaves objects out (reported on
# stderr); that is its normal outcome here, not a failure of the run.
t0=$(now_ns)
/usr/bin/time -f %M -o "$work/mlk.rss" "$deid" --lake "$work/lake" \
	--project bench "$work/in.ndjson" >"$work/mlk.out" 2>"$work/mlk.err"
rc=$?
t1=$(now_ns)
mlk_ns=$((t1 - t0))
mlk_rss=$(tail -n 1 "$work/mlk.rss")
case $mlk_rss in ''|*[!0-9]*) mlk_rss=0 ;; esac
if [ "$rc" -gt 1 ]; then
	echo "dicom-deid.sh: mlk-deid exited $rc" >&2
	tail -n 5 "$work/mlk.err" >&2
	fail=1
fi

# --- mlk's output: valid DICOM, no input PatientName in it ------------------
jq -r '._mlk.blob // empty' "$work/mlk.out" | sed 's/^sha256://' |
	while read -r h; do
		echo "$work/lake/objects/sha256/$(echo "$h" | cut -c1-2)/$h"
	done >"$work/mlk.files"
mlk_out=$(grep -c . "$work/mlk.files")
left_out=$(($(grep -c . "$work/in.ndjson") - mlk_out))
jq -r '.dicom["00100010"].Value[0].Alphabetic // empty' "$work/in.ndjson" |
	sort -u | grep . >"$work/names"
names=$(grep -c . "$work/names")
# Through dcmdump, so that names inside deflated data sets are seen too.
bad_dump=0
leaks=0
while read -r f; do
	if [ -f "$f" ] && dcmdump -q "$f" >"$work/dump" 2>/dev/null; then
		grep -q -F -f "$work/names" "$work/dump" && leaks=$((leaks + 1))
	else
		bad_dump=$((bad_dump + 1))
	fi
done <"$work/mlk.files"

awk -v n="$files" -v b="$bytes" -v g="$gdcm_ns" -v m="$mlk_ns" \
    -v gin="$gdcm_in" -v gout="$gdcm_out" -v mout="$mlk_out" \
    -v left="$left_out" -v rss="$mlk_rss" -v bad="$bad_dump" \
    -v names="$names" -v leaks="$leaks" -v fail="$fail" '
BEGIN {
	gfs = gout / (g / 1e9); mfs = mout / (m / 1e9)
	r = gfs > 0 ? mfs / gfs : 0
	printf "input: %d DICOM files, %.1f MB; gdcmanon accepts %d of them\n", n, b / 1e6, gin
	printf "gdcmanon -e (one call over its %d): %.2f s, %d files written, %.0f files/s\n", gin, g / 1e9, gout, gfs
	printf "mlk-deid (over all %d records): %.2f s, %d files written (%d left out by the profile), %.0f files/s, peak RSS %.1f MiB\n", n, m / 1e9, mout, left, mfs, rss / 1024
	printf "files/s are counted over the files each tool wrote\n"
	ok1 = r >= 2.0
	ok2 = mout > 0 && bad == 0 && leaks == 0 && names > 0 && !fail
	printf "ratio mlk/gdcmanon: %.2fx (target >= 2.0)  %s\n", r, ok1 ? "PASS" : "FAIL"
	printf "mlk output: %d files, %d not read by dcmdump, %d holding one of %d input PatientNames  %s\n", mout, bad, leaks, names, ok2 ? "PASS" : "FAIL"
	print (ok1 && ok2) ? "dicom-deid benchmark: PASS" : "dicom-deid benchmark: FAIL"
	exit !(ok1 && ok2)
}'
