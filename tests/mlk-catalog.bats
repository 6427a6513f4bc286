#!/usr/bin/env bats
# mlk-catalog: init, dataset descriptors and search, scan, access requests,
# vocabulary, models.

load helper

@test "--help prints usage on stdout and exits 0; misuse exits 2" {
	run --separate-stderr mlk-catalog --help
	assert_success
	assert_line --index 0 'usage: mlk-catalog init DIR'
	[ -z "$stderr" ]
	run --separate-stderr mlk-catalog
	assert_failure 2
	[[ $stderr == *"no command given"* ]]
	run --separate-stderr mlk-catalog frobnicate
	assert_failure 2
	[[ $stderr == *"unknown command 'frobnicate'"* ]]
	run --separate-stderr mlk-catalog init
	assert_failure 2
	run --separate-stderr mlk-catalog --bogus
	assert_failure 2
	[[ ${stderr_lines[0]} == "mlk-catalog: unknown option '--bogus'" ]]
	run mlk-catalog --version
	assert_output --regexp '^mlk-catalog [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "init creates the layout, the config files and a private key" {
	run --separate-stderr mlk-catalog init lake
	assert_success
	run jq -r '.lake + " " + .key_id' <<<"$output"
	assert_output --regexp "^$BATS_TEST_TMPDIR/lake k-[0-9a-f]{16}$"
	for d in raw curated training objects snapshots catalog sandboxes \
		quarantine audit keys; do
		assert_dir_exists "lake/$d"
	done
	for f in mlk.yaml policy.yaml vocab.yaml; do
		assert_file_exists "lake/$f"
	done
	[ "$(stat -c %a lake/keys)" = 700 ]
	key=$(ls lake/keys)
	[[ $key =~ ^k-[0-9a-f]{16}\.key$ ]]
	[ "$(stat -c %a "lake/keys/$key")" = 600 ]
	[ "$(stat -c %s "lake/keys/$key")" -eq 32 ]
	# mlk.yaml names the key by id, never by its bytes.
	grep -q "default: ${key%.key}" lake/mlk.yaml
	! grep -q "$(xxd -p "lake/keys/$key" | tr -d '\n')" lake/mlk.yaml
	# The creating user owns the lake.
	grep -qx "owner: $(id -un)" lake/policy.yaml
}

@test "the YAML files it writes parse, with the documented defaults" {
	mlk-catalog init lake > /dev/null
	run python3 - <<-'EOF'
	import json, re
	# no PyYAML here: check the keys the tools read, line by line
	conf = open("lake/mlk.yaml").read()
	for k in ("version: 1", "buffer_mb: 24", "compression_level: 1",
	          "threads: 2", "fhir: [resourceType, year(date), month(date)]",
	          "csv: [table, year(date), month(date)]"):
	    assert k in conf, k
	pol = open("lake/policy.yaml").read()
	assert "test_identity_override: false" in pol
	print("ok")
	EOF
	assert_output ok
}

@test "two lakes get different keys" {
	mlk-catalog init a > /dev/null
	mlk-catalog init b > /dev/null
	! cmp -s a/keys/*.key b/keys/*.key
	[ "$(ls a/keys)" != "$(ls b/keys)" ]
}

@test "init refuses a directory that is already a lake, and changes nothing" {
	mlk-catalog init lake > /dev/null
	before=$(find lake -type f -exec sha256sum {} + | sort)
	run --separate-stderr mlk-catalog init lake
	assert_failure 2
	[[ $stderr == *"already a lake"* ]]
	[ "$(find lake -type f -exec sha256sum {} + | sort)" = "$before" ]
}

@test "init is audited as the first event of the chain" {
	mlk-catalog init lake > /dev/null
	run jq -c '[.seq, .action, .decision, .rule, .prev, .detail.key_id]' lake/audit/log.ndjson
	assert_output --regexp '^\[1,"init","allow","owner","0{64}","k-[0-9a-f]{16}"\]$'
}

@test "init into an unwritable place fails with exit 5" {
	run --separate-stderr mlk-catalog init /proc/mlk-lake
	assert_failure 5
	[[ $stderr == "mlk-catalog: '/proc/mlk-lake'"* ]]
}

# A lake whose policy lets tests act as others (MLK_TEST_USER), with a
# test clock, and the shared FHIR, CSV and HL7 v2 data landed.
land() {
	mklake
	sed -i 's/^test_identity_override: false$/test_identity_override: true/' \
		"$MLK_LAKE/policy.yaml"
	echo "test_clock: true" >>"$MLK_LAKE/mlk.yaml"
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir" >fhir.ndjson
	mlk-ingest --quiet --dataset ehr/synthea "$DATA/synthea-csv" >csv.ndjson
	mlk-ingest --quiet --dataset ehr/hl7 "$DATA/hl7v2" >hl7.ndjson
}

last_event() {
	tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c "$1"
}

@test "add catalogues ingested data: owner, defaults, derived schema without values" {
	land
	run --separate-stderr mlk-catalog add ehr/fhir steward=sam \
		description="Synthea FHIR R4 bulk export"
	assert_success
	[ -z "$stderr" ]
	run jq -c '[.dataset, .owner, .steward, .sensitivity, .deid,
		.legal_hold, .derived.records, .derived.partitions]' <<<"$output"
	assert_output "[\"ehr/fhir\",\"$(id -un)\",\"sam\",\"restricted\",\"none\",false,$(wc -l <fhir.ndjson),[\"resourceType\",\"year\",\"month\"]]"
	f=$MLK_LAKE/catalog/datasets/ehr/fhir.yaml
	assert_file_exists "$f"
	# The keys mlk-audit metrics reads, at the top level of the YAML.
	grep -qx "owner: \"$(id -un)\"" "$f"
	grep -qx 'steward: "sam"' "$f"
	# Schema: types and null shares of fields; birthDate only on Patients.
	run mlk-catalog show ehr/fhir
	assert_success
	run jq -c '.derived.schema[] | select(.field == "birthDate")' <<<"$output"
	share=$(jq -n "1 - $(grep -c '"resourceType":"Patient"' fhir.ndjson) / $(wc -l <fhir.ndjson) | . * 10000 | round / 10000")
	assert_output "{\"field\":\"birthDate\",\"types\":[\"string\"],\"null_share\":$share}"
	# No value of any record reaches the catalog.
	family=$(jq -r 'select(.resourceType == "Patient") | .name[0].family' fhir.ndjson | head -1)
	birth=$(jq -r 'select(.resourceType == "Patient") | .birthDate' fhir.ndjson | head -1)
	! grep -rq -- "$family" "$MLK_LAKE/catalog"
	! grep -rq -- "$birth" "$MLK_LAKE/catalog"
	# Audited, naming the keys set, not their values.
	run last_event '[.action, .dataset, .decision, .detail.keys]'
	assert_output '["catalog.add","ehr/fhir","allow",["steward","description"]]'
	! grep -q "Synthea FHIR R4" "$MLK_LAKE/audit/log.ndjson"
	# Twice is refused.
	run --separate-stderr mlk-catalog add ehr/fhir
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: dataset 'ehr/fhir' is already in the catalog"
}

@test "search finds datasets by owner, sensitivity, free text and vocabulary synonym" {
	land
	cat >"$MLK_LAKE/vocab.yaml" <<-'EOF'
	version: 1
	keys: [modality, assay]
	terms:
	  CT: [computed tomography, thoracic CT, CT chest]
	  ECG: [EKG, electrocardiogram]
	EOF
	mlk-catalog add ehr/fhir owner=alice sensitivity=restricted >/dev/null
	mlk-catalog add ehr/synthea owner=bob sensitivity=internal \
		description="Synthea CSV export" >/dev/null
	mlk-catalog add ehr/hl7 owner=alice sensitivity=confidential >/dev/null
	mlk-catalog add imaging/chest owner=carol modality="CT chest" \
		sensitivity=restricted >/dev/null
	run mlk-catalog list
	assert_success
	assert_equal "$(jq -r .dataset <<<"$output" | tr '\n' ' ')" "ehr/fhir ehr/hl7 ehr/synthea imaging/chest "
	run mlk-catalog search owner=alice
	assert_equal "$(jq -r .dataset <<<"$output" | tr '\n' ' ')" "ehr/fhir ehr/hl7 "
	run mlk-catalog search sensitivity=RESTRICTED
	assert_equal "$(jq -r .dataset <<<"$output" | tr '\n' ' ')" "ehr/fhir imaging/chest "
	run mlk-catalog search sensitivity=restricted modality=CT
	assert_output --partial '"dataset":"imaging/chest"'
	assert_equal "${#lines[@]}" 1
	run mlk-catalog search "thoracic CT"
	assert_equal "$(jq -r .dataset <<<"$output")" "imaging/chest"
	run mlk-catalog search "modality=computed tomography"
	assert_equal "$(jq -r .dataset <<<"$output")" "imaging/chest"
	# Free text: words of values, record types and field names.
	run mlk-catalog search csv export
	assert_equal "$(jq -r .dataset <<<"$output")" "ehr/synthea"
	run mlk-catalog search fhir:Encounter
	assert_equal "$(jq -r .dataset <<<"$output")" "ehr/fhir"
	run mlk-catalog search ADT^A01
	assert_equal "$(jq -r .dataset <<<"$output")" "ehr/hl7"
	run --separate-stderr mlk-catalog search nobody-has-this
	assert_success
	assert_output ''
	# vocab check: values outside the vocabulary, exit 1.
	mlk-catalog set ehr/hl7 modality=Xray >/dev/null
	run --separate-stderr mlk-catalog vocab check
	assert_failure 1
	assert_output '{"dataset":"ehr/hl7","key":"modality","value":"Xray"}'
	assert_equal "$stderr" "mlk-catalog: 1 catalogued values are outside the vocabulary"
}

@test "the index is rebuilt atomically from the descriptors, which stay the truth" {
	land
	mlk-catalog add ehr/fhir >/dev/null
	mlk-catalog add ehr/hl7 >/dev/null
	sed -i 's/^sensitivity: .*/sensitivity: "public"/' \
		"$MLK_LAKE/catalog/datasets/ehr/hl7.yaml"
	run mlk-catalog search sensitivity=public
	assert_output ''
	# Three descriptors: ingest made one for ehr/synthea too.
	run mlk-catalog reindex
	assert_output '{"indexed":3}'
	run mlk-catalog search sensitivity=public
	assert_equal "$(jq -r .dataset <<<"$output")" "ehr/hl7"
	! ls -a "$MLK_LAKE/catalog" | grep -q '^\.tmp-'
	rm "$MLK_LAKE/catalog/index.ndjson"
	run mlk-catalog list
	assert_equal "${#lines[@]}" 3
	assert_file_exists "$MLK_LAKE/catalog/index.ndjson"
	echo 'not json' >>"$MLK_LAKE/catalog/index.ndjson"
	run --separate-stderr mlk-catalog list
	assert_failure 4
	[[ $stderr == "mlk-catalog: 'catalog/index.ndjson':4: not a valid index line"* ]]
}

@test "set: reserved keys refused; owner and steward may edit; others are denied and audited" {
	land
	mlk-catalog add ehr/fhir steward=sam >/dev/null
	run --separate-stderr mlk-catalog set ehr/fhir derived=x
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: key 'derived' is kept by mlk and cannot be set"
	run --separate-stderr mlk-catalog set ehr/fhir Owner=x
	assert_failure 2
	run --separate-stderr mlk-catalog set ehr/fhir legal_hold=maybe
	assert_failure 2
	run --separate-stderr mlk-catalog set ehr/nothere owner=x
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: dataset 'ehr/nothere' is not in the catalog"
	MLK_TEST_USER=sam run --separate-stderr mlk-catalog set ehr/fhir \
		legal_hold=true consent=research
	assert_success
	run jq -c '[.legal_hold, .consent]' <<<"$output"
	assert_output '[true,"research"]'
	run last_event '[.actor.user, .action, .rule]'
	assert_output '["sam","catalog.set","descriptor-steward"]'
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog set ehr/fhir owner=eve
	assert_failure 3
	assert_equal "$stderr" "mlk-catalog: catalog.set of ehr/fhir denied for user 'eve' by policy rule 'default-deny'"
	run last_event '[.actor.user, .action, .decision, .status]'
	assert_output '["eve","catalog.set","deny",3]'
	grep -qx "owner: \"$(id -un)\"" "$MLK_LAKE/catalog/datasets/ehr/fhir.yaml"
}

@test "scan gives back exactly the records ingest printed" {
	land
	for ds in fhir synthea hl7; do
		run mlk-catalog scan raw/ehr/$ds
		assert_success
		f=$ds.ndjson
		[ "$ds" = synthea ] && f=csv.ndjson
		[ "$(wc -l <"$f")" -gt 0 ]
		cmp <(sort "$f") <(printf '%s\n' "$output" | sort)
	done
	# Deterministic: twice the same bytes.
	a=$(mlk-catalog scan raw/ehr/fhir | sha256sum)
	b=$(mlk-catalog scan raw/ehr/fhir | sha256sum)
	[ "$a" = "$b" ]
	run last_event '[.action, .zone, .dataset, .decision, .outputs[0].records, .detail.pruned]'
	assert_output "[\"read\",\"raw\",\"ehr/fhir\",\"allow\",$(wc -l <fhir.ndjson),0]"
}

@test "scan --where reads only the partitions the filter allows" {
	land
	want=$(jq -c 'select(._mlk.type == "fhir:Encounter" and
		(._mlk.partition | capture("year=(?<y>[0-9]+)").y | tonumber) >= 2020)' \
		fhir.ndjson | sort)
	[ -n "$want" ]
	# Take away every data file the filter does not allow: a scan that
	# opened one of them would fail.
	raw=$MLK_LAKE/raw/ehr/fhir
	chmod -R u+w "$raw"
	n=0
	while read -r f; do
		part=${f#"$raw"/batch=*/}
		case $part in
		resourceType=Encounter/year=202[0-9]/*) ;;
		*) rm "$f"; n=$((n + 1)) ;;
		esac
	done < <(find "$raw" -name '*.ndjson.gz')
	[ "$n" -gt 100 ]
	run --separate-stderr mlk-catalog scan raw/ehr/fhir \
		--where 'resourceType=Encounter year>=2020'
	assert_success
	[ "$(printf '%s\n' "$output" | sort)" = "$want" ]
	run last_event '.detail.pruned'
	assert_output "$n"
	# Without the filter the missing files are needed, and missed.
	run --separate-stderr mlk-catalog scan raw/ehr/fhir
	assert_failure 5
	[[ $stderr == *"cannot open"* ]]
	# Nothing matches; a key no partition has.
	run mlk-catalog scan raw/ehr/fhir --where 'resourceType=Encounter year>2100'
	assert_success
	assert_output ''
	run --separate-stderr mlk-catalog scan raw/ehr/fhir --where 'facility=north'
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: 'facility' is not a partition key of raw/ehr/fhir"
	run --separate-stderr mlk-catalog scan raw/ehr/fhir --where 'year~2020'
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: --where condition 1 is not KEY OP VALUE"
	run --separate-stderr mlk-catalog scan ehr/fhir
	assert_failure 2
}

@test "scan without a grant is denied with exit 3, and the denial is audited" {
	land
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog scan raw/ehr/fhir \
		--purpose "cohort"
	assert_failure 3
	assert_output ''
	assert_equal "$stderr" "mlk-catalog: read of raw/ehr/fhir denied for user 'eve' by policy rule 'default-deny'"
	run last_event '[.actor.user, .action, .zone, .dataset, .purpose, .decision, .rule, .status]'
	assert_output '["eve","read","raw","ehr/fhir","cohort","deny","default-deny",3]'
}

@test "grant conditions: sensitivity from the descriptor, project, purpose, expiry" {
	land
	cat >"$MLK_LAKE/policy.yaml" <<-EOF
	version: 1
	owner: $(id -un)
	test_identity_override: true
	roles:
	  researcher: {users: [eve]}
	grants:
	  - role: researcher
	    actions: [read]
	    zones: [raw]
	    sensitivity: [internal]
	    projects: [hf]
	    purpose_required: true
	    expires: "2030-01-01T00:00:00Z"
	EOF
	mlk-catalog add ehr/hl7 >/dev/null
	export MLK_TEST_USER=eve
	# restricted (the default label): no
	run mlk-catalog scan raw/ehr/hl7 --project hf --purpose x
	assert_failure 3
	MLK_TEST_USER= mlk-catalog set ehr/hl7 sensitivity=internal >/dev/null
	run mlk-catalog scan raw/ehr/hl7 --project hf --purpose x
	assert_success
	run last_event '.rule'
	assert_output '"grants[0]"'
	run mlk-catalog scan raw/ehr/hl7 --project other --purpose x
	assert_failure 3
	run mlk-catalog scan raw/ehr/hl7 --project hf
	assert_failure 3
	MLK_TEST_NOW=1893456000 run mlk-catalog scan raw/ehr/hl7 --project hf --purpose x
	assert_failure 3
	# No descriptor: treated as restricted.
	run mlk-catalog scan raw/ehr/fhir --project hf --purpose x
	assert_failure 3
}

@test "a granted request is in force until it expires; both steps audited" {
	land
	cat >"$MLK_LAKE/policy.yaml" <<-EOF
	version: 1
	owner: $(id -un)
	test_identity_override: true
	roles:
	  researcher: {users: [eve]}
	requests:
	  - role: researcher
	    datasets: ["ehr/*"]
	    decide: grant
	    days: 7
	EOF
	export MLK_TEST_USER=eve
	now=$(date +%s)
	export MLK_TEST_NOW=$now
	run mlk-catalog scan raw/ehr/hl7
	assert_failure 3
	run --separate-stderr mlk-catalog request ehr/hl7
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: a request needs --purpose"
	run --separate-stderr mlk-catalog request ehr/hl7 --purpose "ADT volume study" --project ops
	assert_success
	id=$(jq -r .id <<<"$output")
	[[ $id =~ ^r-[0-9a-f]{16}$ ]]
	run jq -c '[.status, .rule, .user, .action, .zone, .dataset, .expires]' <<<"$output"
	assert_output "[\"granted\",\"requests[0]\",\"eve\",\"read\",\"raw\",\"ehr/hl7\",\"$(date -u -d @$((now + 7 * 86400)) +%Y-%m-%dT%H:%M:%SZ)\"]"
	assert_file_exists "$MLK_LAKE/catalog/requests/$id.json"
	run jq -c 'select(.action | startswith("access.")) | [.action, .detail.request, .detail.status, .decision]' "$MLK_LAKE/audit/log.ndjson"
	assert_output "[\"access.request\",\"$id\",\"granted\",\"allow\"]
[\"access.decide\",\"$id\",\"granted\",\"allow\"]"
	run mlk-catalog grants
	assert_equal "$(jq -r .id <<<"$output")" "$id"
	run mlk-catalog scan raw/ehr/hl7
	assert_success
	cmp <(sort hl7.ndjson) <(printf '%s\n' "$output" | sort)
	run last_event '.rule'
	assert_output "\"request:$id\""
	# Only for what was asked.
	run mlk-catalog scan raw/ehr/fhir
	assert_failure 3
	# Eight days later it has expired.
	export MLK_TEST_NOW=$((now + 8 * 86400))
	run mlk-catalog scan raw/ehr/hl7
	assert_failure 3
	run mlk-catalog grants
	assert_output ''
	MLK_TEST_USER= run mlk-catalog grants --user eve
	assert_output ''
}

@test "requests: denied by rule, queued for an approver, approved or denied once" {
	land
	cat >"$MLK_LAKE/policy.yaml" <<-EOF
	version: 1
	owner: $(id -un)
	test_identity_override: true
	roles:
	  researcher: {users: [eve, bob]}
	  steward: {users: [sam]}
	requests:
	  - role: researcher
	    datasets: ["ehr/fhir"]
	    decide: deny
	  - role: researcher
	    decide: queue
	    approver: steward
	    days: 3
	EOF
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog request ehr/fhir --purpose x
	assert_failure 3
	id=$(jq -r .id <<<"$output")
	assert_equal "$stderr" "mlk-catalog: request $id for read on raw/ehr/fhir denied for user 'eve' by policy rule 'requests[0]'"
	MLK_TEST_USER=mallory run --separate-stderr mlk-catalog request ehr/hl7 --purpose x
	assert_failure 3
	assert_equal "$(jq -r .rule <<<"$output")" "default-deny"
	MLK_TEST_USER=eve run mlk-catalog request ehr/hl7 --purpose "study"
	assert_success
	id=$(jq -r .id <<<"$output")
	assert_equal "$(jq -r '.status + " " + .approver' <<<"$output")" "queued steward"
	MLK_TEST_USER=eve run mlk-catalog scan raw/ehr/hl7
	assert_failure 3
	# Not the requester, not another researcher.
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog approve "$id"
	assert_failure 3
	[[ $stderr == *"by policy rule 'self-approval'" ]]
	MLK_TEST_USER=bob run --separate-stderr mlk-catalog approve "$id"
	assert_failure 3
	run last_event '[.actor.user, .action, .decision, .detail.request]'
	assert_output "[\"bob\",\"approve\",\"deny\",\"$id\"]"
	MLK_TEST_USER=sam run --separate-stderr mlk-catalog approve "$id"
	assert_success
	assert_equal "$(jq -r '.status + " " + .decided_by' <<<"$output")" "granted sam"
	run last_event '[.actor.user, .action, .decision, .detail.request, .detail.status]'
	assert_output "[\"sam\",\"access.decide\",\"allow\",\"$id\",\"granted\"]"
	MLK_TEST_USER=eve run mlk-catalog scan raw/ehr/hl7
	assert_success
	MLK_TEST_USER=sam run --separate-stderr mlk-catalog deny "$id"
	assert_failure 2
	# A second request, denied by the steward.
	MLK_TEST_USER=bob run mlk-catalog request ehr/synthea --purpose y
	id2=$(jq -r .id <<<"$output")
	MLK_TEST_USER=sam run mlk-catalog deny "$id2"
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" "denied"
	MLK_TEST_USER=bob run mlk-catalog scan raw/ehr/synthea
	assert_failure 3
	run --separate-stderr mlk-catalog approve r-0000000000000000
	assert_failure 2
	run --separate-stderr mlk-catalog approve ../x
	assert_failure 2
}

@test "models: registering in parallel loses no model in the descriptor" {
	land
	mlk-catalog add ehr/fhir >/dev/null
	echo '{}' >p.json
	for i in 1 2 3 4 5 6 7 8; do
		mlk-catalog model register "m$i" --snapshot s-1 --code c \
			--params p.json --metrics p.json --dataset ehr/fhir >/dev/null &
	done
	mlk-catalog set ehr/fhir owner=alice >/dev/null &
	wait
	run mlk-catalog show ehr/fhir
	assert_success
	assert_equal "$(jq -r '.models[].model' <<<"$output" | sort | tr '\n' ' ')" "m1@1 m2@1 m3@1 m4@1 m5@1 m6@1 m7@1 m8@1 "
}

@test "models: register, promote, and the dataset's descriptor lists them" {
	land
	mlk-catalog add ehr/fhir >/dev/null
	echo '{"learning_rate": 0.1, "depth": 6}' >params.json
	echo '{"auc": 0.81}' >metrics.json
	run --separate-stderr mlk-catalog model register hf-readmit \
		--snapshot s-0123abcd --code 3f9a0c1 --params params.json \
		--metrics metrics.json --dataset ehr/fhir
	assert_success
	run jq -c '[.ref, .version, .snapshot, .code, .stage, .datasets, .params_sha256]' <<<"$output"
	assert_output "[\"hf-readmit@1\",1,\"s-0123abcd\",\"3f9a0c1\",\"registered\",[\"ehr/fhir\"],\"$(sha256sum <params.json | cut -c1-64)\"]"
	cmp params.json "$MLK_LAKE/catalog/models/hf-readmit/1.params"
	cmp metrics.json "$MLK_LAKE/catalog/models/hf-readmit/1.metrics"
	run last_event '[.action, .inputs, .outputs]'
	assert_output '["model.register",[{"snapshot":"s-0123abcd"}],[{"model":"hf-readmit@1"}]]'
	run mlk-catalog model register hf-readmit --snapshot s-2 --code c2 \
		--params params.json --metrics metrics.json
	assert_equal "$(jq -r .ref <<<"$output")" "hf-readmit@2"
	# One step at a time; the approver role (here: the owner) promotes.
	run --separate-stderr mlk-catalog model promote hf-readmit@1 --to deployed
	assert_failure 2
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog model promote hf-readmit@1 --to validated
	assert_failure 3
	run last_event '[.actor.user, .action, .decision]'
	assert_output '["eve","model.promote","deny"]'
	for s in validated approved deployed; do
		run mlk-catalog model promote hf-readmit@1 --to $s
		assert_success
	done
	run mlk-catalog show ehr/fhir
	assert_equal "$(jq -c .models <<<"$output")" '[{"model":"hf-readmit@1","snapshot":"s-0123abcd","stage":"deployed"}]'
	run mlk-catalog model show hf-readmit@1
	assert_equal "$(jq -c '[.history[].stage]' <<<"$output")" '["registered","validated","approved","deployed"]'
	run mlk-catalog model show hf-readmit
	assert_equal "$(jq -r .ref <<<"$output")" "hf-readmit@2"
	run mlk-catalog model list
	assert_equal "$(jq -r .ref <<<"$output" | tr '\n' ' ')" "hf-readmit@1 hf-readmit@2 "
	run mlk-catalog model promote hf-readmit@1 --to deprecated
	assert_success
	run --separate-stderr mlk-catalog model promote hf-readmit@1 --to deployed
	assert_failure 2
	run --separate-stderr mlk-catalog model register Bad/Name --snapshot s --code c \
		--params params.json --metrics metrics.json
	assert_failure 2
	run --separate-stderr mlk-catalog model register m --snapshot s --code c \
		--params params.json --metrics metrics.json --dataset ehr/none
	assert_failure 2
	# With snapshots in the lake, the snapshot must be one of them.
	mkdir -p "$MLK_LAKE/snapshots/s-real"
	run --separate-stderr mlk-catalog model register m --snapshot s-fake --code c \
		--params params.json --metrics metrics.json
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: no snapshot 's-fake' in the lake"
	run mlk-catalog model register m --snapshot s-real --code c \
		--params params.json --metrics metrics.json
	assert_success
}

@test "scan refuses a manifest naming a file outside its batch, and a stored line cut short" {
	land
	m=$(ls "$MLK_LAKE"/raw/ehr/hl7/batch=*/_manifest.json)
	chmod u+w "$m" "$(dirname "$m")"
	sed -i '2s|"path":"|"path":"../../|' "$m"
	run --separate-stderr mlk-catalog scan raw/ehr/hl7
	assert_failure 4
	[[ $stderr == *"_manifest.json': names a file outside its batch" ]]
	sed -i '2s|"path":"../../|"path":"|' "$m"
	f=$(ls "$MLK_LAKE"/raw/ehr/hl7/batch=*/*/*/*/*.ndjson.gz | head -1)
	chmod u+w "$f" "$(dirname "$f")"
	gzip -dc "$f" | head -c -3 | gzip >"$f.new" && mv "$f.new" "$f"
	run --separate-stderr mlk-catalog scan raw/ehr/hl7
	assert_failure 4
	[[ $stderr == *"stored record does not end its envelope" ]]
}

# --- catalog 3 ---

# Records as jq -S lines without the envelope, sorted: what a version holds.
bodies() {
	jq -S -c 'del(._mlk)' "$@" | sort
}

@test "scan --version gives exactly a snapshot's records, --where pruned, audited" {
	land
	mlk-deid --project t fhir.ndjson 2>/dev/null >deid.ndjson
	v1=$(mlk-snapshot create --quiet curated/ehr/fhir <deid.ndjson | jq -r .snapshot)
	jq -c 'select(._mlk.type == "fhir:Patient")' deid.ndjson >pat.ndjson
	[ -s pat.ndjson ]
	v2=$(mlk-snapshot create --quiet curated/ehr/fhir <pat.ndjson | jq -r .snapshot)
	[ "$v1" != "$v2" ]
	run --separate-stderr mlk-catalog scan curated/ehr/fhir --version "$v1"
	assert_success
	[ -z "$stderr" ]
	[ "$(wc -l <deid.ndjson)" -gt "$(wc -l <pat.ndjson)" ]
	cmp <(bodies deid.ndjson) <(printf '%s\n' "$output" | bodies)
	run jq -r '[._mlk.zone, ._mlk.dataset, ._mlk.snapshot] | join(" ")' <<<"$output"
	assert_equal "$(printf '%s\n' "$output" | sort -u)" "curated ehr/fhir $v1"
	run last_event '[.action, .zone, .dataset, .decision, .outputs[0].records, .detail.snapshot, .detail.version]'
	assert_output "[\"read\",\"curated\",\"ehr/fhir\",\"allow\",$(wc -l <deid.ndjson),\"$v1\",1]"
	# Without --version: the latest.
	run mlk-catalog scan curated/ehr/fhir
	assert_success
	cmp <(bodies pat.ndjson) <(printf '%s\n' "$output" | bodies)
	# --where opens only the files whose partition it allows: take the
	# others away, and the scan still succeeds.
	want=$(jq -c 'select(._mlk.type == "fhir:Patient") | del(._mlk)' deid.ndjson | sort)
	[ -n "$want" ]
	dir=$MLK_LAKE/curated/ehr/fhir/snapshot=$v1
	chmod u+w "$dir"
	for f in "$dir"/*/*.gz; do
		case $f in */type=fhir%3APatient/*) ;; *) rm "$f" ;; esac
	done
	run --separate-stderr mlk-catalog scan curated/ehr/fhir --version "$v1" --where 'type=fhir:Patient'
	assert_success
	[ "$(printf '%s\n' "$output" | jq -c 'del(._mlk)' | sort)" = "$want" ]
	run last_event '.detail.pruned > 0 and .detail.files > 0'
	assert_output true
	# Misuse: raw has no versions; another dataset's version; unknown key.
	run --separate-stderr mlk-catalog scan raw/ehr/fhir --version "$v1"
	assert_failure 2
	[[ $stderr == *"--version reads curated or training"* ]]
	mlk-deid --project t hl7.ndjson 2>/dev/null | mlk-snapshot create --quiet curated/ehr/hl7 >/dev/null
	run --separate-stderr mlk-catalog scan curated/ehr/hl7 --version "$v1"
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: snapshot $v1 is a version of curated/ehr/fhir, not of curated/ehr/hl7"
	run --separate-stderr mlk-catalog scan curated/ehr/fhir --version "$v1" --where 'facility=north'
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: 'facility' is not a partition key of curated/ehr/fhir"
	run --separate-stderr mlk-catalog scan training/none --version "$v1"
	assert_failure 2
	run --separate-stderr mlk-catalog scan training/none
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: training/none has no snapshots"
	# A reader without a grant: denied, exit 3, audited.
	MLK_TEST_USER=eve run --separate-stderr mlk-catalog scan curated/ehr/fhir \
		--version "$v1" --purpose cohort
	assert_failure 3
	assert_output ''
	run last_event '[.actor.user, .action, .zone, .decision, .rule, .status]'
	assert_output '["eve","read","curated","deny","default-deny",3]'
}

@test "ingest keeps the descriptor's derived parts current; person-edited keys survive" {
	mklake
	head -n 40 "$DATA/synthea-csv/encounters.csv" >enc1.csv
	{ head -n 1 "$DATA/synthea-csv/encounters.csv"; sed -n '41,90p' "$DATA/synthea-csv/encounters.csv"; } >enc2.csv
	mlk-ingest --quiet --dataset ehr/enc enc1.csv >one.ndjson
	f=$MLK_LAKE/catalog/datasets/ehr/enc.yaml
	assert_file_exists "$f"
	run mlk-catalog show ehr/enc
	assert_success
	run jq -c '[.owner, .sensitivity, .added_by, .derived.records, (.derived.batches | length), .derived.partitions, .derived.types]' <<<"$output"
	assert_output "[\"$(id -un)\",\"restricted\",\"\",39,1,[\"table\",\"year\",\"month\"],[\"csv:enc1\"]]"
	# The listing and search see it at once.
	run mlk-catalog search csv:enc1
	assert_equal "$(jq -r .dataset <<<"$output")" "ehr/enc"
	mlk-catalog set ehr/enc steward=sam description="encounters export" \
		consent="research" >/dev/null
	mlk-ingest --quiet --dataset ehr/enc enc2.csv >two.ndjson
	run mlk-catalog show ehr/enc
	run jq -c '[.steward, .description, .consent, .derived.records, (.derived.batches | length), .derived.types]' <<<"$output"
	assert_output '["sam","encounters export","research",89,2,["csv:enc1","csv:enc2"]]'
	# The merged schema is what a full refresh finds (small batches are
	# read whole).
	merged=$(mlk-catalog show ehr/enc | jq -c '.derived | del(.refreshed)')
	fresh=$(mlk-catalog refresh ehr/enc | jq -c '.derived | del(.refreshed)')
	assert_equal "$merged" "$fresh"
	[ "$(jq '.schema | length' <<<"$merged")" -gt 5 ]
	# Without values: no field value of the records is in the descriptor.
	val=$(jq -r '.Id' one.ndjson | head -n 1)
	! grep -qF "$val" "$f"
	# Ingesting the same bytes again changes nothing.
	before=$(sha256sum <"$f")
	mlk-ingest --quiet --dataset ehr/enc enc1.csv >/dev/null 2>&1
	[ "$(sha256sum <"$f")" = "$before" ]
	# add catalogues a tool-made descriptor once, keeping what it has.
	run --separate-stderr mlk-catalog add ehr/enc sensitivity=internal
	assert_success
	run jq -c '[.added_by, .sensitivity, .steward, .derived.records]' <<<"$output"
	assert_output "[\"$(id -un)\",\"internal\",\"sam\",89]"
	run --separate-stderr mlk-catalog add ehr/enc
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: dataset 'ehr/enc' is already in the catalog"
	run --separate-stderr mlk-catalog set ehr/enc added_by=eve
	assert_failure 2
}

@test "snapshot create lists the version in the descriptor; a training set is described by it" {
	land
	mlk-deid --project t hl7.ndjson 2>/dev/null >deid.ndjson
	made=$(mlk-snapshot create --quiet curated/ehr/hl7 <deid.ndjson)
	id=$(jq -r .snapshot <<<"$made")
	run mlk-catalog show ehr/hl7
	run jq -c '.versions' <<<"$output"
	assert_output --regexp "^\[\{\"snapshot\":\"$id\",\"zone\":\"curated\",\"version\":1,\"records\":$(wc -l <deid.ndjson),\"created\":\"[0-9TZ:-]+\"\}\]$"
	# The same records again: the same version, listed once.
	mlk-snapshot create --quiet curated/ehr/hl7 <deid.ndjson >/dev/null
	run mlk-catalog show ehr/hl7
	run jq '.versions | length' <<<"$output"
	assert_output 1
	# A dataset that only exists as snapshots: derived from the snapshot.
	head -n 7 deid.ndjson | mlk-snapshot create --quiet training/hl7-cohort >/dev/null
	run mlk-catalog show hl7-cohort
	assert_success
	run jq -c '[.derived.records, .derived.batches, (.derived.schema | map(.field) | index("MSH") != null), .versions[0].zone]' <<<"$output"
	assert_output '[7,[],true,"training"]'
}

@test "vocabulary at ingest: synonyms become preferred terms in records and partition folders" {
	mklake
	cat >"$MLK_LAKE/vocab.yaml" <<-'EOF'
	version: 1
	keys: [modality]
	fields:
	  modality: modality
	  assay: assay
	terms:
	  cardiology: [cardiac]
	vocabularies:
	  modality:
	    CT: [computed tomography, thoracic CT, CT chest]
	    MR: [MRI, magnetic resonance]
	  assay:
	    WGS: [whole genome sequencing, whole-genome]
	EOF
	sed -i 's|^datasets: {}$|datasets:\n  img/studies:\n    partitions:\n      ndjson: [modality]\n      csv: [modality, assay]|' \
		"$MLK_LAKE/mlk.yaml"
	printf '%s\n' '{"id":"a","modality":"thoracic CT","note":{"modality":"MRI"}}' \
		'{"id":"b","modality":"mri","assay":"whole-genome"}' \
		'{"id":"c","modality":"cardiac"}' '{"id":"d","modality":7}' >s.ndjson
	printf 'id,modality,assay\ne,CT chest,whole genome sequencing\nf,PET,panel\n' >s.csv
	run --separate-stderr mlk-ingest --quiet --dataset img/studies s.ndjson s.csv
	assert_success
	run jq -c '[.id, .modality, .assay, .note.modality, ._mlk.partition]' <<<"$output"
	assert_output - <<-'EOF'
	["a","CT",null,"MRI","modality=CT"]
	["b","MR","WGS",null,"modality=MR"]
	["c","cardiac",null,null,"modality=cardiac"]
	["d",7,null,null,"modality=7"]
	["e","CT","WGS",null,"modality=CT/assay=WGS"]
	["f","PET","panel",null,"modality=PET/assay=panel"]
	EOF
	raw=$MLK_LAKE/raw/img/studies
	run bash -c "cd '$raw' && find . -name '*.gz' | sed 's|^./batch=[^/]*/||; s|/[^/]*$||' | sort -u"
	assert_output - <<-'EOF'
	modality=7
	modality=CT
	modality=CT/assay=WGS
	modality=MR
	modality=PET/assay=panel
	modality=cardiac
	EOF
	# What scan gives back is what ingest printed.
	run mlk-catalog scan raw/img/studies --where 'modality=CT'
	[ "$(printf '%s\n' "$output" | jq -r .id | sort | tr '\n' ' ')" = "a e " ]
	# vocab check keeps working on descriptors.
	mlk-catalog set img/studies modality="CT chest" >/dev/null
	run mlk-catalog vocab check
	assert_success
	mlk-catalog set img/studies modality=ultrasound >/dev/null
	run --separate-stderr mlk-catalog vocab check
	assert_failure 1
	assert_output '{"dataset":"img/studies","key":"modality","value":"ultrasound"}'
	# A field naming no vocabulary is refused before anything lands.
	printf 'fields:\n  modality: imaging\n' >"$MLK_LAKE/vocab.yaml"
	echo '{"id":"z","modality":"MRI"}' >z.ndjson
	run --separate-stderr mlk-ingest --quiet --dataset img/studies z.ndjson
	assert_failure 2
	[[ $stderr == *"vocab.yaml':2: field 'modality' names no vocabulary 'imaging'"* ]]
	[ "$(ls "$raw" | grep -c '^batch=')" -eq 1 ]
}

@test "consent scope: a grant with consent: required allows only purposes in scope; denials audited" {
	land
	cat >"$MLK_LAKE/policy.yaml" <<-EOF
	version: 1
	owner: $(id -un)
	test_identity_override: true
	roles:
	  researcher: {users: [rita]}
	grants:
	  - role: researcher
	    actions: [read]
	    zones: [raw]
	    datasets: [ehr/fhir, ehr/hl7]
	    consent: required
	requests:
	  - role: researcher
	    datasets: [ehr/synthea]
	    consent: required
	    decide: grant
	    days: 7
	EOF
	mlk-catalog set ehr/fhir 'consent=research, ai-training' >/dev/null
	mlk-catalog set ehr/synthea consent=quality-improvement >/dev/null
	export MLK_TEST_USER=rita
	run --separate-stderr mlk-catalog scan raw/ehr/fhir --purpose "marketing analysis"
	assert_failure 3
	assert_output ''
	assert_equal "$stderr" "mlk-catalog: read of raw/ehr/fhir denied for user 'rita' by policy rule 'grants[0]:consent'"
	run last_event '[.actor.user, .action, .purpose, .decision, .rule, .status]'
	assert_output '["rita","read","marketing analysis","deny","grants[0]:consent",3]'
	# No purpose is never in scope; a word inside another is not either.
	run mlk-catalog scan raw/ehr/fhir
	assert_failure 3
	run mlk-catalog scan raw/ehr/fhir --purpose "non-research use"
	assert_failure 3
	# In scope (case-insensitively, as a word of the purpose): granted.
	run --separate-stderr mlk-catalog scan raw/ehr/fhir --purpose "AI-training: HF readmission"
	assert_success
	[ "$(printf '%s\n' "$output" | wc -l)" -eq "$(wc -l <fhir.ndjson)" ]
	run last_event '[.decision, .rule, .purpose]'
	assert_output '["allow","grants[0]","AI-training: HF readmission"]'
	# A consent list in the YAML works the same; no scope at all denies.
	sed -i 's/^consent: .*/consent: [research]/' "$MLK_LAKE/catalog/datasets/ehr/fhir.yaml"
	run mlk-catalog scan raw/ehr/fhir --purpose research
	assert_success
	run mlk-catalog scan raw/ehr/hl7 --purpose research
	assert_failure 3
	# Requests: the rule that failed on consent alone is named.
	run --separate-stderr mlk-catalog request ehr/synthea --purpose research
	assert_failure 3
	run jq -r '[.status, .rule] | join(" ")' <<<"$output"
	assert_output 'denied requests[0]:consent'
	run last_event '[.action, .decision, .rule]'
	assert_output '["access.decide","deny","requests[0]:consent"]'
	run --separate-stderr mlk-catalog request ehr/synthea --purpose "quality-improvement audit"
	assert_success
	rid=$(jq -r .id <<<"$output")
	run jq -r .status <<<"$output"
	assert_output granted
	# grants lists the policy's grants in force for the user, then the
	# granted requests.
	run --separate-stderr mlk-catalog grants
	assert_success
	run jq -c '[.user, (if .grant then .rule else .id end), .grant.consent // .status]' <<<"$output"
	assert_output - <<-EOF
	["rita","grants[0]","required"]
	["rita","$rid","granted"]
	EOF
	MLK_TEST_USER= run mlk-catalog grants --user nobody-here
	assert_success
	assert_output ''
}

# --- check ---
# Quality gates (mlk-expect(5)): expectations per dataset, a JSON report.

# The shared FHIR sample as one stream (no lake needed to read it).
fhir() {
	cat "$DATA"/fhir/*.ndjson
}

# The line number of the first record of a resource type in fhir.
first_of() {
	fhir | grep -n "^{\"resourceType\":\"$1\"" | head -1 | cut -d: -f1
}

# fhir with line N replaced by jq's FILTER applied to it.
seeded() {
	local n=$1 filter=$2
	fhir | awk -v n="$n" 'NR != n' >rest.ndjson
	fhir | sed -n "${n}p" | jq -c "$filter" >one.ndjson
	{ head -n $((n - 1)) rest.ndjson; cat one.ndjson
	  tail -n +"$n" rest.ndjson; }
}

# check ARGS... < stdin: the report in report.json, validated by jq.
check() {
	run --separate-stderr mlk-catalog check "$@"
	printf '%s\n' "$output" >report.json
	jq -e 'type == "object" and (.expectations | type == "array")' \
		report.json >/dev/null
}

failed_names() {
	jq -c '[.expectations[] | select(.pass | not) | .name]' report.json
}

@test "check: the shared FHIR and Synthea samples pass their defaults" {
	mklake
	check ehr/fhir --defaults fhir < <(fhir)
	assert_success
	assert_equal "$(jq -r '.pass, .records, .invalid' report.json | xargs)" \
		"true 5945 0"
	assert_equal "$(failed_names)" "[]"
	assert_equal "$(jq '.expectations | length' report.json)" 17
	assert_equal "$(jq '[.expectations[] | select(.checked == 0)] | length' \
		report.json)" 0
	# Through the pipeline: records as mlk-ingest prints them.
	mlk-ingest --quiet --dataset ehr/synthea "$DATA/synthea-csv" >syn.ndjson
	check ehr/synthea --defaults synthea <syn.ndjson
	assert_success
	assert_equal "$(jq -r .pass report.json)" true
	assert_equal "$(failed_names)" "[]"
	assert_equal "$(jq -r '.expectations[] | select(.name == "patient-id-unique")
		| .checked' report.json)" 27
	# The audit log has the check, with the report's digest, no values.
	ev=$(mlk-audit query --action check | tail -1)
	assert_equal "$(jq -r .detail.report_sha256 <<<"$ev")" \
		"$(sha256sum report.json | cut -d' ' -f1)"
}

@test "check: each seeded defect is caught by exactly its expectation" {
	mklake
	enc=$(first_of Encounter)
	pat=$(first_of Patient)
	# A record without its date.
	check ehr/fhir --defaults fhir < <(seeded "$enc" 'del(.period.start)')
	assert_failure 1
	assert_equal "$(failed_names)" '["encounter-start"]'
	assert_equal "$(jq -c '.expectations[] | select(.name == "encounter-start")
		| [.failed, .first_lines]' report.json)" "[1,[$enc]]"
	# A dangling reference.
	check ehr/fhir --defaults fhir < <(seeded "$enc" \
		'.subject.reference = "Patient/no-such-patient"')
	assert_failure 1
	assert_equal "$(failed_names)" '["encounter-subject-resolves"]'
	assert_equal "$(jq -c '.expectations[] | select(.pass | not) |
		.first_lines' report.json)" "[$enc]"
	# A date in the future.
	check ehr/fhir --defaults fhir < <(seeded "$enc" \
		'.period.start = "2999-01-01T00:00:00Z"')
	assert_failure 1
	assert_equal "$(failed_names)" '["encounter-start-past"]'
	# A duplicated key: the first Patient twice.
	check ehr/fhir --defaults fhir < <(fhir; fhir | sed -n "${pat}p")
	assert_failure 1
	assert_equal "$(failed_names)" '["resource-id-unique"]'
	assert_equal "$(jq -c '.expectations[] | select(.pass | not) |
		.first_lines' report.json)" "[5946]"
	# An unknown code.
	check ehr/fhir --defaults fhir < <(seeded "$pat" '.gender = "robot"')
	assert_failure 1
	assert_equal "$(failed_names)" '["patient-gender"]'
	# An age out of range.
	check ehr/fhir --defaults fhir < <(seeded "$pat" '.birthDate = "1850-01-01"')
	assert_failure 1
	assert_equal "$(failed_names)" '["patient-age"]'
	# No value of the input reaches the report or stderr.
	run ! grep -q -e robot -e 1850 -e no-such-patient report.json
	[[ -z $stderr ]]
}

@test "check: a shifted distribution fails psi against a reference snapshot" {
	mklake
	gen_ehr --format flat --records 400 --seed 5 |
		jq -c '{sex, diagnosis_code, heart_rate, encounter_date,
			_mlk: {v: 1, deid: {profile: "safe-harbor"}}}' >base.ndjson
	ref=$(mlk-snapshot create --quiet curated/vitals <base.ndjson | jq -r .snapshot)
	cat >exp.yaml <<'YAML'
expectations:
  - {name: sex-psi, kind: psi, field: sex, max: 0.1}
  - {name: heart-rate-psi, kind: psi, field: heart_rate, max: 0.1}
  - {name: date-required, kind: required, field: encounter_date}
YAML
	check curated/vitals --expectations exp.yaml --reference "$ref" <base.ndjson
	assert_success
	assert_equal "$(jq '[.expectations[].psi | select(. != null)] | max < 0.01' \
		report.json)" true
	# Every record "F": the sex distribution shifts, heart rate does not.
	jq -c '.sex = "F"' base.ndjson >shifted.ndjson
	check curated/vitals --expectations exp.yaml --reference "$ref" <shifted.ndjson
	assert_failure 1
	assert_equal "$(failed_names)" '["sex-psi"]'
	assert_equal "$(jq '.expectations[0].psi > 0.1' report.json)" true
	# Numeric bins come from the reference: a shift of +40 bpm fails.
	jq -c '.heart_rate += 40' base.ndjson >faster.ndjson
	check curated/vitals --expectations exp.yaml --reference "$ref" <faster.ndjson
	assert_failure 1
	assert_equal "$(failed_names)" '["heart-rate-psi"]'
	# --snapshot checks a stored version; positions are record numbers.
	check curated/vitals --expectations exp.yaml --reference "$ref" \
		--snapshot "$ref"
	assert_success
	assert_equal "$(jq -c '.source, .records' report.json | xargs)" \
		"{snapshot:$ref} 400"
	assert_equal "$(jq -r '.expectations[2] | has("first_records")' \
		report.json)" true
}

@test "check: types, null share, in_set, vocabulary, pattern, freshness, warnings" {
	mklake
	sed -i 's/^test_clock: false/test_clock: true/' "$MLK_LAKE/mlk.yaml"
	grep -q '^test_clock: true' "$MLK_LAKE/mlk.yaml" ||
		echo 'test_clock: true' >>"$MLK_LAKE/mlk.yaml"
	export MLK_TEST_NOW=1780272000   # 2026-06-01
	cat >"$MLK_LAKE/vocab.yaml" <<'YAML'
version: 1
terms:
  heart failure: [HF, cardiac failure]
  diabetes: [DM]
YAML
	cat >exp.yaml <<'YAML'
expectations:
  - {name: n-int, kind: type, field: n, type: integer}
  - {name: d-date, kind: type, field: d, type: date}
  - {name: x-null, kind: null_share, field: x, max: 0.7}
  - {name: code, kind: in_set, field: 'codes[*]', values: [a, b]}
  - {name: dx, kind: in_vocab, field: dx, preferred: [heart failure]}
  - {name: loinc, kind: pattern, field: 'obs[*].code', pattern: '^[0-9]{1,5}-[0-9]$'}
  - {name: n-range, kind: range, field: n, min: 0, max: 10}
  - {name: fresh, kind: freshness, field: d, days: 30}
  - {name: fresh-warn, kind: freshness, field: d, days: 1, severity: warning}
YAML
	cat >in.ndjson <<'NDJSON'
{"n":1,"d":"2026-05-20","x":1,"codes":["a","b"],"dx":"HF","obs":[{"code":"2345-7"}]}
{"n":2,"d":"2026-05-21","x":null,"codes":["a"],"dx":"Cardiac Failure","obs":[{"code":"718-7"},{"code":"4548-4"}]}
{"n":3,"d":"2026-05-22","codes":[],"dx":"heart failure","obs":[]}
NDJSON
	check t/x --expectations exp.yaml <in.ndjson
	assert_success
	assert_equal "$(failed_names)" '["fresh-warn"]'
	assert_equal "$(jq -c '.failed_blocking, .failed_warning' report.json | xargs)" "0 1"
	assert_equal "$(jq -c '.expectations[] | select(.name == "x-null") |
		[.checked, .failed, .share]' report.json)" '[3,2,0.666667]'
	cat >bad.ndjson <<'NDJSON'
{"n":1.5,"d":"2026-02-30","x":1,"codes":["c"],"dx":"DM","obs":[{"code":"12-345"}]}
{"n":11,"d":"2020-01-01","x":2,"codes":["a"],"dx":"flu","obs":[{"code":"2345-7"}]}
not json
NDJSON
	check t/x --expectations exp.yaml <bad.ndjson
	assert_failure 1
	assert_equal "$(jq -c '[.expectations[] | {(.name): .first_lines}] | add' \
		report.json)" \
		'{"n-int":[1],"d-date":[1],"x-null":[],"code":[1],"dx":[1,2],"loinc":[1],"n-range":[2],"fresh":[],"fresh-warn":[]}'
	assert_equal "$(jq -c '[.invalid, .invalid_lines]' report.json)" '[1,[3]]'
	assert_equal "$(failed_names)" \
		'["n-int","d-date","code","dx","loinc","n-range","fresh","fresh-warn"]'
}

@test "check: unique and references stay correct when keys spill to disk" {
	mklake
	# A limit of 64 keys in memory: the FHIR sample spills ~90 runs.
	fhir | sed -n "$(first_of Patient)p" >dup.ndjson
	MLK_TEST_UNIQUE_RAM=64 check ehr/fhir --defaults fhir < <(fhir)
	assert_success
	MLK_TEST_UNIQUE_RAM=64 check ehr/fhir --defaults fhir < <(cat dup.ndjson; fhir)
	assert_failure 1
	assert_equal "$(failed_names)" '["resource-id-unique"]'
	assert_equal "$(jq -c '.expectations[] | select(.pass | not) |
		[.failed, .first_lines]' report.json)" "[1,[$(( $(first_of Patient) + 1 ))]]"
	# References to another dataset of the lake (its raw zone).
	mlk-ingest --quiet --dataset ehr/patients "$DATA/fhir/Patient.ndjson" >/dev/null
	cat >exp.yaml <<'YAML'
expectations:
  - name: subject-resolves
    kind: references
    field: subject.reference
    where: {resourceType: Encounter}
    target: {dataset: ehr/patients, field: id, prefix: Patient/}
YAML
	check ehr/encounters --expectations exp.yaml <"$DATA/fhir/Encounter.ndjson"
	assert_success
	assert_equal "$(jq '.expectations[0].checked' report.json)" 1215
	check ehr/encounters --expectations exp.yaml < <(sed '3s|Patient/|Patient/x|' \
		"$DATA/fhir/Encounter.ndjson")
	assert_failure 1
	assert_equal "$(jq -c '.expectations[0] | [.failed, .first_lines]' \
		report.json)" '[1,[3]]'
}

@test "check: expectations from the catalog; bad YAML and misuse exit 2" {
	mklake
	run --separate-stderr mlk-catalog check ehr/none </dev/null
	assert_failure 2
	[[ $stderr == *"ehr/none has no expectations"* ]]
	mkdir -p "$MLK_LAKE/catalog/expectations/ehr"
	printf 'expectations:\n  - {name: id, kind: required, field: id}\n' \
		>"$MLK_LAKE/catalog/expectations/ehr/fhir.yaml"
	check ehr/fhir < <(fhir)
	assert_success
	assert_equal "$(jq -r '.expectations_from, .expectations[0].checked' \
		report.json | xargs)" "catalog 5945"
	printf 'expectations:\n  - {name: a, kind: required, field: id}\n  - {name: b, kind: typo, field: id}\n' >bad.yaml
	run --separate-stderr mlk-catalog check ehr/fhir --expectations bad.yaml </dev/null
	assert_failure 2
	assert_equal "$stderr" "mlk-catalog: 'bad.yaml':3: expectation 'b': kind wants one of required, type, null_share, in_set, in_vocab, range, age, pattern, unique, references, freshness, psi"
	printf 'expectations:\n  - {name: p, kind: pattern, field: id, pattern: "a("}\n' >bad.yaml
	run --separate-stderr mlk-catalog check ehr/fhir --expectations bad.yaml </dev/null
	assert_failure 2
	[[ $stderr == "mlk-catalog: 'bad.yaml':2: expectation 'p': pattern: "* ]]
	printf 'expectations: [\n' >bad.yaml
	run --separate-stderr mlk-catalog check ehr/fhir --expectations bad.yaml </dev/null
	assert_failure 2
	[[ $stderr == "mlk-catalog: 'bad.yaml':"* ]]
	printf 'expectations:\n  - {name: p, kind: psi, field: id}\n' >psi.yaml
	run --separate-stderr mlk-catalog check ehr/fhir --expectations psi.yaml </dev/null
	assert_failure 2
	[[ $stderr == *"psi needs a reference snapshot"* ]]
	run --separate-stderr mlk-catalog check ehr/fhir --defaults nope </dev/null
	assert_failure 2
	run --separate-stderr mlk-catalog check </dev/null
	assert_failure 2
}
