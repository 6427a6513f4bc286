# tests/helper.bash — loaded by every .bats file with `load helper`.
#
# Gives each test:
#   - bats-support, bats-assert and bats-file (assert_success, assert_output,
#     assert_file_exists, ...);
#   - MLK_ROOT (the repository), DATA (the shared sample data, read-only:
#     never write under it), MLK_BIN first on PATH;
#   - a working directory of its own: the test starts in $BATS_TEST_TMPDIR,
#     and every file it makes belongs there;
#   - TZ=UTC and LC_ALL=C.UTF-8, and no MLK_LAKE from the caller's
#     environment, so results do not depend on who runs the suite.
#
# Helpers:
#   mklake [DIR]        mlk-catalog init DIR (default $BATS_TEST_TMPDIR/lake),
#                       asserting success; exports MLK_LAKE=DIR
#   gen_ehr ARGS...     scripts/gen-ehr (synthetic EHR records on stdout)
#   duckdb_query SQL... run SQL in an in-memory DuckDB; rows as NDJSON
#   jqc FILTER [FILE]   jq -c
#   count_gz FILE...    number of lines in the concatenated decompressed files

# run --separate-stderr and run -N need it (Debian 12 ships bats 1.8.2)
bats_require_minimum_version 1.5.0

bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

MLK_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
# CI runs in a fresh clone with shared/ beside it, as in the work tree.
DATA=${MLK_DATA:-$MLK_ROOT/../shared/data}
if [[ -d $DATA ]]; then
	DATA=$(cd "$DATA" && pwd)
fi
MLK_BIN=${MLK_BIN:-$MLK_ROOT/bin}
PATH=$MLK_BIN:$PATH
TZ=UTC
LC_ALL=C.UTF-8
export MLK_ROOT DATA MLK_BIN PATH TZ LC_ALL
unset MLK_LAKE

# Per-test files only: start every test in its own temporary directory.
# (BATS_TEST_TMPDIR is unset while setup_file runs.)
if [[ -n ${BATS_TEST_TMPDIR:-} ]]; then
	cd "$BATS_TEST_TMPDIR" || exit 1
fi

mklake() {
	local dir=${1:-$BATS_TEST_TMPDIR/lake}
	run mlk-catalog init "$dir"
	assert_success
	assert_file_exists "$dir/mlk.yaml"
	MLK_LAKE=$dir
	export MLK_LAKE
}

gen_ehr() {
	python3 "$MLK_ROOT/scripts/gen-ehr" "$@"
}

duckdb_query() {
	node "$MLK_ROOT/scripts/duckdb/query.mjs" "$@"
}

jqc() {
	jq -c "$@"
}

count_gz() {
	gzip -dc -- "$@" | wc -l | tr -d ' '
}
