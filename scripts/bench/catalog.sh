#!/bin/sh
# catalog.sh — the mlk-catalog search benchmark.
#
#   sh scripts/bench/catalog.sh [--descriptors N] [--bin DIR]
#
# Makes a lake in a temporary directory with N synthetic dataset
# descriptors (default 100,000) written straight as YAML by awk under
# catalog/datasets/, builds the index once with `mlk-catalog reindex`
# (timed, not a target), then times, best of 5 runs each:
#
#   field      mlk-catalog search sensitivity=restricted modality=CT
#   free text  mlk-catalog search thorax
#   both       mlk-catalog search owner=user42 oncology
#
# against `grep -c thorax` over the index file as the peer (what a person
# would do by hand).  Target: every search under 200 ms.  The last line is
# "catalog benchmark: PASS" or "catalog benchmark: FAIL".  Exit status:
# 0 PASS, 1 FAIL, 2 usage or missing tool.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
n=100000
bindir=$root/bin
usage() {
	echo "usage: sh scripts/bench/catalog.sh [--descriptors N] [--bin DIR]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--descriptors) [ $# -ge 2 ] || { usage >&2; exit 2; }; n=$2; shift 2 ;;
	--bin) [ $# -ge 2 ] || { usage >&2; exit 2; }; bindir=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -x "$bindir/mlk-catalog" ] || { echo "catalog.sh: no $bindir/mlk-catalog (run make)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mlk-bench-catalog.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
lake=$work/lake
"$bindir/mlk-catalog" init "$lake" >/dev/null || exit 2
export MLK_LAKE=$lake
cat >"$lake/vocab.yaml" <<'V'
version: 1
terms:
  CT: [computed tomography, CT chest, thoracic CT]
V

echo "catalog.sh: writing $n descriptors"
awk -v n="$n" -v dir="$lake/catalog/datasets" 'BEGIN {
	split("restricted confidential internal public", sens, " ")
	split("CT MR US PT ECG", mod, " ")
	split("oncology cardiology neurology thorax trauma", topic, " ")
	for (i = 0; i < n; i++) {
		g = sprintf("%s/g%03d", dir, i % 1000)
		if (i < 1000)
			system("mkdir -p " g)
		f = sprintf("%s/d%06d.yaml", g, i)
		printf "dataset: \"bench/g%03d/d%06d\"\n", i % 1000, i > f
		printf "owner: \"user%d\"\nsteward: \"steward%d\"\n", i % 97, i % 13 > f
		printf "description: \"%s study %d, %s imaging\"\n", topic[i % 5 + 1], i, mod[i % 5 + 1] > f
		printf "sensitivity: \"%s\"\nmodality: \"%s\"\n", sens[i % 4 + 1], mod[i % 5 + 1] > f
		printf "deid: \"none\"\nlegal_hold: false\nmodels: []\nversions: []\n" > f
		printf "derived:\n  records: %d\n  types: [\"csv:t%d\"]\n  schema:\n    - {field: \"id\", types: [\"string\"], null_share: 0}\n", i * 7 % 100000, i % 50 > f
		close(f)
	}
}' || exit 2

t0=$(date +%s.%N)
"$bindir/mlk-catalog" reindex >/dev/null || exit 1
t1=$(date +%s.%N)
echo "catalog.sh: reindex of $n descriptors: $(echo "$t1 - $t0" | bc) s ($(wc -c <"$lake/catalog/index.ndjson") bytes)"

best() {
	b=999
	for _ in 1 2 3 4 5; do
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc)
		b=$(echo "if ($t < $b) $t else $b" | bc)
	done
	echo "$b"
}

fail=0
peer=$(best grep -c thorax "$lake/catalog/index.ndjson")
one() {
	t=$(best "$bindir/mlk-catalog" search "$@")
	hits=$("$bindir/mlk-catalog" search "$@" | wc -l)
	ok=$(echo "$t < 0.2" | bc)
	[ "$ok" -eq 1 ] || fail=1
	echo "catalog.sh: search $*: $t s, $hits hits (grep -c of the index: $peer s) $( [ "$ok" -eq 1 ] && echo PASS || echo FAIL)"
}
one sensitivity=restricted modality=CT
one thorax
one owner=user42 oncology
one "modality=computed tomography"
one "thoracic CT"
if [ "$fail" -eq 0 ]; then
	echo "catalog benchmark: PASS"
else
	echo "catalog benchmark: FAIL"
	exit 1
fi
