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

@test "ingest | deid | sample | snapshot, and trace from the training snapshot back to the source files" {
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" \
		"$DATA/fhir/Encounter.ndjson" "$DATA/fhir/Condition.ndjson" > raw.ndjson
	run bash -c "mlk-deid --project readmit raw.ndjson 2>/dev/null |
		mlk-sample --split train=0.8,test=0.2 --seed 7 |
		jq -c 'select(._mlk.split == \"train\")' |
		mlk-snapshot create --quiet --note 'train v1' training/readmit"
	assert_success
	id=$(jq -r .snapshot <<< "$output")
	[[ $id =~ ^s[0-9a-f]{24}$ ]]
	# every record in it is de-identified: no name or full date of the input
	mlk-snapshot cat "$id" > snap.ndjson
	[ "$(jq -r '._mlk.deid.profile' snap.ndjson | sort -u)" = safe-harbor ]
	jq -r '.name[]?.family' "$DATA/fhir/Patient.ndjson" | sort -u > names
	run grep -c -F -w -f names snap.ndjson
	assert_output 0
	# the same pipeline again gives the same snapshot id
	run bash -c "mlk-deid --project readmit < raw.ndjson 2>/dev/null |
		mlk-sample --split train=0.8,test=0.2 --seed 7 |
		jq -c 'select(._mlk.split == \"train\")' |
		mlk-snapshot create --quiet --note 'rebuild' training/readmit | jq -r .snapshot"
	assert_output "$id"
	# and the trace reaches the exact source files, by hash
	run mlk-audit trace "$id"
	assert_success
	for f in Patient Encounter Condition; do
		sha=$(sha256sum "$DATA/fhir/$f.ndjson" | cut -c1-64)
		assert_output --partial "\"from\":\"source:$sha\""
	done
}
