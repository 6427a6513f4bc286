# lib.sh — what the benchmarks share; sourced by scripts/bench/*.sh.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_args NAME "$@"     --records N (default 1,000,000), --seed S
#                            (default 1), --bin DIR (default bin/); sets
#                            root, records, seed, bindir
#   bench_tools T...         exit 2 unless every tool is on PATH
#   bench_input FORMAT       synthetic records from scripts/gen-ehr, cached
#                            under $MLK_BENCH_CACHE (default
#                            ${TMPDIR:-/tmp}/mlk-bench) by N, S and the
#                            generator's hash; sets input, bytes; read once
#                            so that every run starts from the page cache
#   bench_work NAME          a temporary folder, removed at exit, with a
#                            fresh key (mode 0600); sets work (see the
#                            note above bench_work on where it is made)
#   timed NAME CMD...        run CMD with stdout to $work/NAME.out, stderr
#                            to $work/NAME.err; sets ns (wall time), rss
#                            (peak KiB) and rc; an exit status above
#                            $timed_ok (default 0) sets fail=1
#   bench_dicom_args NAME R "$@"
#                            --files N (default 1,000), --seed S, --bin
#                            DIR, --rounds R (default R); sets root,
#                            files, seed, bindir, rounds
#   bench_dicom_input        N synthetic DICOM files from scripts/gen-dicom,
#                            cached like bench_input; sets input, bytes
#   bench_round I ...        one round's line and figures (see there)
#   median V...              the median of the numbers given

bench_args() {
	bench_name=$1
	shift
	records=1000000
	bench_parse "$@"
	case $records in
	''|*[!0-9]*) echo "$bench_name: --records must be a number" >&2; exit 2 ;;
	esac
}

# The options every benchmark takes (each uses those it names in its
# usage line); defaults are the caller's, set before.
bench_parse() {
	root=$(cd "$(dirname "$0")/../.." && pwd)
	: "${seed:=1}" "${files:=1000}" "${rounds:=1}"
	bindir=$root/bin
	while [ $# -gt 0 ]; do
		case $1 in
		--records|--files|--seed|--bin|--rounds)
			[ $# -ge 2 ] || { bench_usage >&2; exit 2; }
			case $1 in
			--records) records=$2 ;;
			--files) files=$2 ;;
			--seed) seed=$2 ;;
			--bin) bindir=$2 ;;
			--rounds) rounds=$2 ;;
			esac
			shift 2 ;;
		-h|--help) bench_usage; exit 0 ;;
		*) bench_usage >&2; exit 2 ;;
		esac
	done
	case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac
	fail=0
}

bench_usage() {
	echo "usage: sh scripts/bench/$bench_name [--records N] [--seed S] [--bin DIR]"
}

bench_tools() {
	for t in "$@"; do
		command -v "$t" >/dev/null || {
			echo "$bench_name: $t not found (sh scripts/setup)" >&2
			exit 2
		}
	done
}

bench_input() {
	cache=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}
	mkdir -p "$cache" || exit 2
	genhash=$(sha256sum "$root/scripts/gen-ehr" | cut -c1-12)
	input=$cache/$1-n$records-s$seed-$genhash.ndjson
	if [ ! -s "$input" ]; then
		echo "generating $records $1 records into $input"
		tmp=$input.tmp.$$
		python3 "$root/scripts/gen-ehr" --format "$1" --records "$records" \
			--seed "$seed" >"$tmp" || { rm -f "$tmp"; exit 2; }
		mv "$tmp" "$input"
	fi
	bytes=$(wc -c <"$input" | tr -d ' ')
	cat "$input" >/dev/null
}

# On ext4 without a journal (as on the development machines), creating a
# file scans past every inode of its block group deleted in the last few
# minutes (ext4's recently_deleted()), so right after a benchmark deletes
# its thousands of files, every create of the next one in the same group
# costs up to 100x more, and a benchmark would measure its predecessor's
# cleanup.  The penalty is the same per file for both tools, so it
# shrinks the ratio of the faster one.  So work folders are made in
# $MLK_BENCH_CACHE/work, marked as a top of directory hierarchies
# (chattr +T), under which ext4 puts each new folder in a block group of
# its own choosing, with more free inodes than average: each run's files
# land apart from the last run's.  Elsewhere chattr fails, harmlessly.
bench_work() {
	top=${MLK_BENCH_CACHE:-${TMPDIR:-/tmp}/mlk-bench}/work
	mkdir -p "$top" || exit 2
	chattr +T "$top" 2>/dev/null
	work=$(mktemp -d "$top/$1.XXXXXX") || exit 2
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
	head -c 32 /dev/urandom >"$work/key" && chmod 600 "$work/key"
}

now_ns() { date +%s%N; }

timed() {
	name=$1
	shift
	t0=$(now_ns)
	/usr/bin/time -f %M -o "$work/$name.rss" "$@" >"$work/$name.out" \
		2>"$work/$name.err"
	rc=$?
	t1=$(now_ns)
	ns=$((t1 - t0))
	rss=$(tail -n 1 "$work/$name.rss")
	case $rss in ''|*[!0-9]*) rss=0 ;; esac
	if [ "$rc" -gt "${timed_ok:-0}" ]; then
		echo "$bench_name: $name exited $rc" >&2
		tail -n 5 "$work/$name.err" >&2
		fail=1
	fi
}

bench_dicom_args() {
	bench_name=$1
	rounds=$2
	shift 2
	bench_usage() {
		echo "usage: sh scripts/bench/$bench_name [--files N] [--seed S] [--bin DIR] [--rounds R]"
	}
	bench_parse "$@"
	case $files in ''|*[!0-9]*|0) echo "$bench_name: --files must be a positive number" >&2; exit 2 ;; esac
	case $rounds in ''|*[!0-9]*|0) echo "$bench_name: --rounds must be a positive number" >&2; exit 2 ;; esac
}

bench_dicom_input() {
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
			echo "$bench_name: gen-dicom failed" >&2
			exit 2
		fi
		: >"$input.done"
	fi
	bytes=$(cat "$input"/*.dcm | wc -c | tr -d ' ')
}

# bench_round I PEER PEER_NS PEER_FILES MLK MLK_NS MLK_FILES: one round's
# line (times, files and files/s of both, the ratio of mlk's files/s to
# the peer's); appends the files/s and the ratio to peer_all, mlk_all
# and ratios, for median.
bench_round() {
	line=$(awk -v i="$1" -v p="$2" -v pns="$3" -v pn="$4" -v m="$5" \
		-v mns="$6" -v mn="$7" 'BEGIN {
		pfs = pn / (pns / 1e9); mfs = mn / (mns / 1e9)
		r = pfs > 0 ? mfs / pfs : 0
		printf "round %d: %s %.2f s, %d files, %.0f files/s; %s %.2f s, %d files, %.0f files/s; ratio %.2fx|%.1f %.1f %.3f\n",
			i, p, pns / 1e9, pn, pfs, m, mns / 1e9, mn, mfs, r, pfs, mfs, r }')
	echo "${line%|*}"
	set -- ${line#*|}
	peer_all="$peer_all $1"
	mlk_all="$mlk_all $2"
	ratios="$ratios $3"
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

