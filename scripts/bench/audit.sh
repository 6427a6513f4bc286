#!/bin/sh
# audit.sh — the mlk-audit benchmark.
#
#   sh scripts/bench/audit.sh [--events N] [--bin DIR]
#
# Makes a lake, ingests the FHIR sample data (a real batch), appends
# synthetic events with a valid chain up to N events (default 1,000,000,
# about 450 MB), checkpoints it, then in the same run:
#
#   baseline  openssl dgst -sha256 LOG
#   verify    mlk-audit verify        target: throughput >= 0.5x openssl
#   trace     mlk-audit trace BATCH   target: < 1 s
#   append    median of 200 audit_append() calls (a small C driver linked
#             with build/rel/libmlk.a, fsync included)   target: < 1 ms
#   segments  (for information) rotate the log, then verify again: the
#             sealed segment and the active log as one log
#
# The last line is "audit benchmark: PASS" or "audit benchmark: FAIL".
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
events=1000000
bindir=$root/bin
while [ $# -gt 0 ]; do
	case $1 in
	--events) events=$2; shift 2 ;;
	--bin) bindir=$2; shift 2 ;;
	-h|--help) echo "usage: sh scripts/bench/audit.sh [--events N] [--bin DIR]"; exit 0 ;;
	*) echo "usage: sh scripts/bench/audit.sh [--events N] [--bin DIR]" >&2; exit 2 ;;
	esac
done
data=${MLK_DATA:-$root/../shared/data}
work=$(mktemp -d "${TMPDIR:-/tmp}/mlk-bench-audit.XXXXXX") || exit 2
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
lake=$work/lake
"$bindir/mlk-catalog" init "$lake" >/dev/null 2>&1 || exit 2
"$bindir/mlk-ingest" --quiet --lake "$lake" --dataset ehr/fhir "$data/fhir" >/dev/null || exit 2
log=$lake/audit/log.ndjson
batch=$(grep '"action":"ingest"' "$log" | head -n 1 | sed 's/.*"batch":"\([^"]*\)".*/\1/')

python3 - "$log" "$events" <<'PY'
import hashlib, sys
p, n = sys.argv[1], int(sys.argv[2])
lines = open(p, 'rb').read().split(b'\n')[:-1]
prev = hashlib.sha256(lines[-1]).hexdigest()
seq = len(lines)
users = [b'alice', b'bob', b'carol', b'dave']
acts = [b'read', b'ingest', b'export', b'write']
with open(p, 'ab') as f:
    out = []
    for i in range(seq + 1, n + 1):
        u = users[i % 4]; a = acts[i % 4]
        l = (b'{"v":1,"seq":%d,"time":"2026-11-25T16:%02d:%02dZ","actor":{"user":"%s","uid":%d},'
             b'"tool":"mlk-bench","version":"0.1.0","action":"%s","purpose":"BENCH-%d","zone":"raw",'
             b'"dataset":"ehr/bench%d","decision":"allow","rule":"owner","inputs":[{"sha256":"%s","bytes":%d}],'
             b'"outputs":[],"detail":{"note":"synthetic"},"status":0,"prev":"%s"}') % (
            i, (i // 60) % 60, i % 60, u, 1000 + i % 4, a, i, i % 50,
            hashlib.sha256(b'%d' % i).hexdigest().encode(), i * 7, prev.encode())
        out.append(l)
        prev = hashlib.sha256(l).hexdigest()
        if len(out) == 10000:
            f.write(b'\n'.join(out) + b'\n'); out = []
    if out:
        f.write(b'\n'.join(out) + b'\n')
PY
"$bindir/mlk-audit" checkpoint --lake "$lake" >/dev/null || { echo "audit.sh: checkpoint failed" >&2; exit 1; }
bytes=$(wc -c <"$log" | tr -d ' ')
cat "$log" >/dev/null

now_ns() { date +%s%N; }
t0=$(now_ns); openssl dgst -sha256 "$log" >/dev/null; t1=$(now_ns); ossl=$((t1 - t0))
t0=$(now_ns); "$bindir/mlk-audit" verify --lake "$lake" >"$work/verify.out"; vrc=$?; t1=$(now_ns); ver=$((t1 - t0))
t0=$(now_ns); "$bindir/mlk-audit" trace --lake "$lake" "$batch" >"$work/trace.out"; trc=$?; t1=$(now_ns); tra=$((t1 - t0))
edges=$(wc -l <"$work/trace.out" | tr -d ' ')

# append latency: a driver over the library, compiled here
cat >"$work/append.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "audit.h"
static int cmp(const void *a, const void *b)
{ double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv)
{
	struct lake l; struct identity id; struct mlk_error e = MLK_ERROR_INIT;
	if (lake_open(argv[1], &l, &e) || policy_identity(&l, &id, &e)) return 5;
	int n = atoi(argv[2]);
	double *t = malloc(sizeof *t * (size_t)n);
	struct audit_event ev = { "mlk-bench", "read", "BENCH", "raw", "ehr/fhir", NULL, NULL, NULL, NULL, 0 };
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (audit_append(&l, &id, &ev, &e)) return 4;
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("%.3f\n", t[n / 2]);
	return 0;
}
C
flags=$(pkg-config --cflags --libs libarchive zlib yaml-0.1 libcrypto libdeflate)
if cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/common" \
	-o "$work/append" "$work/append.c" "$root/build/rel/libmlk.a" $flags -lpthread 2>"$work/cc.err"; then
	med=$("$work/append" "$lake" 200) || med=999
else
	cat "$work/cc.err" >&2; med=999
fi

t0=$(now_ns); "$bindir/mlk-audit" rotate --lake "$lake" >/dev/null; rrc=$?; t1=$(now_ns); rot=$((t1 - t0))
t0=$(now_ns); "$bindir/mlk-audit" verify --lake "$lake" >/dev/null; src=$?; t1=$(now_ns); sver=$((t1 - t0))
awk -v r="$rot" -v rc="$rrc" -v v="$sver" -v vc="$src" 'BEGIN {
	printf "rotate           %7.3f s  exit %d; then verify of segment + log %.3f s  exit %d\n", r / 1e9, rc, v / 1e9, vc
}'

awk -v bytes="$bytes" -v events="$events" -v o="$ossl" -v v="$ver" -v t="$tra" \
    -v vrc="$vrc" -v trc="$trc" -v med="$med" -v edges="$edges" '
BEGIN {
	mb = bytes / 1e6
	os = mb / (o / 1e9); vs = mb / (v / 1e9); ratio = vs / os
	printf "log              %d events, %.1f MB\n", events, mb
	printf "openssl dgst     %7.3f s  %7.1f MB/s\n", o / 1e9, os
	printf "mlk-audit verify %7.3f s  %7.1f MB/s  exit %d\n", v / 1e9, vs, vrc
	ok1 = vrc == 0 && ratio >= 0.5
	ok2 = trc == 0 && t / 1e9 < 1.0 && edges > 0
	ok3 = med < 1.0
	printf "ratio verify/openssl  %.2f  (target >= 0.5)  %s\n", ratio, ok1 ? "PASS" : "FAIL"
	printf "trace batch      %7.3f s  %d edges  (target < 1 s)  %s\n", t / 1e9, edges, ok2 ? "PASS" : "FAIL"
	printf "append median    %7.3f ms  (target < 1 ms)  %s\n", med, ok3 ? "PASS" : "FAIL"
	exit !(ok1 && ok2 && ok3)
}'
if [ $? -eq 0 ]; then echo "audit benchmark: PASS"; exit 0; fi
echo "audit benchmark: FAIL"; exit 1
