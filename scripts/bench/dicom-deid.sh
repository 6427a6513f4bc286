#!/bin/sh
# dicom-deid.sh — the DICOM object de-identification benchmark (issue #5).
#
#   sh scripts/bench/dicom-deid.sh [--files N] [--seed S] [--bin DIR]
#                                  [--rounds R]
#
# Uses the N synthetic DICOM files (default 1,000) of scripts/gen-dicom
# that dicom.sh uses, cached under $MLK_BENCH_CACHE (default
# ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and the generator's hash.
# Then, in the same run, R rounds (default 5) of the two tools in turn,
# each on page-cached input:
#
#   gdcmanon  ONE `gdcmanon -e --certificate CERT -r -i DIR -o OUT` call:
#             GDCM's PS3.15 basic profile, with a throwaway self-signed
#             certificate made by openssl for this run
#   mlk       mlk-deid --lake L --project bench over the records of
#             mlk-ingest: PS3.15 basic profile, a de-identified Part 10
#             file written into the object store for each record, fsynced,
#             audited.  The ingest is not timed: it is done once, and each
#             round gets its own copy of that lake (same key), so every
#             round writes all its objects anew.
#
# gdcmanon stops at the first file it cannot de-identify (two of the nine
# shared samples, about 2 studies in 9), so the files it accepts are found
# first, one call per file, untimed and cached beside the input; the timed
# call gets a folder of those files only.  mlk-deid takes all N and
# leaves out (with a reason) those its profile refuses, such as
# ultrasound without BurnedInAnnotation.  Each tool's files/s is counted
# over the files it actually wrote, and both counts are printed.
#
# Each round prints both tools' times and their ratio; the verdict is on
# the median ratio of the rounds, since this machine is shared.  The work
# folder is placed away from the files earlier runs deleted (bench_work
# in lib.sh explains why).
#
# mlk's output is checked too: every file of the first round is read by
# dcmdump without error, no PatientName of the input is found in what
# dcmdump prints of any of them, and every round wrote the same records
# (same input, key and project: same bytes).
# The target is a median ratio mlk/gdcmanon of at least 2.  The last line
# is "dicom-deid benchmark: PASS" or "dicom-deid benchmark: FAIL".  Exit
# status: 0 PASS, 1 FAIL, 2 usage or missing tool.
set -u

. "$(dirname "$0")/lib.sh"
bench_dicom_args dicom-deid.sh 5 "$@"
ingest=$bindir/mlk-ingest
deid=$bindir/mlk-deid
catalog=$bindir/mlk-catalog
for t in "$ingest" "$deid" "$catalog"; do
	[ -x "$t" ] || { echo "dicom-deid.sh: $t not found (make, or --bin DIR)" >&2; exit 2; }
done
bench_tools gdcmanon openssl dcmdump jq /usr/bin/python3 /usr/bin/time
bench_dicom_input

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

# --- mlk: one ingest (not timed), a copy of the lake per round ------------
"$catalog" init "$work/lake" >/dev/null || exit 2
"$ingest" --quiet --lake "$work/lake" --dataset imaging/bench "$input" \
	>"$work/in.ndjson" || { echo "dicom-deid.sh: mlk-ingest failed" >&2; exit 2; }
i=1
while [ "$i" -le "$rounds" ]; do
	cp -a "$work/lake" "$work/lake$i" || exit 2
	i=$((i + 1))
done

# --- rounds -----------------------------------------------------------------
sync
ratios=
peer_all=
mlk_all=
mlk_rss=0
i=1
while [ "$i" -le "$rounds" ]; do
	# each tool starts with the disk idle and its input in the page cache
	sync
	cat "$work"/gdcm-in/*.dcm >/dev/null
	timed gdcmanon gdcmanon -e --certificate "$work/cert.pem" -r \
		-i "$work/gdcm-in" -o "$work/gdcm-out$i"
	gdcm_ns=$ns
	gdcm_out=$(find "$work/gdcm-out$i" -type f 2>/dev/null | grep -c .)

	sync
	cat "$work/lake$i"/objects/sha256/*/* >/dev/null
	# mlk-deid exits 1 when its profile leaves objects out (reported on
	# stderr); that is its normal outcome here, not a failure of the run.
	timed_ok=1
	timed "mlk$i" "$deid" --lake "$work/lake$i" --project bench \
		"$work/in.ndjson"
	timed_ok=0
	mlk_ns=$ns
	[ "$rss" -gt "$mlk_rss" ] && mlk_rss=$rss
	mlk_out=$(jq -r '._mlk.blob // empty' "$work/mlk$i.out" | grep -c .)
	bench_round "$i" gdcmanon "$gdcm_ns" "$gdcm_out" mlk-deid "$mlk_ns" \
		"$mlk_out"
	if [ "$i" -gt 1 ] && ! cmp -s "$work/mlk1.out" "$work/mlk$i.out"; then
		echo "dicom-deid.sh: round $i wrote other records than round 1" >&2
		fail=1
	fi
	i=$((i + 1))
done
cp "$work/mlk1.out" "$work/mlk.out"

# --- mlk's output: valid DICOM, no input PatientName in it ------------------
jq -r '._mlk.blob // empty' "$work/mlk.out" | sed 's/^sha256://' |
	while read -r h; do
		echo "$work/lake1/objects/sha256/$(echo "$h" | cut -c1-2)/$h"
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

awk -v n="$files" -v b="$bytes" -v gin="$gdcm_in" -v mout="$mlk_out" \
    -v left="$left_out" -v rss="$mlk_rss" -v bad="$bad_dump" \
    -v names="$names" -v leaks="$leaks" -v fail="$fail" -v rounds="$rounds" \
    -v gfs="$(median $peer_all)" -v mfs="$(median $mlk_all)" \
    -v r="$(median $ratios)" '
BEGIN {
	printf "input: %d DICOM files, %.1f MB; gdcmanon accepts %d of them\n", n, b / 1e6, gin
	printf "gdcmanon -e (one call over its %d): median %.0f files/s\n", gin, gfs
	printf "mlk-deid (over all %d records): median %.0f files/s, %d files written (%d left out by the profile), peak RSS %.1f MiB\n", n, mfs, mout, left, rss / 1024
	printf "files/s are counted over the files each tool wrote\n"
	ok1 = r >= 2.0
	ok2 = mout > 0 && bad == 0 && leaks == 0 && names > 0 && !fail
	printf "median ratio mlk/gdcmanon over %d rounds: %.2fx (target >= 2.0)  %s\n", rounds, r, ok1 ? "PASS" : "FAIL"
	printf "mlk output: %d files, %d not read by dcmdump, %d holding one of %d input PatientNames, rounds identical  %s\n", mout, bad, leaks, names, ok2 ? "PASS" : "FAIL"
	print (ok1 && ok2) ? "dicom-deid benchmark: PASS" : "dicom-deid benchmark: FAIL"
	exit !(ok1 && ok2)
}'
