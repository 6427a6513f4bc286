#!/usr/bin/env bats
# mlk-snapshot: immutable, content-addressed dataset versions, and the
# lineage that mlk-audit trace follows through them.

load helper

setup() {
	mklake
}

# De-identified records (safe-harbor, project t).
deid() {
	mlk-deid --project t "$@" 2>/dev/null
}

# Ingest the shared FHIR sample once; raw.ndjson keeps the records (a second
# ingest of the same bytes prints nothing).
ingest_fhir() {
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" \
		"$DATA/fhir/Immunization.ndjson" "$DATA/fhir/Condition.ndjson" > raw.ndjson
	deid raw.ndjson > deid.ndjson
}

# create ARGS... < stdin: the snapshot id, with the summary in made.json
create() {
	mlk-snapshot create --quiet "$@" > made.json
	jq -r .snapshot made.json
}

@test "--help prints usage on stdout and exits 0; --version" {
	run --separate-stderr mlk-snapshot --help
	assert_success
	assert_line --index 0 --partial 'usage: mlk-snapshot create'
	[ -z "$stderr" ]
	run mlk-snapshot --version
	assert_success
	assert_output --regexp '^mlk-snapshot [0-9]'
}

@test "usage errors exit 2 with a message and nothing on stdout" {
	run --separate-stderr mlk-snapshot
	assert_failure 2
	run --separate-stderr mlk-snapshot frobnicate
	assert_failure 2
	[[ $stderr == *"unknown command 'frobnicate'"* ]]
	run --separate-stderr mlk-snapshot create
	assert_failure 2
	[ -z "$output" ]
	run --separate-stderr mlk-snapshot create raw/ehr < /dev/null
	assert_failure 2
	[[ $stderr == *"curated/ or training/"* ]]
	run --separate-stderr mlk-snapshot create training/Bad_Name < /dev/null
	assert_failure 2
	run --separate-stderr mlk-snapshot cat --threshold 1 s0
	assert_failure 2
	[[ $stderr == *"no option '--threshold' for cat"* ]]
	run --separate-stderr mlk-snapshot show nope
	assert_failure 2
	[[ $stderr == *"not a snapshot id"* ]]
	run --separate-stderr mlk-snapshot show s000000000000000000000000
	assert_failure 2
	[[ $stderr == *"no snapshot s000000000000000000000000"* ]]
	run --separate-stderr mlk-snapshot verify
	assert_failure 2
	run --separate-stderr mlk-snapshot export --format rar -o x s000000000000000000000000
	assert_failure 2
}

@test "create commits de-identified FHIR records: manifest, blobs, zone layout, audit" {
	ingest_fhir
	id=$(create --note "first cut" curated/fhir < deid.ndjson)
	[[ $id =~ ^s[0-9a-f]{24}$ ]]
	n=$(wc -l < deid.ndjson)
	assert_equal "$(jq -c '{version, records, rejected, unchanged}' made.json)" \
		"{\"version\":1,\"records\":$n,\"rejected\":0,\"unchanged\":false}"
	m=$MLK_LAKE/snapshots/$id.json
	assert_file_exists "$m"
	# header, then entries sorted bytewise; the id is their hash
	assert_equal "$(head -n 1 "$m" | jq -r '"\(.type) \(.id) \(.zone) \(.dataset) \(.note)"')" \
		"snapshot $id curated fhir first cut"
	tail -n +2 "$m" > entries
	sort -c entries
	assert_equal "s$(sha256sum < entries | cut -c1-24)" "$id"
	assert_equal "$(jq -r 'select(.entry == "input") | .batch' entries)" \
		"$(jq -r '._mlk.batch' raw.ndjson | sort -u)"
	assert_equal "$(jq -c 'select(.entry == "deid") | .deid.profile' entries)" '"safe-harbor"'
	assert_equal "$(jq -r 'select(.entry == "layout") | .partitions' entries)" type
	# one file per record type; each stored once in the object store and
	# hard-linked from the version's directory, all read-only
	assert_equal "$(jq -r 'select(.entry == "file") | .partition' entries | tr '\n' ' ')" \
		"type=fhir%3ACondition type=fhir%3AImmunization type=fhir%3APatient "
	dir=$MLK_LAKE/curated/fhir/snapshot=$id
	cmp "$m" "$dir/_manifest.json"
	jq -r 'select(.entry == "file") | "\(.sha256) \(.path)"' entries |
	while read -r sha path; do
		o=$MLK_LAKE/objects/sha256/${sha:0:2}/$sha
		[ "$(sha256sum < "$o" | cut -d' ' -f1)" = "$sha" ]
		[ "$(stat -c %i "$o")" = "$(stat -c %i "$dir/$path")" ]
		[ "$(stat -c %a "$o")" = 444 ]
	done
	# records: the data back, envelope members for the place removed
	assert_equal "$(count_gz "$dir"/*/*.ndjson.gz)" "$n"
	gzip -dc "$dir"/type=fhir%3APatient/*.gz | head -n 1 > stored
	assert_equal "$(jq -c '._mlk | [has("batch"), has("src"), has("deid"), has("dataset"), has("zone"), has("partition")]' stored)" \
		'[true,true,true,false,false,false]'
	# the audit event: inputs are the batch, outputs the id and manifest hash
	tail -n 1 "$MLK_LAKE/audit/log.ndjson" > ev
	assert_equal "$(jq -c '[.action, .decision, .zone, .dataset, .status]' ev)" \
		'["snapshot-create","allow","curated","fhir",0]'
	assert_equal "$(jq -r '.outputs[0].manifest_sha256' ev)" "$(sha256sum < "$m" | cut -d' ' -f1)"
	assert_equal "$(jq -r '.outputs[0].snapshot' ev)" "$id"
	assert_equal "$(jq -r '.inputs[].batch' ev)" "$(jq -r '._mlk.batch' raw.ndjson | sort -u)"
	# no phi in the log
	run grep -c 'Immunization.ndjson' "$MLK_LAKE/audit/log.ndjson"
	assert_output 0
}

@test "rebuilding from the same raw batches gives the same id and stores nothing new" {
	ingest_fhir
	mlk-sample --fraction 0.5 --seed 7 deid.ndjson > s1
	a=$(create --note "v1" training/cohort < s1)
	objs=$(find "$MLK_LAKE/objects" -type f | wc -l)
	# a rebuild: the same raw records, de-identified and sampled again,
	# through a pipe, by a run with another note
	b=$(cat raw.ndjson | deid | mlk-sample --fraction 0.5 --seed 7 |
		mlk-snapshot create --quiet --note "rebuild" training/cohort | jq -r .snapshot)
	assert_equal "$b" "$a"
	assert_equal "$(find "$MLK_LAKE/objects" -type f | wc -l)" "$objs"
	# the same file again is recognised by its digest
	run --separate-stderr mlk-snapshot create training/cohort < s1
	assert_success
	assert_equal "$(jq -c '{snapshot, unchanged, new_files, version}' <<<"$output")" \
		"{\"snapshot\":\"$a\",\"unchanged\":true,\"new_files\":0,\"version\":1}"
	[[ $stderr == *"unchanged, snapshot $a (version 1)"* ]]
	assert_equal "$(mlk-snapshot list training/cohort | wc -l)" 1
	# another seed is another sample, another id, the next version
	c=$(mlk-sample --fraction 0.5 --seed 8 deid.ndjson | create training/cohort)
	[ "$c" != "$a" ]
	assert_equal "$(mlk-snapshot list training/cohort | jq -r '"\(.version) \(.snapshot) \(.parent)"' | tr '\n' ' ')" \
		"1 $a null 2 $c $a "
	assert_equal "$(jq -c 'select(.entry == "sample") | .sample.seed' "$MLK_LAKE/snapshots/$c.json")" 8
}

@test "an unchanged input file is known without reading it; a changed one is not" {
	ingest_fhir
	# older than a second: not "racy", so its identity is recorded
	sleep 2
	a=$(create training/cohort < deid.ndjson)
	b=$(create training/cohort < deid.ndjson)
	assert_equal "$b" "$a"
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.detail.unchanged, .detail.known_by]')" \
		'[true,"file"]'
	# the same bytes in another file: known by digest
	cp deid.ndjson copy.ndjson
	assert_equal "$(create training/cohort < copy.ndjson)" "$a"
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -r .detail.known_by)" digest
	# a byte changed in place (same inode, same size): read again, and
	# committed as a new version
	off=$(grep -bo 'safe-harbor' deid.ndjson | head -n 1 | cut -d: -f1)
	ino=$(stat -c %i deid.ndjson)
	printf 'R' | dd of=deid.ndjson bs=1 seek=$((off + 10)) conv=notrunc 2>/dev/null
	assert_equal "$(stat -c %i deid.ndjson)" "$ino"
	c=$(create training/cohort < deid.ndjson)
	[ "$c" != "$a" ]
	assert_equal "$(jq -c '[.unchanged, .version]' made.json)" '[false,2]'
}

@test "records without _mlk.deid are refused (exit 3, audited, nothing committed)" {
	ingest_fhir
	{ head -n 3 deid.ndjson; sed -n 4p raw.ndjson; tail -n +5 deid.ndjson; } > mixed.ndjson
	run --separate-stderr mlk-snapshot create training/cohort < mixed.ndjson
	assert_failure 3
	[ -z "$output" ]
	[[ $stderr == *"'-':4: record has no _mlk.deid"* ]]
	[[ $stderr == *"nothing was committed"* ]]
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.action, .decision, .rule, .status, .detail.line]')" \
		'["snapshot-create","deny","deid-required",3,4]'
	assert_equal "$(find "$MLK_LAKE/snapshots" "$MLK_LAKE/training" -type f -name '*.json' | wc -l)" 0
	assert_equal "$(find "$MLK_LAKE/staging" -mindepth 1 | wc -l)" 0
}

@test "a line that is not a record is reported and left out (exit 1)" {
	ingest_fhir
	{ head -n 2 deid.ndjson; echo '{"broken":'; tail -n +3 deid.ndjson; } > bad.ndjson
	run --separate-stderr mlk-snapshot create curated/fhir < bad.ndjson
	assert_failure 1
	[[ $stderr == *"'-':3:"*"left out"* ]]
	assert_equal "$(jq -c '[.records, .rejected]' <<<"$output")" "[$(wc -l < deid.ndjson),1]"
}

@test "policy: writing needs a grant; denials are audited" {
	ingest_fhir
	cat > "$MLK_LAKE/policy.yaml" <<EOF
version: 1
owner: nobody-owns-this
test_identity_override: true
roles:
  data-engineer: {users: [dana], groups: []}
grants:
  - role: data-engineer
    actions: [read, write]
    zones: [curated]
EOF
	export MLK_TEST_USER=dana
	run --separate-stderr mlk-snapshot create training/cohort < deid.ndjson
	assert_failure 3
	[[ $stderr == *"write on training/cohort denied for user 'dana' by policy rule 'default-deny'"* ]]
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.action, .decision, .rule, .status]')" \
		'["snapshot-create","deny","default-deny",3]'
	id=$(create curated/fhir < deid.ndjson)
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.decision, .rule, .role]')" \
		'["allow","grants[0]","data-engineer"]'
	# dana may read but not export
	run --separate-stderr mlk-snapshot export --format tar -o x.tar "$id"
	assert_failure 3
	[ ! -e x.tar ]
	MLK_TEST_USER=eve run --separate-stderr mlk-snapshot cat "$id"
	assert_failure 3
	[ -z "$output" ]
	# eve sees no snapshot in a listing, and may not verify one
	assert_equal "$(mlk-snapshot list | jq -r .snapshot)" "$id"
	assert_equal "$(MLK_TEST_USER=eve mlk-snapshot list | wc -l)" 0
	MLK_TEST_USER=eve run --separate-stderr mlk-snapshot verify "$id"
	assert_failure 3
}

@test "verify: a flipped byte in a blob exits 4 naming the file" {
	ingest_fhir
	id=$(create curated/fhir < deid.ndjson)
	run --separate-stderr mlk-snapshot verify "$id"
	assert_success
	assert_equal "$(jq -c '[.ok, .files]' <<<"$output")" '[true,3]'
	sha=$(jq -r 'select(.entry == "file" and .partition == "type=fhir%3APatient") | .sha256' \
		"$MLK_LAKE/snapshots/$id.json")
	o=$MLK_LAKE/objects/sha256/${sha:0:2}/$sha
	chmod u+w "$o"
	# flip the bits of byte 100 (writing a fixed value may change nothing)
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 0xff]))' "$o"
	run --separate-stderr mlk-snapshot verify "$id"
	assert_failure 4
	[[ $stderr == *"curated/fhir/snapshot=$id/type=fhir%3APatient/${sha:0:16}.ndjson.gz': sha256 does not match the manifest"* ]]
	assert_equal "$(jq -c .ok <<<"$output")" false
	run --separate-stderr mlk-snapshot verify --all
	assert_failure 4
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.action, .detail.ok]')" \
		'["snapshot-verify",false]'
}

@test "verify: a deleted file and a forged manifest are caught" {
	ingest_fhir
	id=$(create curated/fhir < deid.ndjson)
	dir=$MLK_LAKE/curated/fhir/snapshot=$id
	f=$(ls "$dir"/type=fhir%3ACondition/*.gz)
	chmod u+w "$dir/type=fhir%3ACondition"
	rm -f "$f"
	run --separate-stderr mlk-snapshot verify "$id"
	assert_failure 4
	[[ $stderr == *"${f#$MLK_LAKE/}': missing"* ]]
	# the object store still has it: checkout repairs nothing silently,
	# but the blob is intact
	run --separate-stderr mlk-snapshot verify "$id"
	[[ $stderr != *"objects/sha256"* ]]
	# an entry changed in the manifest no longer hashes to the id
	m=$MLK_LAKE/snapshots/$id.json
	chmod u+w "$m"
	sed -i '0,/"entry":"file"/s/"records":\([0-9]*\)/"records":9\1/' "$m"
	run --separate-stderr mlk-snapshot verify "$id"
	assert_failure 4
	[[ $stderr == *"entries hash to"*"not to the id $id"* ]]
	run --separate-stderr mlk-snapshot cat "$id"
	assert_failure 4
	[ -z "$output" ]
}

@test "export: byte-identical archives, manifest first, files as stored" {
	ingest_fhir
	id=$(create training/fhir < deid.ndjson)
	for f in tar tar.gz zip; do
		run --separate-stderr mlk-snapshot export --format "$f" -o "one.$f" "$id"
		assert_success
		assert_equal "$(jq -r .sha256 <<<"$output")" "$(sha256sum < "one.$f" | cut -d' ' -f1)"
		sleep 1
		mlk-snapshot export --format "$f" -o "two.$f" "$id" > /dev/null
		cmp "one.$f" "two.$f"
	done
	assert_equal "$(tar -tf one.tar | head -n 1)" "$id/_manifest.json"
	assert_equal "$(tar -tvf one.tar.gz | awk '{print $1, $2}' | sort -u)" "-r--r--r-- 0/0"
	mkdir x && tar -xzf one.tar.gz -C x
	cmp x/"$id"/_manifest.json "$MLK_LAKE/snapshots/$id.json"
	(cd x/"$id" && jq -r 'select(.entry == "file") | "\(.sha256)  \(.path)"' _manifest.json |
		sha256sum --check --quiet)
	mkdir z && (cd z && unzip -q ../one.zip)
	diff -r x z
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.action, .outputs[0].archive_sha256]')" \
		"[\"snapshot-export\",\"$(sha256sum < two.zip | cut -d' ' -f1)\"]"
}

@test "checkout: hard links into the store, manifest beside, never over a directory" {
	ingest_fhir
	id=$(create curated/fhir < deid.ndjson)
	run --separate-stderr mlk-snapshot checkout "$id" work
	assert_success
	assert_equal "$(jq -c '[.files, .linked, .copied]' <<<"$output")" '[3,3,0]'
	cmp work/_manifest.json "$MLK_LAKE/snapshots/$id.json"
	(cd work && jq -r 'select(.entry == "file") | "\(.sha256)  \(.path)"' _manifest.json |
		sha256sum --check --quiet)
	f=$(ls work/type=fhir%3APatient/*.gz)
	[ "$(stat -c %h "$f")" -ge 3 ]
	run --separate-stderr mlk-snapshot checkout "$id" work
	assert_failure 2
	[[ $stderr == *"already exists"* ]]
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/log.ndjson" | jq -c '[.action, .status]')" \
		'["snapshot-checkout",2]'
}

@test "cat: records back with their place; --where prunes partitions" {
	ingest_fhir
	id=$(create curated/fhir < deid.ndjson)
	mlk-snapshot cat "$id" > all
	assert_equal "$(wc -l < all)" "$(wc -l < deid.ndjson)"
	# the same records, envelope aside, and each names its snapshot
	diff <(jq -c 'del(._mlk)' deid.ndjson | sort) <(jq -c 'del(._mlk)' all | sort)
	assert_equal "$(jq -r '"\(._mlk.zone) \(._mlk.dataset) \(._mlk.snapshot)"' all | sort -u)" \
		"curated fhir $id"
	want=$(jq -c 'select(._mlk.type == "fhir:Immunization")' deid.ndjson | wc -l)
	assert_equal "$(mlk-snapshot cat --where 'type=fhir:Immunization' "$id" | wc -l)" "$want"
	assert_equal "$(mlk-snapshot cat --where 'type!=fhir:Immunization' "$id" | wc -l)" \
		"$(( $(wc -l < all) - want ))"
	assert_equal "$(mlk-snapshot cat --where 'type=fhir:Patient,fhir:Immunization type>=fhir:J' "$id" |
		jq -r ._mlk.type | sort -u)" "fhir:Patient"
	run --separate-stderr mlk-snapshot cat --where 'year=2020' "$id"
	assert_failure 2
	[[ $stderr == *"'year' is not a partition column"* ]]
	run --separate-stderr mlk-snapshot cat --where 'type' "$id"
	assert_failure 2
	# records from a snapshot name it as their parent in the next one
	jid=$(mlk-snapshot cat --where 'type=fhir:Patient' "$id" | create training/patients)
	assert_equal "$(jq -r 'select(.entry == "input") | .snapshot // empty' "$MLK_LAKE/snapshots/$jid.json")" "$id"
}

@test "partition spec from mlk.yaml, with the split virtual source" {
	sed -i 's/^datasets: {}$/datasets:/' "$MLK_LAKE/mlk.yaml"
	cat >> "$MLK_LAKE/mlk.yaml" <<'EOF'
  hf/readmit:
    partitions:
      snapshot: [split, facility]
snapshot:
  compression_level: 6
EOF
	gen_ehr --format flat --records 2000 --seed 3 --patients 200 | deid |
		mlk-sample --split train=0.8,test=0.2 > split.ndjson
	id=$(create training/hf/readmit < split.ndjson)
	assert_equal "$(jq -r 'select(.entry == "layout") | "\(.partitions) \(.level)"' "$MLK_LAKE/snapshots/$id.json")" \
		"split, facility 6"
	ls "$MLK_LAKE/training/hf/readmit/snapshot=$id" > dirs
	assert_equal "$(tr '\n' ' ' < dirs)" "_manifest.json split=test split=train "
	assert_equal "$(mlk-snapshot cat --where 'split=test facility=north' "$id" | jq -r '"\(._mlk.split) \(.facility)"' | sort -u)" \
		"test north"
	# DuckDB reads the zone with Hive partitioning
	run duckdb_query "SELECT count(*) AS n FROM read_ndjson_objects('$MLK_LAKE/training/hf/readmit/**/*.ndjson.gz', hive_partitioning = true) WHERE split = 'test'"
	assert_success
	assert_output "{\"n\":$(jq -c 'select(._mlk.split == "test")' split.ndjson | wc -l)}"
}

@test "diff: samples drawn with different strata show the drift they should" {
	gen_ehr --format flat --records 20000 --seed 5 --patients 2000 | deid > flat.ndjson
	# A: the same number of patients per facility; B: facilities as they come
	a=$(mlk-sample --stratify facility --per-stratum 60 --seed 1 flat.ndjson | create training/hf)
	b=$(mlk-sample --fraction 0.1 --seed 1 flat.ndjson | create training/hf)
	run --separate-stderr mlk-snapshot diff --threshold 0.1 "$a" "$b"
	assert_success
	facility=$(jq -c 'select(.field == "facility")' <<<"$output")
	assert_equal "$(jq -c '[.kind, .bins, .drift]' <<<"$facility")" '["categorical",5,true]'
	# the index is what the formula gives on the records themselves
	mlk-snapshot cat "$a" | jq -r .facility > fa
	mlk-snapshot cat "$b" | jq -r .facility > fb
	want=$(awk 'FNR == 1 { f++ } { n[f]++; c[f, $0]++; v[$0] = 1 }
		END { for (k in v) { p = c[1, k] / n[1]; q = c[2, k] / n[2];
			if (p == 0) p = 0.0001; if (q == 0) q = 0.0001;
			s += (q - p) * log(q / p) } printf "%.4f", s }' fa fb)
	assert_equal "$(jq -r '.psi | . * 10000 | round / 10000' <<<"$facility")" "$(jq -n "$want")"
	# fields that do not depend on the facility stay below it
	assert_equal "$(jq -c 'select(.field == "label" or .field == "temp_c") | [.field, .kind, .drift]' <<<"$output" | tr '\n' ' ')" \
		'["label","categorical",false] ["temp_c","numeric",false] '
	# identifiers are not scored, and no value is ever printed
	assert_equal "$(jq -c 'select(.field == "patient_id") | .high_cardinality' <<<"$output")" true
	s=$(tail -n 1 <<<"$output")
	run grep -c 'north\|positive' <<<"$output"
	assert_output 0
	assert_equal "$(jq -r .diff <<<"$s")" summary
	jq -e '.records_added > 0 and .records_removed > 0 and .fields_drifted >= 1 and .files_added == 1' <<<"$s"
	# a snapshot against itself: nothing drifts, nothing added
	run mlk-snapshot diff "$a" "$a"
	assert_success
	jq -se '.[-1] | .records_added == 0 and .records_removed == 0 and .fields_drifted == 0' <<<"$output"
}

@test "compact: small files of a partition become one, as a new version" {
	ingest_fhir
	jq -c 'select(._mlk.type == "fhir:Immunization")' deid.ndjson > imm
	head -n 50 imm | create curated/imm > /dev/null
	sed -n 51,100p imm | create --append curated/imm > /dev/null
	v3=$(tail -n +101 imm | create --append curated/imm)
	assert_equal "$(jq -c 'select(.entry == "file")' "$MLK_LAKE/snapshots/$v3.json" | wc -l)" 3
	run --separate-stderr mlk-snapshot compact --target-size 64M curated/imm
	assert_success
	c=$(jq -r .snapshot <<<"$output")
	assert_equal "$(jq -c '[.version, .files, .records]' <<<"$output")" "[4,1,$(wc -l < imm)]"
	diff <(mlk-snapshot cat "$v3" | jq -c 'del(._mlk.snapshot)') <(mlk-snapshot cat "$c" | jq -c 'del(._mlk.snapshot)')
	mlk-snapshot verify "$c" > /dev/null
	mlk-snapshot verify "$v3" > /dev/null
	assert_equal "$(jq -r 'select(.entry == "input") | .snapshot // empty' "$MLK_LAKE/snapshots/$c.json" | grep -c "$v3")" 1
	# nothing left to join: no new version
	run --separate-stderr mlk-snapshot compact curated/imm
	assert_success
	[[ $stderr == *"nothing to compact"* ]]
	assert_equal "$(mlk-snapshot list curated/imm | wc -l)" 4
}

@test "a crash between publishing the directory and the manifest is finished by a rerun" {
	ingest_fhir
	id=$(create curated/fhir < deid.ndjson)
	cp "$MLK_LAKE/snapshots/$id.json" saved
	rm -f "$MLK_LAKE/snapshots/$id.json" "$MLK_LAKE"/snapshots/_inputs/*
	run mlk-snapshot list
	assert_output ''
	# a staging leftover of a killed run is never visible either
	mkdir -p "$MLK_LAKE/staging/snap-dead/version"
	again=$(cat deid.ndjson | create curated/fhir)
	assert_equal "$again" "$id"
	cmp saved "$MLK_LAKE/snapshots/$id.json"
	mlk-snapshot verify "$id" > /dev/null
}

@test "trace: a snapshot back to batches and sources; a source forward to snapshots" {
	ingest_fhir
	id=$(mlk-sample --fraction 0.5 --seed 2 deid.ndjson | create training/cohort)
	run --separate-stderr mlk-audit trace "$id"
	assert_success
	batch=$(jq -r '._mlk.batch' raw.ndjson | sort -u)
	assert_equal "$(jq -r 'select(.to == "snapshot:'"$id"'") | "\(.relation) \(.from)"' <<<"$output" | sort | tr '\n' ' ')" \
		"describes manifest:$(sha256sum < "$MLK_LAKE/snapshots/$id.json" | cut -d' ' -f1) input_of batch:$batch "
	assert_equal "$(jq -r 'select(.relation == "ingested_into") | "\(.from) \(.path)"' <<<"$output" | sort)" \
		"$(for f in Condition Immunization Patient; do echo "source:$(sha256sum < "$DATA/fhir/$f.ndjson" | cut -d' ' -f1) $DATA/fhir/$f.ndjson"; done | sort)"
	# a derived snapshot traces through its parent
	kid=$(mlk-snapshot cat --where 'type=fhir:Patient' "$id" | create training/patients)
	run mlk-audit trace "$kid"
	assert_success
	assert_equal "$(jq -c 'select(.from == "snapshot:'"$id"'" and .to == "snapshot:'"$kid"'") | .relation' <<<"$output")" '"derived_into"'
	[ "$(jq -c 'select(.relation == "ingested_into")' <<<"$output" | wc -l)" -eq 3 ]
	# forward: from a source and from the batch to both snapshots
	src=$(sha256sum < "$DATA/fhir/Patient.ndjson" | cut -d' ' -f1)
	run mlk-audit trace "$src"
	assert_success
	assert_equal "$(jq -r 'select(.to | startswith("snapshot:")) | .to' <<<"$output" | sort -u | tr '\n' ' ')" \
		"$(printf 'snapshot:%s\n' "$id" "$kid" | sort | tr '\n' ' ')"
	run mlk-audit trace --format dot "$batch"
	assert_success
	[[ $output == *"\"batch:$batch\" -> \"snapshot:$id\""* ]]
	# a snapshot whose manifest was altered is not believed
	chmod u+w "$MLK_LAKE/snapshots/$id.json"
	echo >> "$MLK_LAKE/snapshots/$id.json"
	run --separate-stderr mlk-audit trace "$kid"
	assert_failure 4
	run --separate-stderr mlk-audit trace s000000000000000000000000
	assert_failure 2
	[[ $stderr == *"records no snapshot"* ]]
}

@test "trace from a snapshot reaches batches logged before a rotation" {
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" > raw.ndjson
	run mlk-audit rotate
	assert_success
	mlk-deid --project t raw.ndjson 2>/dev/null > deid.ndjson
	id=$(create curated/patients < deid.ndjson)
	run mlk-audit trace "$id"
	assert_success
	sha=$(sha256sum "$DATA/fhir/Patient.ndjson" | cut -c1-64)
	assert_output --partial '"from":"source:'"$sha"'"'
	assert_output --partial '"relation":"input_of"'
}

@test "rebuilt from the raw batches (mlk-catalog scan), a training set gets the same id" {
	mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson" \
		"$DATA/fhir/Condition.ndjson" > /dev/null
	build() {
		mlk-catalog scan raw/ehr/fhir | mlk-deid --project t 2>/dev/null |
			mlk-sample --fraction 0.5 --seed 3 |
			mlk-snapshot create --quiet training/cohort
	}
	a=$(build | jq -r .snapshot)
	[[ $a =~ ^s[0-9a-f]{24}$ ]]
	# the lake moves on: another dataset lands
	mlk-ingest --quiet --dataset ehr/other "$DATA/fhir/Encounter.ndjson" > /dev/null
	run bash -c "$(declare -f build); build"
	assert_success
	[ "$(jq -r .snapshot <<< "$output")" = "$a" ]
	[ "$(jq -r .new_files <<< "$output")" = 0 ]
	run mlk-snapshot verify "$a"
	assert_success
}

# --- lifecycle ---
# Tiers, retention classes, legal holds, gc and sandboxes (issue 8).  Time
# is moved with the test-only clock: test_clock: true in mlk.yaml and
# MLK_TEST_NOW.

# Turn on the test clock and add tiers warm and archive inside the lake.
lc_tiers() {
	cat >>"$MLK_LAKE/mlk.yaml" <<'YAML'
test_clock: true
tiers:
  hot: objects
  warm: tiers/warm
  archive: tiers/archive
YAML
}

# days N: the test clock N days from now
days() {
	echo $(( $(date +%s) + $1 * 86400 ))
}

# The blobs (hex) of a snapshot
blobs_of() {
	jq -r 'select(.entry == "file") | .sha256' "$MLK_LAKE/snapshots/$1.json"
}

# where HEX: the tiers holding a blob, space-separated
where() {
	local t out=
	for t in objects tiers/warm tiers/archive; do
		[ -e "$MLK_LAKE/$t/sha256/${1:0:2}/$1" ] && out="$out${out:+ }$t"
	done
	echo "$out"
}

# A training snapshot of the FHIR sample; its id
lc_snapshot() {
	ingest_fhir
	create "${1:-training/demo}" < deid.ndjson
}

@test "lifecycle: aged data gives the tiering plan by class; --apply moves it and reads keep working" {
	lc_tiers
	id=$(lc_snapshot curated/fhir)
	mlk-snapshot cat "$id" > before.ndjson
	# young: nothing to move
	run --separate-stderr env MLK_TEST_NOW="$(days 10)" mlk-snapshot tier
	assert_success
	assert_output ''
	# research-ready (curated) goes warm after 90 days; raw originals
	# (active-clinical) stay hot
	MLK_TEST_NOW=$(days 100) mlk-snapshot tier > plan.ndjson
	assert_equal "$(wc -l < plan.ndjson)" "$(blobs_of "$id" | wc -l)"
	assert_equal "$(jq -r .blob plan.ndjson | sort)" "$(blobs_of "$id" | sed 's/^/sha256:/' | sort)"
	assert_equal "$(jq -c '[.from, .to, .moved]' plan.ndjson | sort -u)" '["hot","warm",false]'
	assert_equal "$(jq -r .reason plan.ndjson | sort -u)" \
		"class research-ready, 100 days old, warm after 90 days"
	# the dry run moved nothing
	for h in $(blobs_of "$id"); do assert_equal "$(where "$h")" objects; done
	run --separate-stderr env MLK_TEST_NOW="$(days 100)" mlk-snapshot tier --apply
	assert_success
	assert_equal "$(jq -c '.moved' <<<"$output" | sort -u)" true
	for h in $(blobs_of "$id"); do
		assert_equal "$(where "$h")" tiers/warm
		[ "$(stat -c %a "$MLK_LAKE/tiers/warm/sha256/${h:0:2}/$h")" = 444 ]
	done
	for h in $(jq -r '._mlk.src.sha256' raw.ndjson | sort -u); do
		assert_equal "$(where "$h")" objects
	done
	# reads and verification find the blobs in their new tier
	run mlk-snapshot verify --all
	assert_success
	mlk-snapshot cat "$id" > after.ndjson
	cmp before.ndjson after.ndjson
	# idempotent: a second run has nothing left to do
	run --separate-stderr env MLK_TEST_NOW="$(days 100)" mlk-snapshot tier --apply
	assert_success
	assert_output ''
	# a class of the dataset's own: archive-only goes to archive at once
	mlk-catalog add fhir >/dev/null
	mlk-catalog set fhir retention=archive-only >/dev/null
	run --separate-stderr env MLK_TEST_NOW="$(days 100)" mlk-snapshot tier --apply
	assert_success
	assert_equal "$(jq -c '[.from, .to]' <<<"$output" | sort -u)" '["warm","archive"]'
	for h in $(blobs_of "$id"); do assert_equal "$(where "$h")" tiers/archive; done
	run mlk-snapshot verify --all
	assert_success
	# every run is audited
	assert_equal "$(jq -c 'select(.action == "lifecycle-tier") | .detail | [.apply, .planned, .moved]' \
		"$MLK_LAKE/audit/log.ndjson" | tail -n 1)" "[true,$(blobs_of "$id" | wc -l),$(blobs_of "$id" | wc -l)]"
}

@test "lifecycle: tier --apply killed midway is finished by the next run; verify --all passes, no temp files" {
	lc_tiers
	mkdir src
	# many small sources and a few large ones: one object each
	python3 - <<'PY'
import json, random
random.seed(8)
for i in range(150):
    with open(f"src/s{i:03d}.ndjson", "w") as f:
        f.write(json.dumps({"id": i, "date": "2021-01-01", "v": random.random()}) + "\n")
for i in range(2):
    with open(f"src/big{i}.ndjson", "w") as f:
        for k in range(80000):
            f.write(json.dumps({"id": k, "date": "2021-02-01", "w": random.random(), "pad": "x" * 60}) + "\n")
PY
	mlk-ingest --quiet --dataset ehr/many src > /dev/null
	mlk-catalog add ehr/many > /dev/null
	mlk-catalog set ehr/many retention=research-ready > /dev/null
	n=$(ls src | wc -l)
	export MLK_TEST_NOW=$(days 100)
	assert_equal "$(mlk-snapshot tier | wc -l)" "$n"
	mlk-snapshot tier --apply > first.ndjson &
	pid=$!
	# kill -9 once the first blobs have moved
	for _ in $(seq 1 500); do
		[ "$(find "$MLK_LAKE/tiers/warm" -type f 2>/dev/null | head -n 3 | wc -l)" -ge 3 ] && break
		sleep 0.01
	done
	kill -9 "$pid"
	wait "$pid" || true
	moved=$(find "$MLK_LAKE/tiers/warm" -type f -name '[0-9a-f]*' | wc -l)
	[ "$moved" -lt "$n" ]         # really killed midway
	# reads work in the half-moved lake
	run mlk-snapshot verify --all
	assert_success
	run --separate-stderr mlk-snapshot tier --apply
	assert_success
	[ "$(wc -l <<<"$output")" -ge $((n - moved)) ]
	assert_equal "$(find "$MLK_LAKE/tiers/warm" -type f -name '[0-9a-f]*' | wc -l)" "$n"
	assert_equal "$(find "$MLK_LAKE/objects" "$MLK_LAKE/tiers" -name '.tmp-*' | wc -l)" 0
	for f in src/*; do
		h=$(sha256sum "$f" | cut -c1-64)
		assert_equal "$(where "$h")" tiers/warm
		cmp "$f" "$MLK_LAKE/tiers/warm/sha256/${h:0:2}/$h"
	done
	run --separate-stderr mlk-snapshot tier
	assert_success
	assert_output ''
	run mlk-snapshot verify --all
	assert_success
}

@test "lifecycle: hold and release are audited and shown at once; a held snapshot survives gc and sandbox expiry" {
	lc_tiers
	id=$(lc_snapshot)
	mlk-catalog add demo > /dev/null
	mlk-catalog set demo jurisdiction=EU > /dev/null
	run --separate-stderr mlk-snapshot retention "$id"
	assert_success
	assert_equal "$(jq -c '[.class, .tier, .jurisdiction, .held, .deletion]' <<<"$output")" \
		'["training-approved","warm","EU",false,"retained"]'
	run --separate-stderr mlk-snapshot hold --reason CASE-2026-17 "$id"
	assert_success
	assert_equal "$(jq -c '[.target, .held]' <<<"$output")" "[\"$id\",true]"
	run --separate-stderr mlk-snapshot retention "$id"
	assert_equal "$(jq -c '[.held, .deletion, .holds[0].reason]' <<<"$output")" \
		'[true,"held","CASE-2026-17"]'
	# past the minimum retention it would be eligible, but it is held
	run --separate-stderr env MLK_TEST_NOW="$(days 1200)" mlk-snapshot retention "$id"
	assert_equal "$(jq -r .deletion <<<"$output")" held
	run --separate-stderr mlk-catalog show demo
	assert_success
	assert_equal "$(jq -c '[.legal_hold, .lifecycle.deletion, .lifecycle.holds[0].target, .lifecycle.holds[0].reason]' <<<"$output")" \
		"[true,\"held\",\"$id\",\"CASE-2026-17\"]"
	# a sandbox of it expires; gc runs far in the future: the snapshot stays
	mlk-snapshot sandbox create --for "user:$(id -un)" --expires 1h "$id" > sb.json
	sb=$(jq -r .sandbox sb.json)
	run --separate-stderr env MLK_TEST_NOW="$(days 2)" mlk-snapshot sandbox expire
	assert_success
	assert_equal "$(jq -c '[.sandbox, .state, .files]' <<<"$output")" "[\"$sb\",\"expired\",false]"
	run --separate-stderr env MLK_TEST_NOW="$(days 5000)" mlk-snapshot gc --apply
	assert_success
	assert_output ''
	for h in $(blobs_of "$id"); do [ -n "$(where "$h")" ]; done
	run mlk-snapshot verify "$id"
	assert_success
	# release: audited, gone from the catalog at once
	run --separate-stderr mlk-snapshot release --reason CASE-2026-17 "$id"
	assert_success
	assert_equal "$(jq -c .held <<<"$output")" false
	run --separate-stderr mlk-catalog show demo
	assert_equal "$(jq -c '[.legal_hold, .lifecycle.holds]' <<<"$output")" '[false,[]]'
	run --separate-stderr mlk-snapshot release --reason CASE-2026-17 "$id"
	assert_failure 2
	[[ $stderr == *"has no hold with that reason"* ]]
	assert_equal "$(jq -c 'select(.action | startswith("lifecycle-h") or startswith("lifecycle-r")) | [.action, .detail.target, .detail.reason, .detail.changed, .status]' \
		"$MLK_LAKE/audit/log.ndjson")" \
		"$(printf '["lifecycle-hold","%s","CASE-2026-17",true,0]\n["lifecycle-release","%s","CASE-2026-17",true,0]\n["lifecycle-release","%s","CASE-2026-17",false,2]' "$id" "$id" "$id")"
	# a dataset hold covers every snapshot of it
	run --separate-stderr mlk-snapshot hold --reason LIT-9 training/demo
	assert_success
	run --separate-stderr mlk-snapshot retention "$id"
	assert_equal "$(jq -c '[.held, .holds[0].target]' <<<"$output")" '[true,"training/demo"]'
	run --separate-stderr mlk-snapshot retention training/demo
	assert_success
	assert_equal "$(jq -c '[.held, .deletion, .created]' <<<"$output")" \
		"[true,\"held\",$(jq -c .created "$MLK_LAKE/snapshots/$id.json" | head -n 1)]"
	# usage
	run --separate-stderr mlk-snapshot hold "$id"
	assert_failure 2
	[[ $stderr == *"--reason wants"* ]]
	run --separate-stderr mlk-snapshot hold --reason X training/nope
	assert_failure 2
	[[ $stderr == *"neither a snapshot id nor a dataset"* ]]
}

@test "lifecycle: gc dry run lists unreferenced blobs past their grace period; --apply removes only them" {
	lc_tiers
	id=$(lc_snapshot)
	# an orphan (a killed run's object) in hot and one in warm, and a
	# stale temp file
	printf 'orphan one\n' > o1
	printf 'orphan two\n' > o2
	h1=$(sha256sum o1 | cut -c1-64)
	h2=$(sha256sum o2 | cut -c1-64)
	mkdir -p "$MLK_LAKE/objects/sha256/${h1:0:2}" "$MLK_LAKE/tiers/warm/sha256/${h2:0:2}"
	cp o1 "$MLK_LAKE/objects/sha256/${h1:0:2}/$h1"
	cp o2 "$MLK_LAKE/tiers/warm/sha256/${h2:0:2}/$h2"
	touch "$MLK_LAKE/objects/sha256/${h1:0:2}/.tmp-$h1.abc123"
	# within the grace period (7 days): nothing
	run --separate-stderr mlk-snapshot gc
	assert_success
	assert_output ''
	run --separate-stderr env MLK_TEST_NOW="$(days 8)" mlk-snapshot gc
	assert_success
	assert_equal "$(jq -c '[.blob, .tier, .reason, .removed]' <<<"$output" | sort)" \
		"$(printf '["sha256:%s","hot","unreferenced",false]\n["sha256:%s","warm","unreferenced",false]\n[null,"hot","stale temp file",false]' "$h1" "$h2" | sort)"
	# a dry run removes nothing
	[ -e "$MLK_LAKE/objects/sha256/${h1:0:2}/$h1" ]
	run --separate-stderr env MLK_TEST_NOW="$(days 8)" mlk-snapshot gc --apply
	assert_success
	assert_equal "$(jq -c .removed <<<"$output" | sort -u)" true
	[ ! -e "$MLK_LAKE/objects/sha256/${h1:0:2}/$h1" ]
	[ ! -e "$MLK_LAKE/tiers/warm/sha256/${h2:0:2}/$h2" ]
	[ ! -e "$MLK_LAKE/objects/sha256/${h1:0:2}/.tmp-$h1.abc123" ]
	# snapshot blobs and raw originals stay, whatever their age
	for h in $(blobs_of "$id") $(jq -r '._mlk.src.sha256' raw.ndjson | sort -u); do
		assert_equal "$(where "$h")" objects
	done
	run mlk-snapshot verify --all
	assert_success
	run --separate-stderr env MLK_TEST_NOW="$(days 8)" mlk-snapshot gc
	assert_output ''
	assert_equal "$(jq -c 'select(.action == "lifecycle-gc") | .detail | [.apply, .planned, .removed]' \
		"$MLK_LAKE/audit/log.ndjson" | tr '\n' ' ')" '[false,0,0] [false,3,0] [true,3,3] [false,0,0] '
	# a manifest that cannot be read stops gc before it removes anything
	cp o1 "$MLK_LAKE/objects/sha256/${h1:0:2}/$h1"
	chmod u+w "$MLK_LAKE/snapshots/$id.json"
	echo garbage >> "$MLK_LAKE/snapshots/$id.json"
	run --separate-stderr env MLK_TEST_NOW="$(days 8)" mlk-snapshot gc --apply
	assert_failure
	[ -e "$MLK_LAKE/objects/sha256/${h1:0:2}/$h1" ]
}

@test "lifecycle: a sandbox only its user or group can read; revoke removes its files and access; expire and verify" {
	lc_tiers
	id=$(lc_snapshot)
	getent passwd nobody >/dev/null && getent passwd daemon >/dev/null ||
		skip "needs the users nobody and daemon"
	[ "$(id -u)" = 0 ] || skip "needs root to hand a sandbox to another user"
	# other users must be able to reach the lake for the test to mean
	# anything: open the test's own temp folders to them
	p=$BATS_TEST_TMPDIR
	while [[ $p == "$BATS_RUN_TMPDIR"* ]]; do chmod o+rx "$p"; p=${p%/*}; done
	su -s /bin/sh daemon -c "test -r '$MLK_LAKE/mlk.yaml'"
	run --separate-stderr mlk-snapshot sandbox create --for nobody --expires 72h \
		--purpose "feature exploration" "$id"
	assert_success
	sb=$(jq -r .sandbox <<<"$output")
	[[ $sb =~ ^x[0-9a-f]{16}$ ]]
	assert_equal "$(jq -c '[.snapshot, .for, .state, .purpose, .files, .linked + .copied]' <<<"$output")" \
		"[\"$id\",\"user:nobody\",\"active\",\"feature exploration\",true,$(blobs_of "$id" | wc -l)]"
	d=$MLK_LAKE/sandboxes/$sb
	assert_equal "$(stat -c '%U %a' "$d")" "nobody 700"
	f=$(find "$d" -name '*.ndjson.gz' | head -n 1)
	[ -n "$f" ]
	# the user reads it, another user cannot
	su -s /bin/sh nobody -c "gzip -dc '$f' >/dev/null"
	run su -s /bin/sh daemon -c "cat '$f'"
	assert_failure
	# the record says who, why and until when
	assert_equal "$(jq -c '[.for, .by, .purpose, .state]' "$MLK_LAKE/sandboxes/$sb.json")" \
		"[\"user:nobody\",\"$(id -un)\",\"feature exploration\",\"active\"]"
	# a group sandbox: 0750, the group's
	run --separate-stderr mlk-snapshot sandbox create --for group:nogroup --expires 2h "$id"
	assert_success
	gsb=$(jq -r .sandbox <<<"$output")
	assert_equal "$(stat -c '%G %a' "$MLK_LAKE/sandboxes/$gsb")" "nogroup 750"
	# extend, list
	run --separate-stderr mlk-snapshot sandbox extend --expires 30d "$gsb"
	assert_success
	run --separate-stderr mlk-snapshot sandbox list
	assert_success
	assert_equal "$(jq -r .sandbox <<<"$output" | sort)" "$(printf '%s\n%s\n' "$sb" "$gsb" | sort)"
	# revoke: files and access gone, the record kept
	run --separate-stderr mlk-snapshot sandbox revoke "$sb"
	assert_success
	assert_equal "$(jq -c '[.state, .files]' <<<"$output")" '["revoked",false]'
	[ ! -e "$d" ]
	run su -s /bin/sh nobody -c "cat '$f'"
	assert_failure
	assert_equal "$(jq -r .state "$MLK_LAKE/sandboxes/$sb.json")" revoked
	# the objects the sandbox linked are untouched
	run mlk-snapshot verify --all
	assert_success
	run --separate-stderr mlk-snapshot sandbox verify
	assert_success
	# files left behind (a crash mid-teardown, a directory without a
	# record) are found, and expire removes them
	mkdir -p "$d/leftover" "$MLK_LAKE/sandboxes/x0123456789abcdef"
	run --separate-stderr mlk-snapshot sandbox verify
	assert_failure 4
	[[ $stderr == *"$sb"*"revoked sandbox still has files"* ]]
	[[ $stderr == *"x0123456789abcdef"*"files without a sandbox record"* ]]
	# the group sandbox expires 30 days on
	run --separate-stderr env MLK_TEST_NOW="$(days 31)" mlk-snapshot sandbox expire
	assert_success
	[ ! -e "$d" ] && [ ! -e "$MLK_LAKE/sandboxes/x0123456789abcdef" ] && [ ! -e "$MLK_LAKE/sandboxes/$gsb" ]
	assert_equal "$(jq -r .state "$MLK_LAKE/sandboxes/$gsb.json")" expired
	run --separate-stderr env MLK_TEST_NOW="$(days 31)" mlk-snapshot sandbox verify
	assert_success
	assert_equal "$(jq -c .ok <<<"$output" | sort -u)" true
	# every step audited
	assert_equal "$(jq -r 'select(.action | startswith("sandbox-")) | .action' "$MLK_LAKE/audit/log.ndjson" | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
		'sandbox-create=2 sandbox-expire=3 sandbox-extend=1 sandbox-list=1 sandbox-revoke=1 sandbox-verify=3 '
}

@test "lifecycle: sandbox create without a grant is denied (exit 3, audited); a grant for the zone and sensitivity allows it" {
	id=$(lc_snapshot)
	sed -i 's/^test_identity_override: false/test_identity_override: true/' "$MLK_LAKE/policy.yaml"
	sed -i 's/^  researcher: {users: \[\], groups: \[\]}/  researcher: {users: [rita], groups: []}/' "$MLK_LAKE/policy.yaml"
	export MLK_TEST_USER=rita
	run --separate-stderr mlk-snapshot sandbox create --for "$(id -un)" --expires 1h "$id"
	assert_failure 3
	[[ $stderr == *"sandbox on training/demo denied for user 'rita'"* ]]
	[ -z "$(ls "$MLK_LAKE/sandboxes" 2>/dev/null | grep '^x' || true)" ]
	assert_equal "$(jq -c 'select(.action == "sandbox-create") | [.actor.user, .decision, .rule, .status]' "$MLK_LAKE/audit/log.ndjson")" \
		'["rita","deny","default-deny",3]'
	# a grant for sandboxes of internal data does not cover restricted data
	cat >>"$MLK_LAKE/policy.yaml" <<'YAML'
  - role: researcher
    actions: [sandbox]
    zones: [training]
    sensitivity: [internal]
YAML
	run --separate-stderr mlk-snapshot sandbox create --for "$(id -un)" --expires 1h "$id"
	assert_failure 3
	unset MLK_TEST_USER
	mlk-catalog add demo > /dev/null
	mlk-catalog set demo sensitivity=internal > /dev/null
	export MLK_TEST_USER=rita
	run --separate-stderr mlk-snapshot sandbox create --for "$(id -un)" --expires 1h "$id"
	assert_success
	assert_equal "$(jq -r .by <<<"$output")" rita
	# lifecycle jobs and holds need admin
	run --separate-stderr mlk-snapshot tier
	assert_failure 3
	run --separate-stderr mlk-snapshot gc --apply
	assert_failure 3
	run --separate-stderr mlk-snapshot hold --reason X "$id"
	assert_failure 3
	assert_equal "$(jq -c 'select(.decision == "deny") | .action' "$MLK_LAKE/audit/log.ndjson" | tr '\n' ' ')" \
		'"sandbox-create" "sandbox-create" "lifecycle-tier" "lifecycle-gc" "lifecycle-hold" '
}

@test "lifecycle: usage errors exit 2" {
	run --separate-stderr mlk-snapshot sandbox frobnicate
	assert_failure 2
	[[ $stderr == *"unknown sandbox command 'frobnicate'"* ]]
	run --separate-stderr mlk-snapshot sandbox create --for root --expires soon s000000000000000000000000
	assert_failure 2
	[[ $stderr == *"--expires wants a duration"* ]]
	run --separate-stderr mlk-snapshot sandbox create --for no-such-user-or-group --expires 1h s000000000000000000000000
	assert_failure 2
	[[ $stderr == *"no user or group named"* ]]
	run --separate-stderr mlk-snapshot sandbox create --expires 1h s000000000000000000000000
	assert_failure 2
	run --separate-stderr mlk-snapshot sandbox revoke nope
	assert_failure 2
	[[ $stderr == *"not a sandbox id"* ]]
	run --separate-stderr mlk-snapshot sandbox list extra
	assert_failure 2
	run --separate-stderr mlk-snapshot tier extra
	assert_failure 2
	run --separate-stderr mlk-snapshot gc --reason X
	assert_failure 2
	[[ $stderr == *"no option '--reason' for gc"* ]]
	echo 'tiers: {hot: elsewhere}' >> "$MLK_LAKE/mlk.yaml"
	run --separate-stderr mlk-snapshot tier
	assert_failure 2
	[[ $stderr == *"tier 'hot' is always objects"* ]]
}

# --- quality gate ---
# mlk-snapshot create runs the target dataset's expectations (mlk-expect(5)).

# 300 de-identified flat records, and expectations for curated/cohort/hf.
gate_setup() {
	gen_ehr --format flat --records 300 --seed 11 |
		jq -c '{patient_id, encounter_id, encounter_date, sex,
			diagnosis_code, _mlk: {v: 1, deid: {profile: "safe-harbor"}}}' \
		>good.ndjson
	mkdir -p "$MLK_LAKE/catalog/expectations/cohort"
	cat >"$MLK_LAKE/catalog/expectations/cohort/hf.yaml" <<'YAML'
expectations:
  - {name: date-required, kind: required, field: encounter_date}
  - {name: date-past, kind: range, field: encounter_date, max: now}
  - {name: encounter-unique, kind: unique, field: encounter_id}
  - name: icd10
    kind: pattern
    field: diagnosis_code
    pattern: '^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$'
  - {name: sex-known, kind: in_set, field: sex, values: [F, M], severity: warning}
YAML
}

# Everything in the lake but the audit log, for "nothing left behind".
lake_files() {
	(cd "$MLK_LAKE" && find . -path ./audit -prune -o -print | sort)
}

@test "quality gate: passing records land, with the report beside the manifest" {
	gate_setup
	id=$(create curated/cohort/hf <good.ndjson)
	assert_equal "$(jq -r .records made.json)" 300
	run jq -c .quality "$MLK_LAKE/snapshots/$id.json"
	assert_output --partial '"pass":true,"records":300,"expectations":5,"failed":[]'
	q=$MLK_LAKE/snapshots/$id.quality.json
	assert_file_exists "$q"
	assert_equal "$(jq -r '.pass, .zone, .dataset' "$q" | xargs)" \
		"true curated cohort/hf"
	assert_equal "$(head -1 "$MLK_LAKE/snapshots/$id.json" |
		jq -r .quality.report_sha256)" "$(sha256sum "$q" | cut -d' ' -f1)"
	run mlk-snapshot verify "$id"
	assert_success
	# A dataset without expectations is not gated.
	id2=$(create curated/other <good.ndjson)
	run jq -c 'has("quality")' <(head -1 "$MLK_LAKE/snapshots/$id2.json")
	assert_output false
	assert_file_not_exists "$MLK_LAKE/snapshots/$id2.quality.json"
}

@test "quality gate: a blocking failure is refused, leaves nothing behind, and is audited" {
	gate_setup
	before=$(lake_files)
	# A future date on line 7 and a duplicated encounter on line 301.
	{ sed '7s/"encounter_date":"[0-9-]*"/"encounter_date":"2999-01-01"/' \
		good.ndjson; sed -n 2p good.ndjson; } >bad.ndjson
	run --separate-stderr mlk-snapshot create curated/cohort/hf <bad.ndjson
	assert_failure 1
	jq -e . <<<"$output" >/dev/null
	assert_equal "$(jq -c '[.expectations[] | select(.pass | not) |
		[.name, .first_lines]]' <<<"$output")" \
		'[["date-past",[7]],["encounter-unique",[301]]]'
	assert_equal "$stderr" "mlk-snapshot: curated/cohort/hf: refused: 2 blocking expectations failed; nothing was committed"
	# Nothing new in snapshots/, the zones, the object store or staging.
	assert_equal "$(lake_files)" "$before"
	run mlk-snapshot list curated/cohort/hf
	assert_output ''
	# Audited, with the report's digest and the failed names, no values.
	run mlk-audit query --action snapshot-refused
	assert_success
	assert_equal "$(jq -c '[.status, .dataset, .detail.quality.failed,
		.detail.quality.pass]' <<<"$output")" \
		'[1,"cohort/hf",["date-past","encounter-unique"],false]'
	assert_equal "$(jq -r .detail.quality.report_sha256 <<<"$output")" \
		"$(mlk-snapshot create curated/cohort/hf <bad.ndjson 2>/dev/null |
			sha256sum | cut -d' ' -f1)"
	run ! grep -q 2999 "$MLK_LAKE/audit/log.ndjson"
	run mlk-audit verify
	assert_success
	# From a pipe (not a seekable file) the same.
	run --separate-stderr mlk-snapshot create curated/cohort/hf < <(cat bad.ndjson)
	assert_failure 1
	assert_equal "$(lake_files)" "$before"
}

@test "quality gate: --accept-failures lands it, recorded in the manifest, lineage and report" {
	gate_setup
	sed '5s/"encounter_date":"[0-9-]*",//' good.ndjson >bad.ndjson
	run --separate-stderr mlk-snapshot create --accept-failures CHG-1234 \
		curated/cohort/hf < <(cat bad.ndjson)
	assert_success
	id=$(jq -r .snapshot <<<"$output")
	assert_equal "$(jq -r .records <<<"$output")" 300
	head -1 "$MLK_LAKE/snapshots/$id.json" >head.json
	assert_equal "$(jq -c '.quality | [.pass, .failed, .accepted_failures]' \
		head.json)" '[false,["date-required"],"CHG-1234"]'
	assert_equal "$(jq -c '[.pass, (.expectations[0] | .first_lines)]' \
		"$MLK_LAKE/snapshots/$id.quality.json")" '[false,[5]]'
	run mlk-audit query --action snapshot-create
	assert_equal "$(jq -r .detail.quality.accepted_failures <<<"$output")" CHG-1234
	run mlk-snapshot verify "$id"
	assert_success
	# A warning alone does not block.
	sed 's/"sex":"[FM]"/"sex":"X"/' good.ndjson >warn.ndjson
	run --separate-stderr mlk-snapshot create curated/cohort/hf <warn.ndjson
	assert_success
	id=$(jq -r .snapshot <<<"$output")
	assert_equal "$(jq -c '[.pass, .failed_warning]' \
		"$MLK_LAKE/snapshots/$id.quality.json")" '[true,1]'
	# --accept-failures wants a reference.
	run --separate-stderr mlk-snapshot create --accept-failures '' curated/cohort/hf </dev/null
	assert_failure 2
}
