#!/bin/sh
# genomics.sh — the genomics ingest memory and throughput benchmark.
#
#   sh scripts/bench/genomics.sh [--records N] [--seed S] [--bin DIR]
#
# Makes a BAM of N synthetic 150 bp reads on GRCh38's chromosomes
# (default 7,000,000 reads, about 1 GB), once: synthetic SAM from awk piped
# into `samtools view -1 -@2`, cached under $MLK_BENCH_CACHE (default
# ${TMPDIR:-/tmp}/mlk-bench) and keyed by N, S and this script's hash.
# Then, in the same run and on the same (page-cached) file:
#
#   cp         cp FILE DIR/            (a copy, the peer for storing)
#   sha256sum  sha256sum FILE          (a hash, the peer for hashing)
#   mlk        mlk-ingest --dataset genomics/bench FILE, into a fresh lake:
#              hash, copy into the object store, read the header, land the
#              record, fsync
#   reheader   samtools reheader H FILE > OUT, H the header with the
#              sample renamed (the peer for de-identifying the header)
#   mlk-deid   mlk-deid --project bench over the record: header cleaned,
#              the reads' BGZF blocks copied, the copy hashed, stored
#              and fsynced, the record rebuilt from it
#
# and prints each one's throughput (MB = 10^6 bytes of input per second),
# the ratios mlk/cp and mlk/sha256sum, mlk-ingest's peak RSS (GNU time %M),
# and checks the record (type bam, the 25 @SQ lines, the read group's
# sample, GRCh38 by chr1's length) and the stored object (same bytes).
#
#   PASS when both mlk tools' peak RSS < 32 MiB and the records and
#   objects are right (the copy: complete by samtools quickcheck, its
#   sample a token, its size within 64 KiB of the input's).
#
# The ratios are reported, not judged: mlk-ingest does what cp and
# sha256sum do together.  The last line is "genomics benchmark: PASS" or
# "genomics benchmark: FAIL".  Exit status: 0 PASS, 1 FAIL, 2 usage or a
# missing tool.
set -u

. "$(dirname "$0")/lib.sh"

bench_usage() {
	echo "usage: sh scripts/bench/genomics.sh [--records N] [--seed S] [--bin DIR]"
}
bench_args genomics.sh --records 7000000 "$@"
bench_tools samtools awk sha256sum cmp
[ -x /usr/bin/time ] || { echo "genomics.sh: /usr/bin/time not found (sh scripts/setup)" >&2; exit 2; }
RSS_MAX_KIB=32768

# --- input, cached -----------------------------------------------------------
cache=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}
mkdir -p "$cache" || exit 2
myhash=$(sha256sum "$0" | cut -c1-12)
input=$cache/genomics-n$records-s$seed-$myhash.bam
if [ ! -s "$input" ]; then
	echo "generating a BAM of $records reads into $input"
	tmp=$input.tmp.$$
	# Reads are random slices of a 1 MB random pool, so BGZF compresses
	# them about as little as real reads; qualities likewise.
	if ! awk -v n="$records" -v seed="$seed" 'BEGIN {
		srand(seed)
		printf "@HD\tVN:1.6\tSO:unsorted\n"
		split("248956422 242193529 198295559 190214555 181538259 " \
		      "170805979 159345973 145138636 138394717 133797422 " \
		      "135086622 133275309 114364328 107043718 101991189 " \
		      "90338345 83257441 80373285 58617616 64444167 46709983 " \
		      "50818468 156040895 57227415 16569", len, " ")
		for (c = 1; c <= 25; c++) {
			name[c] = c <= 22 ? "chr" c : c == 23 ? "chrX" \
				: c == 24 ? "chrY" : "chrM"
			printf "@SQ\tSN:%s\tLN:%d\tAS:GRCh38\n", name[c], len[c]
		}
		printf "@RG\tID:rg1\tSM:BENCH01\tPL:ILLUMINA\tLB:lib1\n"
		printf "@PG\tID:gen\tPN:genomics.sh\tVN:1\n"
		# 1000 random pieces of 1000 bases and qualities each
		b = "ACGT"; q = "#+5:?@ABCDEFGHIJ"
		for (k = 0; k < 1000; k++) {
			s = ""; t = ""
			for (i = 0; i < 1000; i++) {
				s = s substr(b, int(rand() * 4) + 1, 1)
				t = t substr(q, int(rand() * 16) + 1, 1)
			}
			S[k] = s; Q[k] = t
		}
		for (i = 0; i < n; i++) {
			c = int(rand() * 24) + 1
			printf "r%d\t0\t%s\t%d\t60\t150M\t*\t0\t0\t%s\t%s\tRG:Z:rg1\n",
				i, name[c], int(rand() * 1000000) + 1,
				substr(S[int(rand() * 1000)], int(rand() * 850) + 1, 150),
				substr(Q[int(rand() * 1000)], int(rand() * 850) + 1, 150)
		}
	}' | samtools view -1 -@2 -o "$tmp" -; then
		rm -f "$tmp"
		echo "genomics.sh: making the BAM failed" >&2
		exit 2
	fi
	mv "$tmp" "$input"
fi
bytes=$(wc -c <"$input" | tr -d ' ')
if [ "$bytes" -lt $((records * 100)) ]; then
	echo "genomics.sh: $input is too small for $records reads" >&2
	exit 2
fi
cat "$input" >/dev/null

bench_work genomics
"$bindir/mlk-catalog" init "$work/lake" >/dev/null || exit 2
mkdir "$work/cp"

timed cp cp "$input" "$work/cp/"
cp_ns=$ns
rm -f "$work/cp/"*
timed sha sha256sum "$input"
sha_ns=$ns
sync
timed mlk "$bindir/mlk-ingest" --lake "$work/lake" --dataset genomics/bench \
	--project bench --assay wgs --pipeline-version 1 "$input"
mlk_ns=$ns
mlk_rss=$rss

mbs() { awk -v b="$bytes" -v ns="$1" 'BEGIN { printf "%.0f", b / (ns / 1e9) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

echo "input: $(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }') MB BAM, $records reads"
echo "cp:         $(mbs "$cp_ns") MB/s"
echo "sha256sum:  $(mbs "$sha_ns") MB/s"
echo "mlk-ingest: $(mbs "$mlk_ns") MB/s (hash + store + header + record)"
echo "ratio mlk/cp: $(ratio "$mlk_ns" "$cp_ns")  ratio mlk/sha256sum: $(ratio "$mlk_ns" "$sha_ns")"
echo "mlk-ingest peak RSS: $mlk_rss KiB (limit $RSS_MAX_KIB)"

# --- de-identification: the header cleaned, the reads copied --------------
samtools view -H "$input" | sed 's/SM:[^	]*/SM:x/' >"$work/header.sam"
sync
timed reheader samtools reheader "$work/header.sam" "$input"
re_ns=$ns
rm -f "$work/reheader.out"
sync
timed deid "$bindir/mlk-deid" --lake "$work/lake" --project bench "$work/mlk.out"
deid_ns=$ns
deid_rss=$rss
echo "samtools reheader: $(mbs "$re_ns") MB/s (no fsync)"
echo "mlk-deid:          $(mbs "$deid_ns") MB/s (clean + copy + hash + store + record)"
echo "ratio mlk-deid/reheader: $(ratio "$deid_ns" "$re_ns")"
echo "mlk-deid peak RSS: $deid_rss KiB (limit $RSS_MAX_KIB)"

rec=$work/mlk.out
sha=$(cut -c1-64 "$work/sha.out")
check() {
	if [ "$1" != "$2" ]; then
		echo "genomics.sh: $3: got '$1', want '$2'" >&2
		fail=1
	fi
}
if command -v jq >/dev/null; then
	check "$(jq -r ._mlk.type "$rec")" bam "record type"
	check "$(jq '.sq | length' "$rec")" 25 "@SQ lines"
	check "$(jq -r '.samples | join(",")' "$rec")" BENCH01 "samples"
	check "$(jq -r .reference_build "$rec")" GRCh38 "reference build"
	check "$(jq -r ._mlk.blob "$rec")" "sha256:$sha" "blob"
fi
obj=$work/lake/objects/sha256/$(printf %.2s "$sha")/$sha
cmp -s "$input" "$obj" || { echo "genomics.sh: stored object differs" >&2; fail=1; }
[ "$mlk_rss" -gt 0 ] && [ "$mlk_rss" -lt "$RSS_MAX_KIB" ] || fail=1
[ "$deid_rss" -gt 0 ] && [ "$deid_rss" -lt "$RSS_MAX_KIB" ] || fail=1
copy=$(jq -r '._mlk.blob // empty' "$work/deid.out" 2>/dev/null | cut -c8-)
cobj=$work/lake/objects/sha256/$(printf %.2s "$copy")/$copy
if [ -z "$copy" ] || ! samtools quickcheck "$cobj"; then
	echo "genomics.sh: the de-identified copy is missing or incomplete" >&2
	fail=1
else
	check "$(samtools view -H "$cobj" | grep -c 'SM:[0-9a-f-]\{36\}')" 1 \
		"token samples in the copy"
	csize=$(wc -c <"$cobj" | tr -d ' ')
	[ $((csize - bytes)) -lt 65536 ] && [ $((bytes - csize)) -lt 65536 ] || {
		echo "genomics.sh: copy of $csize bytes for $bytes" >&2
		fail=1
	}
fi

if [ "$fail" -eq 0 ]; then
	echo "genomics benchmark: PASS"
	exit 0
fi
echo "genomics benchmark: FAIL"
exit 1
