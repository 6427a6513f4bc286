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
	printf '\x01' | dd of="$o" bs=1 seek=100 conv=notrunc 2>/dev/null
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
