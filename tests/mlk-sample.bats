#!/usr/bin/env bats
# mlk-sample: reproducible, stratified, leak-free samples.

load helper

setup() {
	mklake
}

# Flat synthetic records: 400 patients, rare diagnosis codes (0.25% each).
flat() {
	gen_ehr --format flat --records 20000 --seed 5 --patients 400 > flat.ndjson
}

@test "--help prints usage on stdout and exits 0" {
	run --separate-stderr mlk-sample --help
	assert_success
	assert_line --index 0 --partial 'usage: mlk-sample [--fraction P]'
	[ -z "$stderr" ]
}

@test "usage errors exit 2 with a message on stderr and nothing on stdout" {
	run --separate-stderr mlk-sample
	assert_failure 2
	[ -z "$output" ]
	[[ $stderr == *"nothing to do"* ]]
	run --separate-stderr mlk-sample --fraction 2
	assert_failure 2
	run --separate-stderr mlk-sample --fraction 0.1 --per-stratum 3
	assert_failure 2
	run --separate-stderr mlk-sample --min-per-stratum 3 --per-stratum 2
	assert_failure 2
	[[ $stderr == *"needs --fraction"* ]]
	run --separate-stderr mlk-sample --split train=0.5,test=0.4
	assert_failure 2
	[[ $stderr == *"add up to 1"* ]]
	run --separate-stderr mlk-sample --fraction 0.1 --time-field d
	assert_failure 2
	run --separate-stderr mlk-sample --bogus
	assert_failure 2
	[[ $stderr == *"unknown option '--bogus'"* ]]
}

@test "without a lake a key file is required; a readable key is refused" {
	unset MLK_LAKE
	cd /
	run --separate-stderr mlk-sample --fraction 0.5 "$DATA/fhir/Encounter.ndjson"
	assert_failure 2
	[[ $stderr == *"--key-file"* ]]
	cd "$BATS_TEST_TMPDIR"
	head -c 32 /dev/urandom > k && chmod 644 k
	run --separate-stderr mlk-sample --key-file k --fraction 0.5 "$DATA/fhir/Encounter.ndjson"
	assert_failure 3
	chmod 600 k
	run --separate-stderr mlk-sample --key-file k --fraction 0.5 "$DATA/fhir/Encounter.ndjson"
	assert_success
	[ -n "$output" ]
}

@test "every stratum with at least N units gets exactly N; smaller ones all" {
	flat
	mlk-sample --stratify diagnosis_code --per-stratum 60 --seed 3 flat.ndjson > s
	jq -r '[.diagnosis_code, .patient_id] | @tsv' flat.ndjson | sort -u |
		cut -f1 | uniq -c | awk '{print $2, ($1 < 60 ? $1 : 60)}' > want
	jq -r '[.diagnosis_code, .patient_id] | @tsv' s | sort -u |
		cut -f1 | uniq -c | awk '{print $2, $1}' > got
	run diff want got
	assert_success
	# a rare code with fewer than 20 patients keeps all of its records
	[ "$(awk '$2 < 60' want | wc -l)" -gt 0 ]
}

@test "a unit's records in a stratum are in or out together" {
	flat
	mlk-sample --stratify label --per-stratum 30 flat.ndjson > s
	jq -r '[.label, .patient_id] | @tsv' s | sort -u > chosen
	jq -r '[.label, .patient_id] | @tsv' flat.ndjson > all
	# every input record of a chosen (stratum, unit) is in the sample
	[ "$(grep -cFxf chosen all)" -eq "$(wc -l < s)" ]
	[ "$(wc -l < chosen)" -eq 60 ]
}

@test "rare classes survive --min-per-stratum with --fraction" {
	flat
	mlk-sample --fraction 0.01 --min-per-stratum 3 --stratify diagnosis_code \
		flat.ndjson > s
	jq -r .diagnosis_code flat.ndjson | sort -u > codes_in
	jq -r .diagnosis_code s | sort -u > codes_out
	run diff codes_in codes_out
	assert_success
	# and each stratum has at least 3 units (or all it has)
	jq -r '[.diagnosis_code, .patient_id] | @tsv' s | sort -u | cut -f1 |
		uniq -c | awk '$1 < 3 {print $2}' > thin
	while read -r c; do
		have=$(jq -r --arg c "$c" 'select(.diagnosis_code == $c) | .patient_id' flat.ndjson | sort -u | wc -l)
		[ "$have" -lt 3 ]
	done < thin
	# a plain fraction loses some of them
	mlk-sample --fraction 0.01 flat.ndjson | jq -r .diagnosis_code | sort -u > plain
	[ "$(wc -l < plain)" -lt "$(wc -l < codes_in)" ]
}

@test "shuffling the input changes nothing (fraction, split, per-stratum)" {
	flat
	shuf --random-source=<(yes) flat.ndjson > shuffled
	mlk-sample --fraction 0.2 --seed 9 flat.ndjson | sort > a
	mlk-sample --fraction 0.2 --seed 9 shuffled | sort > b
	cmp a b
	mlk-sample --split train=0.8,val=0.1,test=0.1 flat.ndjson | sort > a
	mlk-sample --split train=0.8,val=0.1,test=0.1 shuffled | sort > b
	cmp a b
	# bottom-k output is sorted: the bytes are the same without sorting
	mlk-sample --stratify label,facility --per-stratum 7 flat.ndjson > a
	mlk-sample --stratify label,facility --per-stratum 7 shuffled > b
	cmp a b
	[ -s a ]
}

@test "4 shards through GNU parallel equal one run" {
	command -v parallel >/dev/null || skip "GNU parallel not installed"
	flat
	split -n l/4 flat.ndjson shard.
	ls shard.* > shards
	for args in "--fraction 0.15 --seed 4" "--split train=0.7,val=0.2,test=0.1"; do
		# shellcheck disable=SC2086
		mlk-sample $args flat.ndjson | sort > one
		# shellcheck disable=SC2086
		parallel -j4 "mlk-sample $args {}" < shards | sort > many
		cmp one many
	done
	mlk-sample --stratify diagnosis_code --per-stratum 5 flat.ndjson > one
	parallel -j4 'mlk-sample --stratify diagnosis_code --per-stratum 5 {}' \
		< shards > concat
	mlk-sample --stratify diagnosis_code --per-stratum 5 concat > merged
	cmp one merged
	[ "$(wc -l < one)" -gt 50 ]
}

@test "no unit appears in two splits, and the splits are near their weights" {
	flat
	mlk-sample --split train=0.8,val=0.1,test=0.1 flat.ndjson > s
	[ "$(wc -l < s)" -eq 20000 ]
	n=$(jq -r '[.patient_id, ._mlk.split] | @tsv' s | sort -u | cut -f1 | uniq -d | wc -l)
	[ "$n" -eq 0 ]
	train=$(jq -r '._mlk.split' s | grep -c '^train$')
	[ "$train" -gt 14000 ] && [ "$train" -lt 18000 ]
}

@test "same seed, same bytes; another seed, another sample" {
	flat
	mlk-sample --fraction 0.1 --seed 1 flat.ndjson > a
	mlk-sample --fraction 0.1 --seed 1 flat.ndjson > b
	mlk-sample --fraction 0.1 --seed 2 flat.ndjson > c
	cmp a b
	! cmp -s a c
}

@test "the stamp: fixed parameters; a second pass writes the same bytes" {
	flat
	mlk-sample --stratify label --per-stratum 10 --seed 7 flat.ndjson > a
	run jq -c '._mlk' <(head -1 a)
	assert_output --regexp '^\{"sample":\{"seed":7,"unit":"default","method":"per-stratum","per_stratum":10,"stratify":\["label"\],"key_id":"k-[0-9a-f]{16}"\}\}$'
	mlk-sample --stratify label --per-stratum 10 --seed 7 a > b
	cmp a b
	# every byte before the envelope is as it came
	head -1 a | sed 's/,"_mlk":.*$/}/' > body
	grep -qFxf body flat.ndjson
}

@test "an existing _mlk keeps its members; sample and split are replaced" {
	printf '%s\n' '{"patient_id":"p1","x":1,"_mlk":{"v":1,"split":"old","sample":{"seed":1},"zone":"raw"}}' > in
	run --separate-stderr mlk-sample --split all=1 in
	assert_success
	assert_output --regexp '^\{"patient_id":"p1","x":1,"_mlk":\{"v":1,"zone":"raw","sample":\{"seed":0,.*\},"split":"all"\}\}$'
	run --separate-stderr mlk-sample --fraction 1 in
	assert_success
	assert_output --regexp '"zone":"raw","sample":\{[^}]*\},"split":"old"\}\}$'
}

@test "records without a unit are left out, counted once, without values" {
	printf '%s\n' '{"patient_id":"p1"}' '{"name":"Secret Person"}' \
		'{"patient_id":"p2"}' '{"name":"Other Person"}' 'not json' > in
	run --separate-stderr mlk-sample --fraction 1 in
	assert_failure 1
	[ "${#lines[@]}" -eq 2 ]
	[[ $stderr == *"2 records without a unit (line 2 first) were left out"* ]]
	[[ $stderr == *"'in':5:"* ]]
	[[ $stderr != *Secret* ]] && [[ $stderr != *Other* ]]
}

@test "FHIR units: Patient.id and subject references agree" {
	pid=$(head -1 "$DATA/fhir/Patient.ndjson" | jq -r .id)
	{ grep -F "\"$pid\"" "$DATA/fhir/Patient.ndjson"
	  grep -F "Patient/$pid" "$DATA/fhir/Encounter.ndjson"; } > in
	n=$(wc -l < in)
	for seed in 1 2 3 4 5 6; do
		c=$(mlk-sample --fraction 0.5 --seed $seed in | wc -l)
		[ "$c" -eq 0 ] || [ "$c" -eq "$n" ]
	done
}

@test "time bins join the strata" {
	flat
	mlk-sample --per-stratum 2 --time-field encounter_date --time-bins year \
		--report r.json flat.ndjson > s
	years=$(jq -r '.encounter_date[0:4]' flat.ndjson | sort -u | wc -l)
	[ "$(jq '.strata | length' r.json)" -eq "$years" ]
	run jq -c '.strata[0].key' r.json
	assert_output --regexp '^\{"time_bin":"[0-9]{4}"\}$'
	[ "$(jq '[.strata[].sample_units] | unique' -c r.json)" = "[2]" ]
}

@test "--report: strata counts, distances, and an audit event" {
	flat
	mlk-sample --fraction 0.3 --stratify label --report r.json \
		--audit-fields label,facility --purpose "test run" flat.ndjson > s
	[ "$(jq .input.records r.json)" -eq 20000 ]
	[ "$(jq .sample.records r.json)" -eq "$(wc -l < s)" ]
	[ "$(jq -r .input.sha256 r.json)" = "$(sha256sum < flat.ndjson | cut -c1-64)" ]
	[ "$(jq '[.strata[].input_records] | add' r.json)" -eq 20000 ]
	run jq -e '.fields.label.tv >= 0 and .fields.label.tv < 0.2' r.json
	assert_success
	ev=$(tail -1 "$MLK_LAKE/audit/log.ndjson")
	[ "$(jq -r .action <<<"$ev")" = sample ]
	[ "$(jq -r .purpose <<<"$ev")" = "test run" ]
	[ "$(jq -r '.outputs[0].report_sha256' <<<"$ev")" = "$(sha256sum < r.json | cut -c1-64)" ]
	! grep -q positive "$MLK_LAKE/audit/log.ndjson"
}
