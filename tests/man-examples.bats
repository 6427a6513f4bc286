#!/usr/bin/env bats
# Every man-page EXAMPLE runs as a test (STYLE.md).
#
# The convention, for every page in man/:
#
#   - In the EXAMPLES section, every `.Bd -literal -offset indent` ... `.Ed`
#     block is one example, a bash script.  Roff escapes in it are undone
#     (\e is a backslash; \- \& \(aq \(dq \(ga \| as roff means them); a roff
#     comment line inside the block is left out; any other line starting
#     with a dot is an error.  Displays that are not examples (output shown
#     to the reader, say) use another offset, such as `-offset 2n`, or sit
#     outside EXAMPLES.
#
#   - Each example runs with `bash -e` in a fresh directory of its own, in
#     which `mlk-catalog init lake` has been run, with MLK_LAKE=$PWD/lake and
#     DATA=<the shared sample-data folder> set (a page's text says so), the
#     freshly built bin/ first on PATH, TZ=UTC and LC_ALL=C.UTF-8.
#
#   - The example must exit 0, unless a roff comment `.\" exit: N` comes
#     right before the block; then it must exit N.  A comment
#     `.\" output: TEXT` right before the block (there may be several) says
#     that stdout and stderr together must contain TEXT.  These comments
#     must come directly before the .Bd line (other such comments may sit
#     between); one that is followed by anything else is an error.
#
# There is one test per page; a failing test names each failing example by
# page, line, exit status and output.  Pages added later are covered by the
# last test until they get a test of their own.

load helper

# extract PAGE DIR: write each example of PAGE as DIR/NNN.sh with DIR/NNN.meta
# ("line L", "exit N", "output TEXT" lines); errors as DIR/errors.
extract() {
	mkdir -p "$2"
	awk -v dir="$2" '
	function unescape(s) {
		gsub(/\\e/, "\001", s)
		gsub(/\\-/, "-", s)
		gsub(/\\&/, "", s)
		gsub(/\\\(aq/, "\047", s)
		gsub(/\\\(dq/, "\"", s)
		gsub(/\\\(ga/, "`", s)
		gsub(/\\\|/, "", s)
		gsub(/\001/, "\\", s)
		return s
	}
	function err(msg) {
		printf "%s:%d: %s\n", FILENAME, FNR, msg >> (dir "/errors")
	}
	function dangling() {
		if (npend)
			err("exit/output comment not followed by an example block")
		npend = 0; want_exit = 0
	}
	/^\.Sh / {
		if (inblock)
			err("section starts inside an example block")
		dangling()
		inex = ($0 == ".Sh EXAMPLES")
		next
	}
	!inex { next }
	inblock && /^\.Ed([ \t]|$)/ {
		inblock = 0
		close(sh)
		next
	}
	inblock {
		if ($0 ~ /^\.\\"/)
			next
		if ($0 ~ /^[.\047]/) {
			err("macro line inside an example block")
			next
		}
		print unescape($0) > sh
		next
	}
	/^\.\\" exit: [0-9]+[ \t]*$/ {
		want_exit = $3 + 0
		npend++
		next
	}
	/^\.\\" output: / {
		t = $0
		sub(/^\.\\" output: /, "", t)
		pend[++npend] = "output " t
		next
	}
	/^\.Bd -literal -offset indent([ \t]|$)/ {
		n++
		base = sprintf("%s/%03d", dir, n)
		sh = base ".sh"
		meta = base ".meta"
		printf "line %d\nexit %d\n", FNR, want_exit > meta
		for (i = 1; i <= npend; i++)
			if (i in pend)
				print pend[i] > meta
		close(meta)
		split("", pend)
		npend = 0; want_exit = 0
		inblock = 1
		printf "" > sh
		next
	}
	{ dangling() }
	END {
		if (inblock)
			err("example block not closed")
	}' "$1"
}

# run_examples PAGE: run every example of man/PAGE as described above.
run_examples() {
	local page=$MLK_ROOT/man/$1 ex=$BATS_TEST_TMPDIR/examples
	local meta sh base line want got text dir out failed=0 n=0
	[ -f "$page" ] || fail "no page $page"
	extract "$page" "$ex"
	if [ -s "$ex/errors" ]; then
		cat "$ex/errors"
		fail "$1: malformed EXAMPLES section"
	fi
	for meta in "$ex"/*.meta; do
		[ -e "$meta" ] || continue
		n=$((n + 1))
		base=${meta%.meta}
		sh=$base.sh
		line=$(sed -n 's/^line //p' "$meta")
		want=$(sed -n 's/^exit //p' "$meta")
		dir=$BATS_TEST_TMPDIR/run-$n
		out=$BATS_TEST_TMPDIR/out-$n
		mkdir "$dir"
		if ! (cd "$dir" && mlk-catalog init lake >/dev/null); then
			fail "mlk-catalog init failed"
		fi
		got=0
		(
			cd "$dir" &&
			env -u MLK_TEST_USER -u MLK_TEST_GROUPS -u MLK_TEST_NOW \
				MLK_LAKE="$dir/lake" DATA="$DATA" bash -e "$sh"
		) >"$out" 2>&1 </dev/null || got=$?
		local bad=
		if [ "$got" -ne "$want" ]; then
			bad="exit status $got, want $want"
		fi
		while IFS= read -r text; do
			if ! grep -qF -- "$text" "$out"; then
				bad="${bad:+$bad; }output lacks '$text'"
			fi
		done < <(sed -n 's/^output //p' "$meta")
		if [ -n "$bad" ]; then
			failed=$((failed + 1))
			echo "# man/$1:$line: example $n: $bad"
			sed 's/^/#   | /' "$sh"
			echo "#   output:"
			tail -n 20 "$out" | sed 's/^/#   > /'
		fi
	done
	if [ "$n" -eq 0 ]; then
		fail "man/$1: no examples in its EXAMPLES section"
	fi
	if [ "$failed" -ne 0 ]; then
		fail "man/$1: $failed of $n examples failed"
	fi
}

@test "mlk(7) examples" {
	run_examples mlk.7
}

@test "mlk-ingest(1) examples" {
	run_examples mlk-ingest.1
}

@test "mlk-catalog(1) examples" {
	run_examples mlk-catalog.1
}

@test "mlk-layout(5) examples" {
	run_examples mlk-layout.5
}

@test "mlk-manifest(5) examples" {
	run_examples mlk-manifest.5
}

@test "mlk-record(5) examples" {
	run_examples mlk-record.5
}

@test "mlk-audit(5) examples" {
	run_examples mlk-audit.5
}

@test "mlk-policy(5) examples" {
	run_examples mlk-policy.5
}

@test "examples of any other man page" {
	local p name known=" mlk.7 mlk-ingest.1 mlk-catalog.1 mlk-layout.5 mlk-manifest.5 mlk-record.5 mlk-audit.5 mlk-policy.5 "
	local others=0
	for p in "$MLK_ROOT"/man/*.[157]; do
		[ -e "$p" ] || continue
		name=${p##*/}
		[[ $known == *" $name "* ]] && continue
		grep -q '^\.Sh EXAMPLES' "$p" || continue
		others=$((others + 1))
		rm -rf "$BATS_TEST_TMPDIR"/examples "$BATS_TEST_TMPDIR"/run-* \
			"$BATS_TEST_TMPDIR"/out-*
		run_examples "$name"
	done
	if [ "$others" -eq 0 ]; then
		skip "no other page has EXAMPLES"
	fi
}
