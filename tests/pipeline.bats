#!/usr/bin/env bats
# Pipelines: mlk tools with each other and with the tools people already
# use (jq, DuckDB).  More stages join as the tools land.

load helper

setup() {
	mklake
}

@test "ingest | jq: a cohort query over the stdout of an ingest" {
	run bash -c "mlk-ingest --quiet --dataset ehr/fhir '$DATA/fhir' |
		jq -r 'select(._mlk.type == \"fhir:Condition\" and (._mlk.src.path | endswith(\"/Condition.ndjson\"))) | .subject.reference' |
		sort -u | wc -l"
	assert_success
	want=$(jq -r '.subject.reference' "$DATA/fhir/Condition.ndjson" | sort -u | wc -l)
	[ "$output" -eq "$want" ]
}

@test "references resolve inside the landed records" {
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir" > all.ndjson
	# Every Encounter.subject points at a landed Patient.
	run bash -c "jq -r 'select(._mlk.type == \"fhir:Patient\") | \"Patient/\" + .id' all.ndjson | sort -u > patients
		jq -r 'select(._mlk.type == \"fhir:Encounter\" and (._mlk.src.path | endswith(\"Encounter.ndjson\"))) | .subject.reference' all.ndjson |
		sort -u | comm -23 - patients | wc -l"
	assert_output 0
}

@test "sharded ingest equals one ingest (GNU split, then each shard)" {
	gen_ehr --format fhir --records 4000 --seed 11 > all.ndjson
	split -n l/4 -d all.ndjson shard.
	mlk-ingest --quiet --dataset ehr/one all.ndjson | jq -c 'del(._mlk)' > one.ndjson
	for s in shard.0*; do
		mlk-ingest --quiet --dataset ehr/sharded "$s"
	done | jq -c 'del(._mlk)' > sharded.ndjson
	cmp one.ndjson sharded.ndjson
	[ "$(grep -c . one.ndjson)" -eq 4000 ]
}

@test "DuckDB counts the raw zone the way mlk-ingest reported it" {
	mlk-ingest --quiet --dataset ehr/synthea "$DATA/synthea-csv" > out.ndjson
	run duckdb_query "SELECT \"table\", count(*) AS n
		FROM read_ndjson_objects('$MLK_LAKE/raw/ehr/synthea/**/*.gz', hive_partitioning=true)
		GROUP BY ALL ORDER BY ALL"
	assert_success
	[ "$(jq -r '"\(.table) \(.n)"' <<<"$output")" = \
	  "$(jq -r '._mlk.type | sub("csv:"; "")' out.ndjson | sort | uniq -c | awk '{print $2, $1}')" ]
}

@test "records landed from CSV are valid NDJSON that jq and DuckDB agree on" {
	gen_ehr --format csv --records 2000 --seed 5 > visits.csv
	mlk-ingest --quiet --dataset ehr/visits visits.csv > out.ndjson
	[ "$(jq -s length out.ndjson)" -eq 2000 ]
	run duckdb_query "SELECT count(*) AS n, count(DISTINCT json->>'encounter_id') AS e
		FROM read_ndjson_objects('$MLK_LAKE/raw/ehr/visits/**/*.gz', hive_partitioning=true)"
	assert_output "{\"n\":2000,\"e\":$(jq -r .encounter_id out.ndjson | sort -u | wc -l)}"
}
