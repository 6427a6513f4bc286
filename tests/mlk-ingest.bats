#!/usr/bin/env bats
# mlk-ingest: EHR sources into the raw zone, records on stdout.

load helper

setup() {
	mklake
}

# Number of FHIR resources in the sample data: NDJSON lines plus the
# resources inside the two Bundles.
fhir_expected() {
	local n b
	n=$(cat "$DATA"/fhir/*.ndjson "$DATA"/fhir/bundles/*.ndjson | grep -c .)
	b=$(jq '[.entry[] | select(.resource)] | length' "$DATA"/fhir/bundles/*.json |
		paste -sd+ | bc)
	echo $((n + b))
}

manifests() {
	find "$MLK_LAKE/raw" -name _manifest.json
}

@test "--help prints usage on stdout and exits 0" {
	run --separate-stderr mlk-ingest --help
	assert_success
	assert_line --index 0 --partial 'usage: mlk-ingest [--lake DIR]'
	[ -z "$stderr" ]
}

@test "--version prints the version" {
	run mlk-ingest --version
	assert_success
	assert_output --regexp '^mlk-ingest [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2 with a message on stderr" {
	run --separate-stderr mlk-ingest --bogus x
	assert_failure 2
	[ -z "$output" ]
	run --separate-stderr mlk-ingest
	assert_failure 2
	[[ $stderr == *"no input given"* ]]
	run --separate-stderr mlk-ingest --dataset 'Bad/../x' "$DATA/fhir/Patient.ndjson"
	assert_failure 2
	[[ $stderr == *"invalid dataset name"* ]]
	run --separate-stderr mlk-ingest --format xml "$DATA/fhir/Patient.ndjson"
	assert_failure 2
	[[ $stderr == *"unknown format 'xml'"* ]]
}

@test "without a lake it says how to make one and exits 2" {
	unset MLK_LAKE
	mkdir elsewhere && cd elsewhere
	run --separate-stderr mlk-ingest "$DATA/fhir/Patient.ndjson"
	assert_failure 2
	[[ $stderr == *"no lake found"* ]]
}

@test "finds the lake from a subdirectory like git" {
	unset MLK_LAKE
	mkdir -p "$BATS_TEST_TMPDIR/lake/work/deep" && cd "$BATS_TEST_TMPDIR/lake/work/deep"
	run --separate-stderr mlk-ingest --quiet "$DATA/fhir/Patient.ndjson"
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 13 ]
}

@test "FHIR Bulk NDJSON and Bundles: every resource once, with its envelope" {
	run --separate-stderr mlk-ingest --dataset ehr/fhir "$DATA/fhir"
	assert_success
	echo "$output" > out.ndjson
	[ "$(grep -c . out.ndjson)" -eq "$(fhir_expected)" ]
	# Every line is JSON with the envelope of mlk-record(5).
	run jq -e -s 'all(.[]; ._mlk.v == 1 and ._mlk.kind == "ehr"
		and (._mlk.type | startswith("fhir:"))
		and ._mlk.dataset == "ehr/fhir" and ._mlk.zone == "raw"
		and (._mlk.src.sha256 | test("^[0-9a-f]{64}$"))
		and (._mlk.src.line >= 1)
		and (._mlk.batch | test("^b[0-9a-f]{24}$"))
		and (.resourceType as $rt | ._mlk.partition | startswith("resourceType=" + $rt + "/year=")))' out.ndjson
	assert_success
	# The data stays at top level, byte for byte the source's resource.
	run jq -c 'select(._mlk.type == "fhir:Patient") | del(._mlk)' out.ndjson
	assert_success
	[ "$(echo "$output" | head -13)" = "$(jq -c . "$DATA/fhir/Patient.ndjson")" ]
	[[ $stderr == *"batch b"*"records from 15 sources"* ]]
}

@test "FHIR partitions come from the clinical date of each resource type" {
	mlk-ingest --dataset ehr/fhir "$DATA/fhir/Encounter.ndjson" \
		"$DATA/fhir/Condition.ndjson" "$DATA/fhir/Patient.ndjson" > out.ndjson
	run jq -r 'select(._mlk.type == "fhir:Encounter") |
		[._mlk.partition, "resourceType=Encounter/year=\(.period.start[0:4])/month=\(.period.start[5:7])"] |
		select(.[0] != .[1]) | .[0]' out.ndjson
	assert_success
	assert_output ''
	run jq -r 'select(._mlk.type == "fhir:Condition") |
		(.onsetDateTime // .recordedDate) as $d |
		select(._mlk.partition != "resourceType=Condition/year=\($d[0:4])/month=\($d[5:7])")' out.ndjson
	assert_output ''
	# Patients have no clinical date: the Hive default partition.
	run jq -r 'select(._mlk.type == "fhir:Patient") | ._mlk.partition' out.ndjson
	assert_line 'resourceType=Patient/year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__'
}

@test "the raw zone holds read-only gzip files that match the manifest" {
	mlk-ingest --dataset ehr/fhir "$DATA/fhir" > out.ndjson
	m=$(manifests)
	[ "$(echo "$m" | wc -l)" -eq 1 ]
	dir=$(dirname "$m")
	[ "$(jq -s 'length' out.ndjson)" -eq "$(head -1 "$m" | jq .records)" ]
	# One pass over the manifest's files: hash, size, records, mode.
	run python3 - "$m" <<-'EOF'
	import gzip, hashlib, json, os, sys
	m = sys.argv[1]
	d = os.path.dirname(m)
	lines = [json.loads(l) for l in open(m)]
	files = [e for e in lines[1:] if e["entry"] == "file"]
	assert len(files) == lines[0]["files"], "file count"
	for f in files:
	    p = os.path.join(d, f["path"])
	    data = open(p, "rb").read()
	    assert hashlib.sha256(data).hexdigest() == f["sha256"], p
	    assert len(data) == f["size"], p
	    raw = gzip.decompress(data)
	    assert raw.count(b"\n") == f["records"], p
	    assert len(raw) == f["bytes"], p
	    assert os.stat(p).st_mode & 0o777 == 0o444, p
	    assert f["path"].startswith(f["partition"] + "/"), p
	print("checked", len(files))
	EOF
	assert_success
	assert_output --regexp '^checked [0-9]{3,}$'
	# The zone holds exactly the records that went to stdout, less the
	# envelope fields its path already says (as Hive leaves out
	# partition values).
	[ "$(find "$dir" -name '*.gz' -exec gzip -dc {} + | jq -c . | sort | sha256sum)" = \
	  "$(jq -c 'del(._mlk.dataset, ._mlk.batch, ._mlk.zone, ._mlk.partition)' out.ndjson | sort | sha256sum)" ]
	# The sources are listed with their hashes, and stored as objects.
	while read -r s; do
		sha=$(jq -r .sha256 <<<"$s")
		assert_file_exists "$MLK_LAKE/objects/sha256/${sha:0:2}/$sha"
		cmp "$MLK_LAKE/objects/sha256/${sha:0:2}/$sha" "$(jq -r .path <<<"$s")"
	done < <(jq -c 'select(.entry == "source")' "$m")
}

@test "ingesting the same bytes again changes nothing and says so" {
	mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" > first.ndjson
	before=$(find "$MLK_LAKE/raw" "$MLK_LAKE/objects" | sort | sha256sum)
	run --separate-stderr mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson"
	assert_success
	assert_output ''
	[[ $stderr == *"already ingested in ehr/fhir"* ]]
	[ "$(find "$MLK_LAKE/raw" "$MLK_LAKE/objects" | sort | sha256sum)" = "$before" ]
	# A copy under another name is the same bytes too.
	cp "$DATA/fhir/Patient.ndjson" renamed.ndjson
	run --separate-stderr mlk-ingest --dataset ehr/fhir renamed.ndjson
	assert_success
	assert_output ''
	# Only new sources make a new batch.
	run --separate-stderr mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" "$DATA/fhir/Device.ndjson"
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 16 ]
	[ "$(manifests | wc -l)" -eq 2 ]
}

@test "the same input gives byte-identical records in two fresh lakes" {
	mlk-ingest --dataset ehr/fhir "$DATA/fhir" > a.ndjson
	mklake "$BATS_TEST_TMPDIR/lake2"
	mlk-ingest --dataset ehr/fhir "$DATA/fhir" > b.ndjson
	cmp a.ndjson b.ndjson
	[ -s a.ndjson ]
}

@test "Synthea CSV: one record per row, partitioned by table and date" {
	run --separate-stderr mlk-ingest --dataset ehr/synthea "$DATA/synthea-csv"
	assert_success
	echo "$output" > out.ndjson
	run jq -r '._mlk.type' out.ndjson
	for t in patients:27 encounters:604 conditions:438 observations:990 \
		medications:663 allergies:40 immunizations:29 procedures:249 \
		organizations:63 providers:166; do
		[ "$(jq -r '._mlk.type' out.ndjson | grep -cx "csv:${t%%:*}")" -eq "${t#*:}" ]
	done
	# Columns become fields; the date column START drives the partition.
	run jq -r 'select(._mlk.type == "csv:encounters") |
		select(._mlk.partition != "table=encounters/year=\(.START[0:4])/month=\(.START[5:7])") | .Id' out.ndjson
	assert_output ''
	# Birth dates never partition: patients go to the default partition.
	run jq -r 'select(._mlk.type == "csv:patients") | ._mlk.partition' out.ndjson
	assert_line 'table=patients/year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__'
	# An unquoted empty field is null.
	run jq -r 'select(._mlk.type == "csv:patients") | .DEATHDATE' out.ndjson
	assert_line null
	# The first data row is line 2 of its file.
	run jq -r 'select(._mlk.type == "csv:patients") | ._mlk.src.line' out.ndjson
	assert_line --index 0 2
}

@test "CSV edge cases: BOM, CRLF, quotes, embedded newlines, duplicate headers" {
	printf '\xef\xbb\xbfid,name,name,visit_date\r\n1,"Doe, ""J""",x,2021-03-04\r\n2,"two\r\nlines","",2020-12-31\r\n' > t.csv
	run --separate-stderr mlk-ingest --dataset ehr/t t.csv
	assert_success
	assert_line --index 0 --partial '{"id":"1","name":"Doe, \"J\"","name_3":"x","visit_date":"2021-03-04","_mlk":'
	assert_line --index 1 --partial '{"id":"2","name":"two\r\nlines","name_3":"","visit_date":"2020-12-31","_mlk":'
	run jq -r '._mlk.partition + " " + (._mlk.src.line|tostring)' <<<"$output"
	assert_line --index 0 'table=t/year=2021/month=03 2'
	assert_line --index 1 'table=t/year=2020/month=12 3'
}

@test "stdin and gzip-compressed input are read like files" {
	run --separate-stderr bash -c "mlk-ingest --dataset ehr/s - < '$DATA/fhir/Patient.ndjson'"
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 13 ]
	run jq -r '._mlk.src.path' <<<"$output"
	assert_line --index 0 -- -
	gzip -c "$DATA/fhir/Device.ndjson" > device.ndjson.gz
	run --separate-stderr mlk-ingest --dataset ehr/s device.ndjson.gz
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 16 ]
	[ "$(jq -c 'del(._mlk)' <<<"$output")" = "$(jq -c . "$DATA/fhir/Device.ndjson")" ]
}

@test "a Bundle is split into its entries' resources" {
	b=$(ls "$DATA"/fhir/bundles/*.json | head -1)
	run --separate-stderr mlk-ingest --dataset ehr/b "$b"
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq "$(jq '[.entry[] | select(.resource)] | length' "$b")" ]
	run jq -s -c '[.[] | ._mlk.src.entry] | .[0:3]' <<<"$output"
	assert_output '[0,1,2]'
	run --separate-stderr mlk-ingest --dataset ehr/b2 "$b"
	# The resources are the Bundle's, compacted.
	[ "$(jq -c 'del(._mlk)' <<<"$output" | head -1)" = "$(jq -c '.entry[0].resource' "$b")" ]
}

@test "bad input is quarantined with a reason; the good records around it land" {
	printf '%s\n' '{"resourceType":"Patient","id":"good1"}' \
		'{"resourceType":"Patient","id":"SECRET-TRUNC"' \
		'{"resourceType":"Patient","id":"good2","n":[1 2]}' \
		'{"resourceType":"Patient","id":"good3"}' > p.ndjson
	printf '{"resourceType":"Patient","name":"SECRET-\xff-NAME"}\n' >> p.ndjson
	printf 'a,b,c\n1,2,3\n4,SECRET-ROW\n5,6,7\n' > rows.csv
	run --separate-stderr mlk-ingest --dataset ehr/q p.ndjson rows.csv /no/such/file
	assert_failure 1
	# Good records land and go to stdout.
	[ "$(jq -r '.id // .a' <<<"$output" | paste -sd' ')" = "good1 good3 1 5" ]
	# stderr names file and line, never the content.
	[[ $stderr == *"'p.ndjson':2: invalid JSON"*"quarantined"* ]]
	[[ $stderr == *"'p.ndjson':3: invalid JSON"* ]]
	[[ $stderr == *"'p.ndjson':5: invalid UTF-8"* ]]
	[[ $stderr == *"'rows.csv':3: CSV row has 2 fields, the header 3"* ]]
	[[ $stderr == *"'/no/such/file': cannot open"* ]]
	[[ $stderr != *SECRET* ]]
	# Each bad piece has a reason record and its bytes in quarantine/.
	q=$(echo "$MLK_LAKE"/quarantine/ehr/q/b*)
	[ "$(ls "$q"/*.json | wc -l)" -eq 5 ]
	run jq -r 'select(.src.line == 2 and (.src.path | endswith("p.ndjson"))) | .reason' "$q"/*.json
	assert_output 'invalid JSON: record is truncated'
	piece=$(jq -r 'select(.src.line == 2 and (.src.path | endswith("p.ndjson"))) | .piece' "$q"/*.json)
	[ "$(cat "$q/$piece")" = '{"resourceType":"Patient","id":"SECRET-TRUNC"' ]
	run jq -r 'select(.src.path == "/no/such/file") | .reason' "$q"/*.json
	assert_output --partial 'cannot open'
	# Reason records never hold the content.
	run grep -l SECRET "$q"/*.json
	assert_failure
	# The manifest counts what was rejected.
	m=$(manifests)
	[ "$(head -1 "$m" | jq .rejected)" -eq 5 ]
}

@test "a file in no EHR format is quarantined whole, its bytes kept" {
	printf 'just some text\nwithout commas\n' > notes.txt
	printf '[{"a":1}]\n' > array.json
	run --separate-stderr mlk-ingest --dataset ehr/x notes.txt array.json
	assert_failure 1
	[[ $stderr == *"'notes.txt': not a recognised EHR format"* ]]
	[[ $stderr == *"'array.json': a JSON array is not supported"* ]]
	obj=$(jq -r 'select(.src.path == "notes.txt") | .object' "$MLK_LAKE"/quarantine/ehr/x/*/*.json)
	sha=${obj#sha256:}
	cmp notes.txt "$MLK_LAKE/objects/sha256/${sha:0:2}/$sha"
	# --format overrides detection from content.
	printf 'one\ntwo\n' > single.txt
	run --separate-stderr mlk-ingest --dataset ehr/y --format csv single.txt
	assert_success
	assert_output --partial '{"one":"two","_mlk":'
}

@test "lines of 64 MiB and more are records like any other" {
	python3 -c "
import json
print(json.dumps({'resourceType':'Observation','id':'big','valueString':'x'*(65<<20)}))
print(json.dumps({'resourceType':'Observation','id':'small'}))" > big.ndjson
	run --separate-stderr bash -c 'mlk-ingest --dataset ehr/big big.ndjson | jq -r ".id + \" \" + (.valueString // \"\" | length | tostring)"'
	assert_success
	assert_output "big $((65 << 20))
small 0"
}

@test "an incoming _mlk is replaced, never duplicated" {
	echo '{"resourceType":"Patient","id":"p","_mlk":{"v":1,"zone":"curated","forged":true}}' > m.ndjson
	run --separate-stderr mlk-ingest --dataset ehr/m m.ndjson
	assert_success
	run jq -c '[._mlk.zone, ._mlk.forged, (keys | length)]' <<<"$output"
	assert_output '["raw",null,3]'
	[ "$(grep -o '"_mlk"' <<<"$(mlk-ingest --dataset ehr/m2 m.ndjson 2>/dev/null)" | wc -l)" -eq 1 ]
}

@test "whitespace in input records is compacted" {
	printf '{ "resourceType" : "Patient",\t"id" : "p" , "a" : [ 1 , { "b" : null } ] }\n' > ws.ndjson
	run --separate-stderr mlk-ingest --dataset ehr/w ws.ndjson
	assert_success
	assert_output --partial '{"resourceType":"Patient","id":"p","a":[1,{"b":null}],"_mlk":{'
}

@test "partition specs come from mlk.yaml per dataset, with transforms" {
	python3 - "$MLK_LAKE/mlk.yaml" <<-'EOF'
	import sys
	p = sys.argv[1]
	s = open(p).read().replace("datasets: {}", """datasets:
	  ehr/custom:
	    partitions:
	      fhir: [resourceType, "bucket[4](id)", y=year(date), "truncate[2](status)"]
	""")
	open(p, "w").write(s)
	EOF
	run --separate-stderr mlk-ingest --dataset ehr/custom "$DATA/fhir/Encounter.ndjson"
	assert_success
	run jq -r '._mlk.partition' <<<"$output"
	assert_line --regexp '^resourceType=Encounter/id_bucket=[0-3]/y=[0-9]{4}/status_trunc=fi$'
	refute_line --regexp 'month='
	[ -d "$(ls -d "$MLK_LAKE"/raw/ehr/custom/batch=*/resourceType=Encounter/id_bucket=0)" ]
}

@test "a bad partition spec in mlk.yaml is reported with file and line" {
	sed -i 's/^  fhir: .*/  fhir: [resourceType, frobnicate(date)]/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset ehr/z "$DATA/fhir/Patient.ndjson"
	assert_failure 2
	[[ $stderr == *"mlk.yaml':"*"bad partition field 'frobnicate(date)'"* ]]
}

@test "partition values are escaped into one safe path component" {
	printf '%s\n' '{"date":"2020-01-01","kind":"../../etc"}' \
		'{"date":"2020-02-01","kind":".hidden/x y%"}' \
		'{"date":"2020-03-01"}' > k.ndjson
	python3 - "$MLK_LAKE/mlk.yaml" <<-'EOF'
	import sys
	p = sys.argv[1]
	s = open(p).read().replace("  ndjson: [year(date), month(date)]", "  ndjson: [kind, year(date)]")
	open(p, "w").write(s)
	EOF
	run --separate-stderr mlk-ingest --dataset ehr/k k.ndjson
	assert_success
	run jq -r '._mlk.partition' <<<"$output"
	assert_line 'kind=%2E.%2F..%2Fetc/year=2020'
	assert_line 'kind=%2Ehidden%2Fx%20y%25/year=2020'
	assert_line 'kind=__HIVE_DEFAULT_PARTITION__/year=2020'
	[ -z "$(find "$MLK_LAKE" -path '*etc*' -not -path "$MLK_LAKE/raw/*")" ]
}

@test "policy: a user without a grant is denied with exit 3, and audited" {
	sed -i 's/^test_identity_override: false/test_identity_override: true/' "$MLK_LAKE/policy.yaml"
	MLK_TEST_USER=mallory run --separate-stderr mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson"
	assert_failure 3
	assert_output ''
	[[ $stderr == *"denied for user 'mallory' by policy rule 'default-deny'"* ]]
	[ -z "$(ls "$MLK_LAKE/objects/sha256")" ]
	run jq -c 'select(.actor.user == "mallory") | [.action, .decision, .rule, .status]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '["ingest","deny","default-deny",3]'
	# Granted through a role, the same user may ingest.
	sed -i 's/^  data-engineer: {users: \[\], groups: \[\]}/  data-engineer: {users: [mallory], groups: []}/' "$MLK_LAKE/policy.yaml"
	MLK_TEST_USER=mallory run --separate-stderr mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson"
	assert_success
	run jq -c 'select(.actor.user == "mallory" and .decision == "allow") | [.rule, .role]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '["grants[0]","data-engineer"]'
}

@test "policy: the test identity override is ignored unless policy.yaml enables it" {
	MLK_TEST_USER=mallory run --separate-stderr mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson"
	assert_success
	run jq -r 'select(.action == "ingest") | .actor.user' "$MLK_LAKE/audit/log.ndjson"
	assert_output "$(id -un)"
}

@test "every ingest is audited, hash-chained, without paths or content" {
	mlk-ingest --dataset ehr/fhir --purpose "load for study 7" "$DATA/fhir/Patient.ndjson" >/dev/null 2>&1
	mlk-ingest --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" >/dev/null 2>&1
	log=$MLK_LAKE/audit/log.ndjson
	[ "$(wc -l < "$log")" -eq 3 ]
	run jq -c '[.seq, .action, .decision, .purpose]' "$log"
	assert_line --index 0 '[1,"init","allow",null]'
	assert_line --index 1 '[2,"ingest","allow","load for study 7"]'
	sha=$(sha256sum < "$DATA/fhir/Patient.ndjson" | cut -d' ' -f1)
	run jq -r '.inputs[0].sha256' <(sed -n 2p "$log")
	assert_output "$sha"
	# prev is the SHA-256 of the previous line.
	prev=0000000000000000000000000000000000000000000000000000000000000000
	while IFS= read -r line; do
		[ "$(jq -r .prev <<<"$line")" = "$prev" ]
		prev=$(printf '%s' "$line" | sha256sum | cut -d' ' -f1)
	done < "$log"
	run grep -c -e Patient.ndjson -e fhir/ "$log"
	assert_output 0
}

@test "kill -9 at any moment leaves no partial batch; a rerun completes" {
	gen_ehr --format fhir --records 60000 --seed 3 > big.ndjson
	total=$(grep -c . big.ndjson)
	for delay in 0.05 0.2 0.4 0.7 1.0; do
		mlk-ingest --quiet --dataset ehr/crash big.ndjson > /dev/null 2>&1 &
		pid=$!
		sleep "$delay"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		# Whatever is visible under raw/ is whole: every batch folder
		# has its manifest and every data file is in it.
		for b in "$MLK_LAKE"/raw/ehr/crash/batch=*; do
			[ -e "$b" ] || continue
			assert_file_exists "$b/_manifest.json"
			[ "$(find "$b" -name '*.gz' | wc -l)" -eq "$(head -1 "$b/_manifest.json" | jq .files)" ]
		done
		n=$(find "$MLK_LAKE/raw/ehr/crash" -name '*.gz' -exec gzip -dc {} + 2>/dev/null | wc -l)
		[ "$n" -eq 0 ] || [ "$n" -eq "$total" ]
	done
	run --separate-stderr mlk-ingest --quiet --dataset ehr/crash big.ndjson
	assert_success
	[ "$(find "$MLK_LAKE/raw/ehr/crash" -name '*.gz' -exec gzip -dc {} + | wc -l)" -eq "$total" ]
	[ "$(ls -d "$MLK_LAKE"/raw/ehr/crash/batch=* | wc -l)" -eq 1 ]
	# Nothing is left in staging.
	[ -z "$(ls -A "$MLK_LAKE/staging")" ]
}

@test "concurrent ingests into one dataset take turns and lose nothing" {
	for i in 1 2 3 4; do
		gen_ehr --format fhir --records 3000 --seed "$i" > "in$i.ndjson"
	done
	for i in 1 2 3 4; do
		mlk-ingest --quiet --dataset ehr/c "in$i.ndjson" > "out$i.ndjson" &
	done
	wait
	[ "$(cat out*.ndjson | wc -l)" -eq "$(cat in*.ndjson | grep -c .)" ]
	[ "$(find "$MLK_LAKE/raw/ehr/c" -name '*.gz' -exec gzip -dc {} + | wc -l)" -eq "$(cat in*.ndjson | grep -c .)" ]
	[ "$(find "$MLK_LAKE/raw/ehr/c" -name _manifest.json | wc -l)" -eq 4 ]
	[ "$(wc -l < "$MLK_LAKE/audit/log.ndjson")" -eq 5 ]
}

@test "DuckDB reads the raw zone: rows and partition columns as reported" {
	mlk-ingest --dataset ehr/fhir "$DATA/fhir" > out.ndjson
	jq -r '._mlk.partition' out.ndjson | sort | uniq -c | awk '{print $2, $1}' > expected.txt
	# DuckDB reads Hive's default partition as NULL.
	D=__HIVE_DEFAULT_PARTITION__
	run duckdb_query "SELECT concat_ws('/', coalesce(resourceType, '$D'), coalesce(year, '$D'), coalesce(month, '$D')) AS p, count(*) AS n
		FROM read_ndjson_objects('$MLK_LAKE/raw/ehr/fhir/**/*.gz', hive_partitioning=true, hive_types_autocast=false)
		GROUP BY ALL ORDER BY ALL"
	assert_success
	jq -r '"resourceType=" + (.p | split("/") | .[0]) + "/year=" + (.p | split("/") | .[1]) + "/month=" + (.p | split("/") | .[2]) + " " + (.n | tostring)' <<<"$output" | sort > got.txt
	sort expected.txt > want.txt
	diff want.txt got.txt
	[ "$(wc -l < got.txt)" -gt 100 ]
	# The batch is a partition column too, and records keep their fields.
	run duckdb_query "SELECT count(DISTINCT batch) AS b, count(*) FILTER (WHERE json->>'resourceType' = resourceType) AS same
		FROM read_ndjson_objects('$MLK_LAKE/raw/ehr/fhir/**/*.gz', hive_partitioning=true)"
	assert_output "{\"b\":1,\"same\":$(grep -c . out.ndjson)}"
}

@test "unreadable inputs are recorded run after run, never colliding" {
	run --separate-stderr mlk-ingest --dataset ehr/u /no/such/a
	assert_failure 1
	run --separate-stderr mlk-ingest --dataset ehr/u /no/such/a
	assert_failure 1
	[[ $stderr == *"'/no/such/a': cannot open"* ]]
	[ "$(ls -d "$MLK_LAKE"/quarantine/ehr/u/b* | wc -l)" -eq 2 ]
	# No hash is claimed for bytes that were never read.
	run jq -c '.src' "$MLK_LAKE"/quarantine/ehr/u/b*/q000001.json
	assert_line '{"path":"/no/such/a"}'
	run jq -c 'select(.entry == "source") | [.sha256, .quarantined]' \
		"$MLK_LAKE"/raw/ehr/u/batch=*/_manifest.json
	assert_line --partial '[null,"cannot open:'
}

@test "a source quarantined whole can be retried with another --format" {
	printf 'single\nvalue\n' > one.txt
	run --separate-stderr mlk-ingest --dataset ehr/r one.txt
	assert_failure 1
	[ -z "$(ls "$MLK_LAKE/raw/ehr/r/_sources" 2>/dev/null)" ]
	run --separate-stderr mlk-ingest --dataset ehr/r --format csv one.txt
	assert_success
	assert_output --partial '{"single":"value","_mlk":'
}

@test "a truncated gzip source keeps the records before the damage" {
	gzip -c "$DATA/fhir/Encounter.ndjson" > full.gz
	head -c 60000 full.gz > cut.gz
	run --separate-stderr mlk-ingest --dataset ehr/z cut.gz
	assert_failure 1
	[[ $stderr == *"'cut.gz': corrupt or truncated gzip stream"* ]]
	n=$(echo "$output" | grep -c .)
	[ "$n" -gt 100 ]
	# Those records are a prefix of the source, in order.
	[ "$(jq -c 'del(._mlk)' <<<"$output")" = "$(jq -c . "$DATA/fhir/Encounter.ndjson" | head -n "$n")" ]
}

@test "a broken policy.yaml denies everything, says where, and is audited" {
	printf 'owner: [unclosed\n' > "$MLK_LAKE/policy.yaml"
	run --separate-stderr mlk-ingest --dataset ehr/p "$DATA/fhir/Patient.ndjson"
	assert_failure 3
	[[ $stderr == *"policy.yaml':"* ]]
	run jq -c 'select(.action == "ingest") | [.decision, .rule, .status]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '["deny","policy-error",3]'
}

@test "option errors name the option, prefixed mlk-ingest:" {
	run --separate-stderr mlk-ingest --frobnicate x
	assert_failure 2
	[[ ${stderr_lines[0]} == "mlk-ingest: unknown option '--frobnicate'" ]]
	run --separate-stderr mlk-ingest --dataset
	assert_failure 2
	[[ ${stderr_lines[0]} == "mlk-ingest: option '--dataset' needs a value" ]]
}

@test "an audit log that cannot be written stops the batch from landing" {
	printf '{"torn":' >> "$MLK_LAKE/audit/log.ndjson"
	run --separate-stderr mlk-ingest --dataset ehr/a "$DATA/fhir/Patient.ndjson"
	assert_failure 4
	[[ $stderr == *"torn line"* ]]
	[[ $stderr == *"nothing was landed"* ]]
	[ -z "$(ls -d "$MLK_LAKE"/raw/ehr/a/batch=* 2>/dev/null)" ]
}

@test "duplicate _mlk members in the input are all replaced" {
	echo '{"a":1,"_mlk":{"x":1},"_mlk":{"y":2}}' > d.ndjson
	run --separate-stderr mlk-ingest --dataset ehr/d d.ndjson
	assert_success
	[ "$(grep -o '"_mlk"' <<<"$output" | wc -l)" -eq 1 ]
}

@test "a source that changes while it is ingested lands nothing (exit 4)" {
	gen_ehr --format fhir --records 100000 --seed 9 > moving.ndjson
	# A writer keeps appending for a second, whatever the timing.
	( for i in $(seq 1 20); do
		sleep 0.05
		echo "{\"resourceType\":\"Patient\",\"id\":\"late$i\"}" >> moving.ndjson
	  done ) &
	run --separate-stderr mlk-ingest --quiet --dataset ehr/moving moving.ndjson
	wait
	assert_failure 4
	[[ $stderr == *"'moving.ndjson': cannot store its bytes: source changed while it was being ingested"* ]]
	[ -z "$(ls -d "$MLK_LAKE"/raw/ehr/moving/batch=* 2>/dev/null)" ]
	[ -z "$(find "$MLK_LAKE" -name '.tmp-*')" ]
	# Once it holds still, it lands.
	run --separate-stderr mlk-ingest --quiet --dataset ehr/moving moving.ndjson
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 100020 ]
}

@test "hundreds of small files in one run: one batch, every file an object" {
	mkdir in
	for i in $(seq 1 300); do
		echo "{\"resourceType\":\"Patient\",\"id\":\"p$i\"}" > "in/p$i.ndjson"
	done
	run --separate-stderr mlk-ingest --dataset ehr/many in
	assert_success
	[ "$(echo "$output" | grep -c .)" -eq 300 ]
	[ "$(find "$MLK_LAKE/objects" -type f | wc -l)" -eq 300 ]
	[ "$(ls -d "$MLK_LAKE"/raw/ehr/many/batch=* | wc -l)" -eq 1 ]
	[ "$(jq -s 'map(select(.entry == "source")) | length' "$MLK_LAKE"/raw/ehr/many/batch=*/_manifest.json)" -eq 300 ]
}

@test "an envelope hidden behind escapes in a member name is replaced too" {
	printf '%s\n' '{"resourceType":"Patient","_ml\u006b":{"zone":"forged"}}' > f.ndjson
	run --separate-stderr mlk-ingest --dataset ehr/f f.ndjson
	assert_success
	[ "$(jq -r '._mlk.zone' <<<"$output")" = raw ]
	[ "$(grep -c 'forged' <<<"$output")" -eq 0 ]
}

@test "progress goes to stderr only when it is a terminal" {
	gen_ehr --format fhir --records 70000 --seed 4 > p.ndjson
	# On a terminal (script(1) gives one): a running count.
	run script -qec "mlk-ingest --dataset ehr/tty p.ndjson > /dev/null" /dev/null
	assert_success
	assert_output --partial $'\rmlk-ingest: 65536 records'
	# To a file or pipe: no progress, only the summary.
	run --separate-stderr mlk-ingest --dataset ehr/file p.ndjson
	assert_success
	[[ $stderr != *"65536 records"* ]]
	[[ $stderr == "mlk-ingest: batch b"* ]]
}

# ---------------------------------------------------------------------------
# HL7 v2 messages (format hl7v2; common/hl7.c, the hl7v2 part of ehr.c)
# ---------------------------------------------------------------------------

# The record without its envelope, for comparing framings.
hl7_bare() {
	jq -c 'del(._mlk)' "$@"
}

@test "HL7 v2: every sample message lands once, typed and partitioned by MSH-9 and MSH-7" {
	grep -qxF '  hl7v2: [message_type, year(date), month(date)]' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset ehr/hl7 "$DATA/hl7v2"
	assert_success
	out=$output
	[ "$(grep -c . <<<"$out")" -eq 18 ]
	# One record per file, each from the line of its MSH.
	[ "$(jq -r '._mlk.src.path' <<<"$output" | sort -u | wc -l)" -eq 18 ]
	[ "$(jq -r '._mlk.src.line' <<<"$output" | sort -u)" = 1 ]
	[ "$(jq -r '._mlk.kind' <<<"$output" | sort -u)" = ehr ]
	run jq -r 'select(._mlk.src.path | endswith("rth_adt-a01-full.hl7")) |
		[._mlk.type, .message_type, .message_structure, .control_id, .timestamp,
		 .version, .sending_application, .sending_facility, ._mlk.partition] | join(" ")' <<<"$out"
	assert_output 'hl7v2:ADT^A01 ADT^A01 ADT_A01 CTRL0042 20260401083000 2.5.1 ADT_APP HOSP_A message_type=ADT%5EA01/year=2026/month=04'
	# MSH-1 and MSH-2 are the delimiters; summary fields come from MSH.
	run jq -c 'select(.control_id == "CTRL0042") | .MSH[0] | [.["1"], .["2"], .["9"]]' <<<"$out"
	assert_output '["|","^~\\&",{"1":"ADT","2":"A01","3":"ADT_A01"}]'
	# A message without MSH-7 goes to the default partition; MSH-9 without
	# a trigger event is the type alone.
	run jq -r 'select(.control_id | startswith("A0A173B7")) | [._mlk.type, (.timestamp // "none"), ._mlk.partition] | join(" ")' <<<"$out"
	assert_output 'hl7v2:ACK none message_type=ACK/year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__'
	# The lake holds the same records under the same partitions.
	b=$(echo "$MLK_LAKE"/raw/ehr/hl7/batch=*)
	[ "$(count_gz "$b"/message_type=*/*/*/*.gz)" -eq 18 ]
	[ "$(count_gz "$b"/message_type=ORU%5ER01/*/*/*.gz)" -eq 5 ]
	[ "$(zcat "$b"/message_type=ADT%5EA01/year=2026/month=04/*.gz | jq -r .control_id)" = CTRL0042 ]
	[ "$(head -1 "$b/_manifest.json" | jq -r .format)" = auto ]
	[ "$(jq -r 'select(.entry == "source") | .format' "$b/_manifest.json" | sort -u)" = hl7v2 ]
}

@test "HL7 v2: PID-5 family names equal what grep and cut read from the sources" {
	for f in "$DATA"/hl7v2/*.hl7; do
		want=$(grep '^PID' "$f" | cut -d'|' -f6 | cut -d^ -f1 | sed 's/\\T\\/\&/g' | tr -d '\r')
		got=$(mlk-ingest --quiet --dataset ehr/pid "$f" |
			jq -r '.PID[]?["5"] | if type == "object" then .["1"] elif type == "array" then .[0]["1"] // .[0] else . end')
		[ "$got" = "$want" ] || { echo "$f: '$got' != '$want'"; false; }
	done
	# The two CRLF sources keep no '\r' in any value.
	run mlk-ingest --quiet --dataset ehr/crlf "$DATA/hl7v2/rth_edge-crlf-line-endings.hl7" "$DATA/hl7v2/lfh_sample_win.hl7"
	assert_success
	[ "$(grep -c . <<<"$output")" -eq 2 ]
	[ "$(jq -r 'select(.PV1) | .PV1[0]["3"]["1"]' <<<"$output" | head -1)" = ICU ]
	run grep -c $'\r' < <(jq -r 'del(._mlk) | .. | strings' <<<"$output")
	assert_output 0
}

@test "HL7 v2: \\r, \\n, \\r\\n, mixed and MLLP framing give the same records" {
	src="$DATA/hl7v2/rth_oru-r01-lab.hl7"
	tr '\n' '\r' < "$src" > cr.hl7
	sed 's/$/\r/' "$src" > crlf.hl7
	{ printf '\013'; tr '\n' '\r' < "$src"; printf '\034\r'; } > mllp.hl7
	awk 'NR % 2 { printf "%s\r", $0; next } { print }' "$src" > mixed.hl7
	mlk-ingest --quiet --dataset ehr/lf "$src" > lf.ndjson
	[ "$(jq '.segments | length' lf.ndjson)" -eq 9 ]
	for v in cr crlf mllp mixed; do
		mlk-ingest --quiet --dataset "ehr/$v" "$v.hl7" > "$v.ndjson"
		cmp <(hl7_bare lf.ndjson) <(hl7_bare "$v.ndjson")
	done
	# Many messages in one source, mixed line ends: one record each, and
	# src.line is the line of each MSH.
	for f in "$DATA"/hl7v2/*.hl7; do cat "$f"; echo; done > all.hl7
	run --separate-stderr mlk-ingest --dataset ehr/all all.hl7
	assert_success
	[ "$(grep -c . <<<"$output")" -eq 18 ]
	[ "$(jq -r '._mlk.src.line' <<<"$output" | paste -sd' ')" = "$(grep -n '^MSH' all.hl7 | cut -d: -f1 | paste -sd' ')" ]
	# The same messages in MLLP frames, back to back.
	for f in "$DATA"/hl7v2/*.hl7; do printf '\013'; tr -d '\r' < "$f" | tr '\n' '\r'; printf '\034\r'; done > all-mllp.hl7
	mlk-ingest --quiet --dataset ehr/allm all-mllp.hl7 > allm.ndjson
	cmp <(hl7_bare <<<"$output") <(hl7_bare allm.ndjson)
}

@test "HL7 v2: escapes decoded, UTF-8 names kept, ISO-8859-1 read, Z-segments kept" {
	run mlk-ingest --quiet --dataset ehr/edge "$DATA/hl7v2/rth_edge-escaped-delimiters.hl7" \
		"$DATA/hl7v2/rth_edge-non-ascii.hl7" "$DATA/hl7v2/rth_edge-z-segments.hl7"
	assert_success
	run jq -r '.PID[0]["5"] | "\(.["1"])|\(.["2"])"' <<<"$output"
	assert_line --index 0 'DOE&SMITH|JOHN^JANE'
	assert_line --index 1 'MÜLLER|JOSÉ'
	assert_line --index 2 'TEST|PATIENT'
	mlk-ingest --quiet --dataset ehr/edge2 "$DATA/hl7v2/rth_edge-escaped-delimiters.hl7" "$DATA/hl7v2/rth_edge-z-segments.hl7" > e.ndjson
	[ "$(jq -r 'select(.OBX) | .OBX[0]["5"]' e.ndjson)" = 'Result contains pipe | and ampersand & and caret ^ and tilde ~ and backslash \ chars' ]
	[ "$(jq -c 'select(.ZVN) | [.segments, .ZVN[0]["3"], .ZPD[0]["5"]]' e.ndjson)" = '[["MSH","PID","ZVN","ZPD"],{"1":"VALUE1","2":"VALUE2","3":"VALUE3"},"EXTENDED_FIELD_4"]' ]
	# The same message in ISO-8859-1 reads the same.
	iconv -f UTF-8 -t ISO-8859-1 "$DATA/hl7v2/rth_edge-non-ascii.hl7" > latin1.hl7
	mlk-ingest --quiet --dataset ehr/latin1 latin1.hl7 > l1.ndjson
	cmp <(hl7_bare l1.ndjson) <(mlk-ingest --quiet --dataset ehr/utf8 "$DATA/hl7v2/rth_edge-non-ascii.hl7" | hl7_bare)
	# Other escapes: hex, line break, formatting dropped, unknown kept, HL7 null.
	printf 'MSH|^~\\&|A|B|||20240101||ORU^R01|E1|P|2.5\rNTE|1||\\X41\\b\\.br\\c\\H\\d\\N\\|\\Zq\\|""\r' > esc.hl7
	run mlk-ingest --quiet --dataset ehr/esc esc.hl7
	assert_success
	[ "$(jq -c '.NTE[0]' <<<"$output")" = '{"1":"1","3":"Ab\ncd","4":"\\Zq\\","5":"\"\""}' ]
}

@test "HL7 v2: the 60 KB ORU keeps its 130 segments in order" {
	src="$DATA/hl7v2/cdcti_001_TN_ORU_R01_LRI.hl7"
	run mlk-ingest --quiet --dataset ehr/big "$src"
	assert_success
	[ "$(grep -c . <<<"$output")" -eq 1 ]
	[ "$(jq -r '.segments[]' <<<"$output")" = "$(grep . "$src" | cut -c1-3)" ]
	[ "$(jq '.segments | length' <<<"$output")" -eq 130 ]
	[ "$(jq '.OBX | length' <<<"$output")" -eq "$(grep -c '^OBX' "$src")" ]
	[ "$(jq '.NTE | length' <<<"$output")" -eq "$(grep -c '^NTE' "$src")" ]
	# OBX-3 of the last OBX, as cut reads it.
	[ "$(jq -r '.OBX[-1]["3"]["1"]' <<<"$output")" = "$(grep '^OBX' "$src" | tail -1 | cut -d'|' -f4 | cut -d^ -f1)" ]
}

@test "HL7 v2: malformed messages are quarantined with a reason, the good ones land" {
	M="$DATA/malformed"
	good="$DATA/hl7v2/rth_siu-s12-schedule.hl7"
	# A good message, one with a bad segment id, another good one.
	{ cat "$DATA/hl7v2/rth_mdm-t02-document.hl7"; cat "$M/rth_invalid-segment-header-length.hl7"; cat "$good"; } > mixed.hl7
	run --separate-stderr mlk-ingest --dataset ehr/bad "$good" mixed.hl7 "$M"/*.hl7
	assert_failure 1
	[ "$(jq -r .control_id <<<"$output" | paste -sd' ')" = "SCH00001 DOC00001 SCH00001" ]
	[[ $stderr == *"'mixed.hl7':7: segment id on line 8 is not 3 uppercase letters or digits; quarantined"* ]]
	[[ $stderr == *"'$M/cdcti_empty.hl7': empty input; quarantined"* ]]
	[[ $stderr == *"'$M/cdcti_msh_present_but_missing_all_fields.hl7':1: MSH is too short to hold MSH-9 (message type); quarantined"* ]]
	[[ $stderr == *"'$M/cdcti_msh_present_but_missing_msh-9.hl7':1: MSH-9 (message type) is empty; quarantined"* ]]
	[[ $stderr == *"'$M/rth_invalid-missing-msh.hl7': HL7 v2 segments without an MSH segment; quarantined"* ]]
	[[ $stderr == *"'$M/rth_invalid-segment-header-length.hl7':1: segment id on line 2 is not 3 uppercase letters or digits; quarantined"* ]]
	# Never content on stderr or in reason records.
	[[ $stderr != *DOE* && $stderr != *JOHN* && $stderr != *PIDX* ]]
	q=$(echo "$MLK_LAKE"/quarantine/ehr/bad/b*)
	[ "$(ls "$q"/*.json | wc -l)" -eq 6 ]
	run grep -l -e DOE -e 12345 "$q"/*.json
	assert_failure
	# The bad message's bytes are kept exactly.
	piece=$(jq -r 'select(.src.path == "mixed.hl7") | .piece' "$q"/*.json)
	cmp "$q/$piece" "$M/rth_invalid-segment-header-length.hl7"
	[ "$(jq -r 'select(.src.path == "mixed.hl7") | .src.line' "$q"/*.json)" -eq 7 ]
	m=$(manifests)
	[ "$(head -1 "$m" | jq .rejected)" -eq 6 ]
	[ "$(count_gz "$(dirname "$m")"/*/*/*/*.gz)" -eq 3 ]
}

@test "HL7 v2: --format hl7v2, text outside messages, batch envelopes" {
	# Forced, text without MSH is one quarantined piece, not the source.
	run --separate-stderr mlk-ingest --dataset ehr/f --format hl7v2 "$DATA/malformed/rth_invalid-missing-msh.hl7"
	assert_failure 1
	[[ $stderr == *"rth_invalid-missing-msh.hl7':1: HL7 v2 text outside a message (no MSH segment before it); quarantined"* ]]
	# FHS/BHS/BTS/FTS are accepted and are not records; detection sees FHS.
	{
		printf 'FHS|^~\\&|F|||||20240101\rBHS|^~\\&|B\r'
		tr '\n' '\r' < "$DATA/hl7v2/rth_oru-r01-lab.hl7"
		tr '\n' '\r' < "$DATA/hl7v2/rth_siu-s12-schedule.hl7"
		printf 'BTS|2\rFTS|1\r'
	} > batch.hl7
	run --separate-stderr mlk-ingest --dataset ehr/batch batch.hl7
	assert_success
	[ "$(jq -r '._mlk.type' <<<"$output" | paste -sd' ')" = "hl7v2:ORU^R01 hl7v2:SIU^S12" ]
	[ "$(jq -r '._mlk.src.line' <<<"$output" | paste -sd' ')" = "3 12" ]
	[[ $(jq -r '.segments[]' <<<"$output" | sort -u | paste -sd' ') != *[BF]HS* ]]
	# gzip-compressed HL7 is read like any source.
	gzip -c "$DATA/hl7v2/rth_adt-a01-full.hl7" | mlk-ingest --quiet --dataset ehr/gz - > gz.ndjson
	[ "$(jq -r .control_id gz.ndjson)" = CTRL0042 ]
}

@test "HL7 v2: the same input gives byte-identical records and files in two fresh lakes" {
	mlk-ingest --quiet --dataset ehr/hl7 "$DATA/hl7v2" > a.ndjson
	(cd "$MLK_LAKE"/raw/ehr/hl7/batch=* && find . -name '*.gz' | sort | xargs zcat) > a.files
	mklake "$BATS_TEST_TMPDIR/lake2"
	mlk-ingest --quiet --dataset ehr/hl7 "$DATA/hl7v2" > b.ndjson
	(cd "$MLK_LAKE"/raw/ehr/hl7/batch=* && find . -name '*.gz' | sort | xargs zcat) > b.files
	cmp a.ndjson b.ndjson
	cmp a.files b.files
	[ "$(grep -c . a.files)" -eq 18 ]
}

@test "HL7 v2: DuckDB reads message_type as a partition column, unescaped" {
	mlk-ingest --quiet --dataset ehr/hl7 "$DATA/hl7v2" > out.ndjson
	run duckdb_query "SELECT message_type AS t, count(*) AS n
		FROM read_ndjson_objects('$MLK_LAKE/raw/ehr/hl7/**/*.gz', hive_partitioning=true)
		GROUP BY ALL ORDER BY ALL"
	assert_success
	[ "$(jq -r '"\(.t) \(.n)"' <<<"$output" | paste -sd,)" = "ACK 1,ADT^A01 8,MDM^T02 1,OML^O21 1,ORM^O01 1,ORU^R01 5,SIU^S12 1" ]
}

@test "HL7 v2: partition specs can use the summary fields; old lakes get the default" {
	sed -i 's/^datasets: {}$/datasets:\n  ehr\/fac:\n    partitions:\n      hl7v2: [sending_facility, version, day(date), type]/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset ehr/fac "$DATA/hl7v2/rth_mdm-t02-document.hl7"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = 'sending_facility=HOSP_A/version=2.5.1/day=22/type=hl7v2%3AMDM%5ET02' ]
	# A lake made before HL7 v2 support has no hl7v2 line: the default.
	sed -i '/^  hl7v2:/d' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset ehr/old "$DATA/hl7v2/rth_mdm-t02-document.hl7"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = 'message_type=MDM%5ET02/year=2026/month=03' ]
}

# --- genomics ---

G=${DATA:-}/genomics

# The one record of a genomics source, by file name.
grec() {
	jq -c --arg f "$1" 'select(._mlk.src.path | . == $f or endswith("/" + $f))' out.ndjson
}

@test "genomics: one valid record per file, blob in the object store, sample names as bcftools and samtools see them" {
	run --separate-stderr mlk-ingest --dataset genomics/lab --project p1 --assay wgs --pipeline-version 2.1 "$G"
	assert_success
	printf '%s\n' "$output" > out.ndjson
	# every file of the folder is one record, and jq reads them all
	[ "$(jq -s length out.ndjson)" -eq "$(ls "$G" | wc -l)" ]
	jq -s -e 'all(._mlk.kind == "genomics" and ._mlk.v == 1)' out.ndjson
	run jq -r 'select(.type == "batch") | .kind' "$MLK_LAKE"/raw/genomics/lab/batch=*/_manifest.json
	assert_output genomics
	for f in cyvcf2_test.vcf.gz pysam_ex1.vcf.gz; do
		[ "$(grec $f | jq -r '.samples[]')" = "$(bcftools query -l "$G/$f")" ]
		[ "$(grec $f | jq .sample_count)" -eq "$(bcftools query -l "$G/$f" | wc -l)" ]
		[ "$(grec $f | jq '.info_fields | length')" -eq "$(bcftools view -h "$G/$f" | grep -c '^##INFO=')" ]
		[ "$(grec $f | jq '.format_fields | length')" -eq "$(bcftools view -h "$G/$f" | grep -c '^##FORMAT=')" ]
		[ "$(grec $f | jq -r '._mlk.type')" = vcf ]
	done
	for f in pysam_ex3.sam pysam_ex3.bam pysam_ex3.cram; do
		[ "$(grec $f | jq -r '.rg[] | "\(.ID) \(.SM)"')" = "$(samtools view -H "$G/$f" | grep '^@RG' | sed 's/.*\tID:\([^\t]*\).*\tSM:\([^\t]*\).*/\1 \2/')" ]
		[ "$(grec $f | jq -r '.samples | join(",")')" = NA12891 ]
		[ "$(grec $f | jq '.sq | length')" -eq "$(samtools view -H "$G/$f" | grep -c '^@SQ')" ]
		[ "$(grec $f | jq -r '.sq[] | "\(.SN) \(.LN)"')" = "$(samtools view -H "$G/$f" | grep '^@SQ' | sed 's/.*SN:\([^\t]*\).*LN:\([0-9]*\).*/\1 \2/')" ]
		[ "$(grec $f | jq -r '.co | join("|")')" = "$(samtools view -H "$G/$f" | grep '^@CO' | cut -f2- | paste -sd'|')" ]
		[ "$(grec $f | jq -r '[.pg[].ID] | join(",")')" = "$(samtools view -H --no-PG "$G/$f" | grep '^@PG' | sed 's/.*ID:\([^\t]*\).*/\1/' | paste -sd,)" ]
	done
	[ "$(grec pysam_ex3.cram | jq -r '.sq[0].M5')" = 426e31835a6dfdcbf6c534671edf02f7 ]
	[ "$(grec pysam_ex1.sorted.bam | jq -c .samples)" = '[]' ]
	[ "$(grec pysam_ex1.fa.fai | jq -r ._mlk.type)" = fai ]
	[ "$(grec pysam_ex1.sorted.bam.bai | jq -r ._mlk.type)" = bai ]
	# each file's bytes are its blob
	for f in $(ls "$G"); do
		sha=$(sha256sum "$G/$f" | cut -c1-64)
		r=$(grec "$f")
		[ "$(jq -r ._mlk.blob <<<"$r")" = "sha256:$sha" ]
		[ "$(jq -r ._mlk.size <<<"$r")" -eq "$(stat -c %s "$G/$f")" ]
		cmp "$MLK_LAKE/objects/sha256/${sha:0:2}/$sha" "$G/$f"
	done
	[ "$(jq -r ._mlk.partition out.ndjson | sort -u)" = project=p1/assay=wgs/pipeline_version=2.1 ]
	# no sample name reaches stderr
	! grep -q NA12891 <<<"$stderr"
}

@test "genomics: FASTQ read count and read lengths from one pass agree with zcat and awk" {
	run --separate-stderr mlk-ingest --dataset genomics/fq "$G/pysam_faidx_ex1.fq.gz"
	assert_success
	[ "$(jq .reads <<<"$output")" -eq "$(zcat "$G/pysam_faidx_ex1.fq.gz" | awk 'END{print NR/4}')" ]
	[ "$(jq -c '.read_length | [.min, .max]' <<<"$output")" = "$(zcat "$G/pysam_faidx_ex1.fq.gz" | awk 'NR%4==2{l=length($0); if(!n||l<mn)mn=l; if(l>mx)mx=l; n++} END{printf "[%d,%d]", mn, mx}')" ]
	[ "$(jq .read_length.mean <<<"$output")" = "$(zcat "$G/pysam_faidx_ex1.fq.gz" | awk 'NR%4==2{s+=length($0); n++} END{printf "%.2f", s/n}')" ]
	[ "$(jq -r .compression <<<"$output")" = bgzf ]
	# plain FASTQ too
	zcat "$G/pysam_faidx_ex1.fq.gz" > plain.fq
	run --separate-stderr mlk-ingest --dataset genomics/fq plain.fq
	assert_success
	[ "$(jq .reads <<<"$output")" -eq 3270 ]
	[ "$(jq -r .compression <<<"$output")" = none ]
}

@test "genomics: the reference build comes from chr1's length, else the assembly name, else unknown" {
	run --separate-stderr mlk-ingest --dataset genomics/b "$G/cyvcf2_test.vcf.gz" "$G/pysam_ex3.bam"
	assert_success
	printf '%s\n' "$output" > out.ndjson
	[ "$(grec cyvcf2_test.vcf.gz | jq -r '"\(.reference_build) \(.reference_build_from)"')" = "GRCh37 contig-length" ]
	[ "$(grec pysam_ex3.bam | jq -r '"\(.reference_build) \(.reference_build_from)"')" = "unknown none" ]
	# a SAM header made here: GRCh38 by chr1's length, hg19 by name
	printf '@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:248956422\n@RG\tID:a\tSM:s1\tPL:ILLUMINA\tLB:l1\tCN:lab\tDT:2024-01-02\n' > b38.sam
	printf '@HD\tVN:1.6\n@SQ\tSN:chrQ\tLN:100\tAS:hg19\n' > hg19.sam
	printf '##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n' > b37.vcf
	run --separate-stderr mlk-ingest --dataset genomics/b b38.sam hg19.sam b37.vcf
	assert_success
	printf '%s\n' "$output" > out.ndjson
	[ "$(grec b38.sam | jq -r .reference_build)" = GRCh38 ]
	[ "$(grec b38.sam | jq -c '.rg[0]')" = '{"ID":"a","CN":"lab","DT":"2024-01-02","LB":"l1","PL":"ILLUMINA","SM":"s1"}' ]
	[ "$(grec hg19.sam | jq -r '"\(.reference_build) \(.reference_build_from) \(.assembly)"')" = "GRCh37 assembly-name hg19" ]
	[ "$(grec b37.vcf | jq -r '"\(.reference_build) \(.contigs[0].length)"')" = "GRCh37 249250621" ]
}

@test "genomics: project, assay and pipeline version from mlk-genomics.yaml beside the files; options win" {
	mkdir run1
	cp "$G/pysam_ex1.vcf.gz" "$G/pysam_ex3.bam" run1/
	printf 'project: onco\nassay: wes\npipeline_version: "1.4"\n' > run1/mlk-genomics.yaml
	run --separate-stderr mlk-ingest --dataset genomics/s run1
	assert_success
	# the sidecar is a setting, not a source
	[ "$(grep -c . <<<"$output")" -eq 2 ]
	[ "$(jq -r ._mlk.partition <<<"$output" | sort -u)" = project=onco/assay=wes/pipeline_version=1.4 ]
	[ "$(jq -r '"\(.project) \(.assay) \(.pipeline_version)"' <<<"$output" | sort -u)" = "onco wes 1.4" ]
	[ -d "$MLK_LAKE"/raw/genomics/s/batch=*/project=onco/assay=wes/pipeline_version=1.4 ]
	cp "$G/pysam_ex3.sam" run1/
	run --separate-stderr mlk-ingest --dataset genomics/s --assay rna run1/pysam_ex3.sam
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = project=onco/assay=rna/pipeline_version=1.4 ]
	# partitions.genomics in mlk.yaml changes the layout
	sed -i 's/^partitions:$/partitions:\n  genomics: [project, reference_build]/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset genomics/t "$G/cyvcf2_test.vcf.gz"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = project=__HIVE_DEFAULT_PARTITION__/reference_build=GRCh37 ]
}

@test "genomics: a sidecar that is not a map of text quarantines the genomics files beside it" {
	mkdir run2
	cp "$G/pysam_ex1.vcf.gz" "$G/pysam_ex3.bam" run2/
	printf 'project: [a, b]\n' > run2/mlk-genomics.yaml
	run --separate-stderr mlk-ingest --dataset genomics/s run2
	assert_failure 1
	[ -z "$output" ]
	[ "$(grep -c "mlk-genomics.yaml:1: 'project' must be text; quarantined" <<<"$stderr")" -eq 2 ]
}

@test "genomics: CRAM headers are read offline, without a reference" {
	# a CRAM whose reference is not embedded and whose UR does not exist
	samtools view -C -T "$G/pysam_ex1.fa" -o noref.cram "$G/pysam_ex3.sam"
	command -v unshare >/dev/null && unshare -rn true 2>/dev/null || skip "no network namespace"
	REF_PATH=http://192.0.2.1/%s REF_CACHE="$BATS_TEST_TMPDIR/cache/%s" \
		run --separate-stderr unshare -rn env MLK_LAKE="$MLK_LAKE" mlk-ingest --dataset genomics/c noref.cram
	assert_success
	[ "$(jq -r ._mlk.type <<<"$output")" = cram ]
	[ "$(jq -r '.rg[0].SM' <<<"$output")" = NA12891 ]
	[ ! -e cache ]
	if command -v strace >/dev/null; then
		# (LeakSanitizer cannot run under ptrace: no leak check here)
		REF_PATH=http://192.0.2.1/%s ASAN_OPTIONS=detect_leaks=0 \
			strace -f -e trace=socket,connect -o trace.txt \
			mlk-ingest --dataset genomics/c2 noref.cram > c2.ndjson
		[ "$(jq -r ._mlk.type c2.ndjson)" = cram ]
		! grep -q 'AF_INET' trace.txt
	fi
}

@test "genomics: a broken VCF header, a truncated BAM and FASTQ are quarantined; the rest lands; exit 1, no sample names on stderr" {
	head -c 2000 "$G/pysam_ex1.sorted.bam" > trunc.bam
	zcat "$G/pysam_faidx_ex1.fq.gz" | gzip -c | head -c 20000 > trunc.fq.gz
	# a sample named twice, among the sample names of a real file
	zcat "$G/cyvcf2_test.vcf.gz" | awk 'BEGIN{OFS="\t"} /^#CHROM/{$11=$10} {print}' > broken.vcf
	run --separate-stderr mlk-ingest --dataset genomics/bad "$DATA/malformed/cyvcf2_test-invalid-header.vcf" trunc.bam trunc.fq.gz broken.vcf "$G/pysam_ex1.vcf.gz"
	assert_failure 1
	[ "$(jq -r '._mlk.src.path' <<<"$output")" = "$G/pysam_ex1.vcf.gz" ]
	[[ $stderr == *"cyvcf2_test-invalid-header.vcf': vcf header cannot be parsed (htslib); quarantined"* ]]
	[[ $stderr == *"'trunc.bam': bam is truncated: no end-of-file marker (htslib); quarantined"* ]]
	[[ $stderr == *"'trunc.fq.gz': fastq is truncated or corrupt"* ]]
	[[ $stderr == *"'broken.vcf': vcf header cannot be parsed"* ]]
	! grep -q -e 101976 -e FOO <<<"$stderr"
	[ "$(cat "$MLK_LAKE"/quarantine/genomics/bad/*/q*.json | jq -r .reason | grep -c .)" -eq 4 ]
	cat "$MLK_LAKE"/quarantine/genomics/bad/*/q*.json | jq -s -e 'all(.object | startswith("sha256:"))'
}

@test "genomics: the same files give byte-identical records and data files in two fresh lakes" {
	mlk-ingest --quiet --dataset genomics/d --project p "$G" > a.ndjson
	(cd "$MLK_LAKE"/raw/genomics/d/batch=* && find . -name '*.gz' | sort | xargs zcat) > a.files
	mklake "$BATS_TEST_TMPDIR/lake2"
	mlk-ingest --quiet --dataset genomics/d --project p "$G" > b.ndjson
	(cd "$MLK_LAKE"/raw/genomics/d/batch=* && find . -name '*.gz' | sort | xargs zcat) > b.files
	cmp a.ndjson b.ndjson
	cmp a.files b.files
	[ "$(grep -c . a.files)" -eq 14 ]
}

# --- archives ---

# A folder of FHIR NDJSON and a VCF, and the records it lands as plain
# files, without the envelope (which names the source).
archive_fixture() {
	mkdir -p bundle/fhir bundle/vcf
	cp "$DATA"/fhir/Patient.ndjson "$DATA"/fhir/Encounter.ndjson bundle/fhir/
	cp "$G/pysam_ex1.vcf.gz" bundle/vcf/
	mlk-ingest --quiet --dataset plain/x bundle > plain.ndjson
	jq -cS 'del(._mlk)' plain.ndjson | sort > plain.data
}

@test "archives: zip, tar, tar.gz, tar.bz2 and tar.xz of FHIR NDJSON and a VCF land the same records as the plain files" {
	archive_fixture
	tar cf b.tar bundle
	tar czf b.tgz bundle
	tar cjf b.tbz bundle
	tar cJf b.txz bundle
	if command -v zip >/dev/null; then
		zip -qr b.zip bundle
	else
		python3 -c 'import shutil; shutil.make_archive("b", "zip", ".", "bundle")'
	fi
	for a in b.zip b.tar b.tgz b.tbz b.txz; do
		run --separate-stderr mlk-ingest --dataset "arch/${a#b.}" "$a"
		assert_success
		printf '%s\n' "$output" > out.ndjson
		jq -cS 'del(._mlk)' out.ndjson | sort > out.data
		cmp plain.data out.data
		# provenance: the archive, the member, both hashes
		[ "$(jq -r 'select(._mlk.kind == "genomics") | ._mlk.src.member | join("|")' out.ndjson)" = bundle/vcf/pysam_ex1.vcf.gz ]
		[ "$(jq -r 'select(._mlk.kind == "genomics") | ._mlk.src.sha256' out.ndjson)" = "$(sha256sum < "$G/pysam_ex1.vcf.gz" | cut -c1-64)" ]
		[ "$(jq -r '._mlk.src.archive_sha256' out.ndjson | sort -u)" = "$(sha256sum < "$a" | cut -c1-64)" ]
		[ "$(jq -r '._mlk.src.path' out.ndjson | sort -u)" = "$a" ]
		[ "$(jq -r 'select(.resourceType == "Patient") | ._mlk.src.member[0]' out.ndjson | sort -u)" = bundle/fhir/Patient.ndjson ]
	done
	# the manifest names the archive's format and each member as a source
	run jq -r 'select(.entry == "source") | "\(.path) \(.format)"' "$MLK_LAKE"/raw/arch/txz/batch=*/_manifest.json
	assert_line 'b.txz tar.xz'
	assert_line 'b.txz!/bundle/vcf/pysam_ex1.vcf.gz vcf'
	assert_line 'b.txz!/bundle/fhir/Patient.ndjson fhir-ndjson'
	# FHIR and a VCF in one batch: its kind is mixed
	run jq -r 'select(.type == "batch") | .kind' "$MLK_LAKE"/raw/arch/txz/batch=*/_manifest.json
	assert_output mixed
	# member bytes are objects
	sha=$(sha256sum < "$DATA/fhir/Patient.ndjson" | cut -c1-64)
	cmp "$MLK_LAKE/objects/sha256/${sha:0:2}/$sha" "$DATA/fhir/Patient.ndjson"
}

@test "archives: member names are provenance only: ../, absolute names and links write nothing" {
	python3 - <<'PY'
import io, tarfile
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
with tarfile.open("evil.tar", "w") as t:
    add(t, "../../escaped.ndjson", b'{"n":1}\n')
    add(t, "/tmp/absolute-mlk-test.ndjson", b'{"n":2}\n')
    ti = tarfile.TarInfo("link.ndjson"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"; t.addfile(ti)
    ti = tarfile.TarInfo("hard.ndjson"); ti.type = tarfile.LNKTYPE; ti.linkname = "../../escaped.ndjson"; t.addfile(ti)
    add(t, "bad\xe9name.ndjson".encode("latin-1").decode("utf-8", "surrogateescape"), b'{"n":3}\n')
PY
	mkdir sub && cd sub
	run --separate-stderr mlk-ingest --dataset arch/evil ../evil.tar
	assert_success
	[ "$(jq -c '[.n, ._mlk.src.member[0]]' <<<"$output" | paste -sd' ')" = '[1,"../../escaped.ndjson"] [2,"/tmp/absolute-mlk-test.ndjson"] [3,"bad\ufffdname.ndjson"]' ] ||
	[ "$(jq -c '[.n, ._mlk.src.member[0]]' <<<"$output" | paste -sd' ')" = '[1,"../../escaped.ndjson"] [2,"/tmp/absolute-mlk-test.ndjson"] [3,"bad�name.ndjson"]' ]
	[[ $stderr == *"'../evil.tar member 3': symbolic link passed over"* ]]
	[[ $stderr == *"'../evil.tar member 4': hard link passed over"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/../escaped.ndjson" ]
	[ ! -e /tmp/absolute-mlk-test.ndjson ]
	[ "$(find . "$BATS_TEST_TMPDIR" -maxdepth 1 -newer ../evil.tar -name '*.ndjson' | wc -l)" -eq 0 ]
	# nothing named after a member anywhere in the lake
	[ -z "$(find "$MLK_LAKE" -name '*escaped*' -o -name '*absolute*' -o -name 'link.ndjson')" ]
}

@test "archives: bombs stop at the expansion ratio and the total size, each with its reason, quarantined" {
	python3 - <<'PY'
import zipfile
z = zipfile.ZipFile("bomb.zip", "w", zipfile.ZIP_DEFLATED)
z.writestr("zeros.ndjson", b"\0" * (40 << 20))
z.close()
z = zipfile.ZipFile("big.zip", "w", zipfile.ZIP_STORED)
z.writestr("a.ndjson", b'{"k":1}\n' * 300000)
z.close()
PY
	cp "$DATA/fhir/Patient.ndjson" good.ndjson
	run --separate-stderr mlk-ingest --dataset arch/bomb bomb.zip good.ndjson
	assert_failure 1
	[ "$(grep -c . <<<"$output")" -eq "$(grep -c . good.ndjson)" ]
	[[ $stderr == *"'bomb.zip member 1': archive bomb: expands more than 200 times its size (ingest.archive_max_ratio); not unpacked further; quarantined"* ]]
	run jq -r '"\(.src.path) \(.reason)"' "$MLK_LAKE"/quarantine/arch/bomb/*/q000001.json
	assert_output 'bomb.zip!/zeros.ndjson archive bomb: expands more than 200 times its size (ingest.archive_max_ratio); not unpacked further'
	# the total: 2 MiB allowed, 2.4 MB stored uncompressed
	sed -i 's/^ingest:$/ingest:\n  archive_max_mb: 2/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset arch/big big.zip
	assert_failure 1
	[ -z "$output" ]
	[[ $stderr == *"'big.zip member 1': archive bomb: expands past 2 MiB (ingest.archive_max_mb); not unpacked further; quarantined"* ]]
	# a ratio set higher lets the first one through
	sed -i 's/^ingest:$/ingest:\n  archive_max_ratio: 100000/' "$MLK_LAKE/mlk.yaml"
	sed -i 's/^  archive_max_mb: 2$/  archive_max_mb: 100/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset arch/bomb2 bomb.zip
	[[ $stderr != *"archive bomb"* ]]
	# its member, 40 MiB of zero bytes, reads as an empty tar: no members
	assert_failure 1
	[[ $stderr == *"'bomb.zip member 1': tar archive with no members; quarantined"* ]]
}

@test "archives: an archive in an archive is unpacked; one level deeper is quarantined" {
	printf '{"resourceType":"Patient","id":"in1"}\n' > in.ndjson
	tar czf inner.tgz in.ndjson
	cp inner.tgz inner2.tgz
	tar cf mid.tar inner2.tgz
	python3 - <<'PY'
import zipfile
z = zipfile.ZipFile("outer.zip", "w")
z.write("inner.tgz"); z.write("mid.tar")
z.close()
PY
	run --separate-stderr mlk-ingest --dataset arch/nest outer.zip
	assert_failure 1
	[ "$(jq -c '[.id, ._mlk.src.member]' <<<"$output")" = '["in1",["inner.tgz","in.ndjson"]]' ]
	[[ $stderr == *"'outer.zip member 2 member 1': archive nested more than one level deep: not unpacked; quarantined"* ]]
	run jq -r '"\(.src.path) \(.reason)"' "$MLK_LAKE"/quarantine/arch/nest/*/q000001.json
	assert_output 'outer.zip!/mid.tar!/inner2.tgz archive nested more than one level deep: not unpacked'
}

@test "archives: a corrupt or truncated zip and tar.gz are quarantined; other inputs land; exit 1" {
	archive_fixture
	zip -qr b.zip bundle 2>/dev/null || python3 -c 'import shutil; shutil.make_archive("b", "zip", ".", "bundle")'
	tar czf b.tgz bundle
	head -c $(( $(stat -c %s b.zip) / 2 )) b.zip > half.zip
	head -c $(( $(stat -c %s b.tgz) / 2 )) b.tgz > half.tgz
	# not a zip at all past its first bytes
	{ printf 'PK\003\004'; head -c 3000 /dev/zero; } > junk.zip
	run --separate-stderr mlk-ingest --dataset arch/bad half.zip half.tgz junk.zip "$G/pysam_ex3.bam"
	assert_failure 1
	printf '%s\n' "$output" > out.ndjson
	[ "$(jq -r 'select(._mlk.src.member | not) | ._mlk.src.path' out.ndjson)" = "$G/pysam_ex3.bam" ]
	[[ $stderr == *"'half.zip"* ]]
	[[ $stderr == *"'half.tgz"* ]]
	[[ $stderr == *"'junk.zip"*"; quarantined"* ]]
	for q in "$MLK_LAKE"/quarantine/arch/bad/*/q*.json; do
		jq -e '.reason | length > 0' "$q"
	done
	run jq -r '.src.path' "$MLK_LAKE"/quarantine/arch/bad/*/q*.json
	assert_line half.tgz
	assert_line junk.zip
	# whatever came out of the halves before the cut is in the lake
	[ "$(jq -r 'select(.resourceType) | ._mlk.src.path' out.ndjson | sort -u | paste -sd,)" = half.tgz,half.zip ]
}

# --- DICOM ---
# DICOM Part 10 files (common/dicom.c): one record per SOP instance, checked
# against dcmtk's dcmdump, which nobody here wrote.

@test "DICOM: every sample file is one record whose attributes match dcmdump" {
	run --separate-stderr mlk-ingest --dataset imaging/samples "$DATA/dicom"
	assert_success
	[ "$(grep -c . <<<"$output")" -eq 9 ]
	# jq validates every line.
	while IFS= read -r l; do jq -e 'type == "object"' <<<"$l" >/dev/null; done <<<"$output"
	printf '%s\n' "$output" >records.ndjson
	run /usr/bin/python3 "$MLK_ROOT/tests/dicom-vs-dcmdump.py" records.ndjson
	assert_success
	assert_output --regexp 'checked [0-9]{4,} elements in 9 files, 0 differences'
	# Each syntax of the sample set was read.
	[ "$(jq -r .transfer_syntax records.ndjson | sort -u | paste -sd' ')" = \
	  "1.2.840.10008.1.2 1.2.840.10008.1.2.1 1.2.840.10008.1.2.1.99 1.2.840.10008.1.2.4.50 1.2.840.10008.1.2.4.51 1.2.840.10008.1.2.4.70" ]
}

@test "DICOM: the record's convenience fields, envelope, blob and stored object" {
	f=$DATA/dicom/MR_tcia_prostate_mri_3.dcm
	run --separate-stderr mlk-ingest --dataset imaging/mr --source-system pacs "$f"
	assert_success
	sha=$(sha256sum "$f" | cut -d' ' -f1)
	jq -e --arg sha "$sha" --argjson size "$(stat -c %s "$f")" '
		.modality == "MR" and .date == "2006-12-17" and
		.study_date == "20061217" and .body_part == "PROSTATE" and
		(.study_instance_uid | test("^[0-9.]+$")) and
		.sop_instance_uid == .dicom["00080018"].Value[0] and
		.transfer_syntax == "1.2.840.10008.1.2.1" and
		._mlk.kind == "imaging" and ._mlk.type == "dicom" and
		._mlk.src.sha256 == $sha and ._mlk.size == $size and
		._mlk.blob == "sha256:" + $sha and
		._mlk.source_system == "pacs" and
		._mlk.partition == "modality=MR/year=2006/month=12" and
		.dicom["00100010"] == {"vr": "PN"} and
		.dicom["0040A075"].Value == [{"Alphabetic": "Removed by CTP"}] and
		(.dicom["00280010"].Value[0] | type) == "number" and
		.dicom["7FE00010"] == {"vr": "OW"} and
		(.dicom | has("00020010") | not)' <<<"$output"
	# The file is in the object store, byte for byte, read-only.
	obj=$MLK_LAKE/objects/sha256/${sha:0:2}/$sha
	cmp "$f" "$obj"
	[ ! -w "$obj" ] || [ "$(id -u)" -eq 0 ]
	# The lake's copy of the record is the one on stdout, cut before dataset.
	[ "$(count_gz "$MLK_LAKE"/raw/imaging/mr/batch=*/modality=MR/year=2006/month=12/*.gz)" -eq 1 ]
	[ "$(head -1 "$MLK_LAKE"/raw/imaging/mr/batch=*/_manifest.json | jq -r .kind)" = imaging ]
	[ "$(jq -r 'select(.entry == "source") | .format' "$MLK_LAKE"/raw/imaging/mr/batch=*/_manifest.json)" = dicom ]
}

@test "DICOM: pixel data and bulk data never reach the record" {
	run --separate-stderr mlk-ingest --quiet --dataset imaging/mr "$DATA/dicom/MR_deid_example.dcm" "$DATA/dicom/US_IM00001.fragmented_no_bot_jpeg_baseline.50.dcm"
	assert_success
	# 854 KB and 322 KB files: their records hold the header only.
	while IFS= read -r l; do [ "${#l}" -lt 65536 ]; done <<<"$output"
	[ "$(jq -c '.dicom["7FE00010"]' <<<"$output" | sort -u)" = '{"vr":"OB"}
{"vr":"OW"}' ]
}

@test "DICOM: truncated files and a .dcm that is not DICOM are quarantined, the rest lands, exit 1" {
	for n in 200 1400 9000 60000; do
		head -c $n "$DATA/dicom/CT_CT1_UNC.explicit_little_endian.dcm" >ct-$n.dcm
	done
	head -c 700 "$DATA/dicom/SR_report_dfl.dcm" >sr-deflated-cut.dcm
	head -c 30000 "$DATA/dicom/MR_deid_example.dcm" >mr-implicit-cut.dcm
	printf 'Patient Doe, John: see attached\n' >notes.dcm
	cp "$DATA/dicom/PT_tcia_acrin_flt_breast_1.dcm" good.dcm
	run --separate-stderr mlk-ingest --dataset imaging/mixed ct-*.dcm sr-deflated-cut.dcm mr-implicit-cut.dcm notes.dcm good.dcm
	assert_failure 1
	[ "$(grep -c . <<<"$output")" -eq 1 ]
	[ "$(jq -r .modality <<<"$output")" = PT ]
	for f in ct-200 ct-1400 ct-9000 ct-60000 sr-deflated-cut mr-implicit-cut; do
		grep -qF "'$f.dcm': not valid DICOM: truncated at byte" <<<"$stderr"
	done
	grep -qF "'notes.dcm': not valid DICOM: no DICM prefix and no data set at byte 0; quarantined" <<<"$stderr"
	# Reasons are in the quarantine, never the content.
	q=$(echo "$MLK_LAKE"/quarantine/imaging/mixed/b*)
	[ "$(ls "$q"/q*.json | wc -l)" -eq 7 ]
	jq -e -s 'all(.[]; (.reason | test("^not valid DICOM: ")) and (.object | startswith("sha256:")))' "$q"/q*.json >/dev/null
	# No PHI on stderr: not the patient names of the files cut short.
	for f in ct-60000 mr-implicit-cut good; do
		[[ $stderr != *Doe* ]]
	done
	! grep -qiE 'anonymized|thomas|smith' <<<"$stderr"
}

@test "DICOM: partitions.dicom in mlk.yaml is honoured, per dataset too" {
	sed -i 's/^  dicom: .*/  dicom: [modality, body_part]/' "$MLK_LAKE/mlk.yaml"
	sed -i 's/^datasets: {}$/datasets:\n  imaging\/day:\n    partitions:\n      dicom: [day(date), type]/' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset imaging/pt "$DATA/dicom/PT_tcia_acrin_flt_breast_1.dcm"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = 'modality=PT/body_part=BREAST' ]
	run --separate-stderr mlk-ingest --dataset imaging/day "$DATA/dicom/PT_tcia_acrin_flt_breast_1.dcm"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = 'day=14/type=dicom' ]
	# A lake made before DICOM support has no dicom line: the default.
	sed -i '/^  dicom:/d' "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-ingest --dataset imaging/old "$DATA/dicom/SR_report_dfl.dcm"
	assert_success
	[ "$(jq -r ._mlk.partition <<<"$output")" = 'modality=SR/year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__' ]
}

@test "DICOM: content decides, not the name; stdin works; reruns are byte-identical" {
	cp "$DATA/dicom/ECG_wave_dfl.dcm" noext
	run --separate-stderr bash -c 'mlk-ingest --quiet --dataset imaging/a noext - <"$DATA/dicom/SR_report_dfl.dcm"'
	assert_success
	[ "$(jq -r '"\(._mlk.src.path) \(.modality)"' <<<"$output" | paste -sd,)" = 'noext ECG,- SR' ]
	mlk-ingest --quiet --dataset imaging/all "$DATA/dicom" >a.ndjson
	(cd "$MLK_LAKE"/raw/imaging/all/batch=* && find . -name '*.gz' | sort | xargs zcat) >a.files
	mklake "$BATS_TEST_TMPDIR/lake2"
	mlk-ingest --quiet --dataset imaging/all "$DATA/dicom" >b.ndjson
	(cd "$MLK_LAKE"/raw/imaging/all/batch=* && find . -name '*.gz' | sort | xargs zcat) >b.files
	cmp a.ndjson b.ndjson
	cmp a.files b.files
	[ "$(grep -c . a.files)" -eq 9 ]
}

@test "DICOM: pydicom agrees on the convenience fields" {
	mlk-ingest --quiet --dataset imaging/py "$DATA/dicom" >records.ndjson
	run /usr/bin/python3 -W ignore -c '
import json, sys, pydicom
for line in open("records.ndjson"):
    r = json.loads(line)
    ds = pydicom.dcmread(r["_mlk"]["src"]["path"], stop_before_pixels=True)
    for key, kw in (("modality", "Modality"), ("study_date", "StudyDate"),
                    ("body_part", "BodyPartExamined"),
                    ("study_instance_uid", "StudyInstanceUID"),
                    ("series_instance_uid", "SeriesInstanceUID"),
                    ("sop_instance_uid", "SOPInstanceUID"),
                    ("sop_class_uid", "SOPClassUID")):
        want = str(ds.get(kw, "") or "")
        got = r.get(key, "")
        if want != got:
            print("differs", r["_mlk"]["src"]["path"], key)
            sys.exit(1)
    ts = str(ds.file_meta.TransferSyntaxUID)
    assert ts == r["transfer_syntax"], ts
print("ok")'
	assert_success
	assert_output ok
}

@test "DICOM: files inside a zip go through the same detection; members are provenance" {
	cp "$DATA/dicom/CT_CT1_UNC.explicit_little_endian.dcm" ct.dcm
	cp "$DATA/dicom/MR_deid_example.dcm" mr.dcm
	python3 -c 'import zipfile
z = zipfile.ZipFile("s.zip", "w")
z.write("ct.dcm"); z.write("mr.dcm"); z.close()'
	run --separate-stderr mlk-ingest --dataset imaging/zip s.zip
	assert_success
	assert_equal "$(jq -r '[.modality, ._mlk.kind, ._mlk.src.member[0], ._mlk.src.path] | join(" ")' <<<"$output" | sort | paste -sd,)" \
		"CT imaging ct.dcm s.zip,MR imaging mr.dcm s.zip"
	# the member's object is the file's own bytes
	sha=$(sha256sum ct.dcm | cut -d' ' -f1)
	assert_equal "$(jq -r 'select(.modality == "CT") | ._mlk.blob' <<<"$output")" "sha256:$sha"
}

@test "archives: an archive of nothing, or a file of zero bytes read as one, is quarantined, not landed as empty; exit 1" {
	head -c 100000 /dev/zero >zeros.bin
	tar cf empty.tar --files-from /dev/null
	run --separate-stderr mlk-ingest --dataset arch/none zeros.bin empty.tar "$DATA/fhir/Patient.ndjson"
	assert_failure 1
	[[ $stderr == *"'zeros.bin': tar archive with no members; quarantined"* ]]
	[[ $stderr == *"'empty.tar': tar archive with no members; quarantined"* ]]
	# the other input landed
	[ "$(grep -c . <<<"$output")" -eq "$(grep -c . "$DATA/fhir/Patient.ndjson")" ]
	run jq -r '.src.path' "$MLK_LAKE"/quarantine/arch/none/*/q*.json
	assert_line zeros.bin
	assert_line empty.tar
}
