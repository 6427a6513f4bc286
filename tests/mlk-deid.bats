#!/usr/bin/env bats
# mlk-deid: Safe Harbor by default, keyed tokens, date shifts, the vault.

load helper

setup() {
	mklake
	sed -i 's/^test_clock: false/test_clock: true/' "$MLK_LAKE/mlk.yaml"
	grep -q '^test_clock: true' "$MLK_LAKE/mlk.yaml" ||
		echo 'test_clock: true' >> "$MLK_LAKE/mlk.yaml"
	# 2026-06-01T00:00:00Z: ages count to 2026
	export MLK_TEST_NOW=1780272000
}

# The output without our own tokens and hashes, which are random to the
# reader and may contain, say, "8200" by chance.
untoken() {
	sed -E -e 's/[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/TOKEN/g' \
		-e 's/[0-9a-f]{64}/HASH/g' -e 's/b[0-9a-f]{24}/BATCH/g' "$@"
}

# Direct identifiers of FHIR input: names, identifier and telecom values,
# address lines, cities and ZIPs, full dates, people in displays.
fhir_phi() {
	jq -r '
	  def s: select(type == "string" and length > 3);
	  ( [.. | objects | (.family?, (.given?[]?), (.line?[]?),
	                     .postalCode?, .city?)] | .[] | s ),
	  ( [.. | objects | select(has("system") and has("value")) | .value]
	    | .[] | s ),
	  ( [.. | strings | select(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}"))]
	    | .[] | .[0:10] ),
	  ( [.. | objects | .display?] | .[] | s
	    | select(test("^(Mr|Mrs|Ms|Dr)\\. ")) )
	' "$@" | sort -u
}

@test "--help prints usage on stdout and exits 0; misuse exits 2" {
	run --separate-stderr mlk-deid --help
	assert_success
	assert_line --index 0 --partial 'usage: mlk-deid [--profile NAME|FILE]'
	[ -z "$stderr" ]
	run --separate-stderr mlk-deid --bogus
	assert_failure 2
	[[ $stderr == *"unknown option '--bogus'"* ]]
	run --separate-stderr mlk-deid --k 5
	assert_failure 2
	[[ $stderr == *"--k and --quasi go together"* ]]
	run --separate-stderr mlk-deid --project '../x'
	assert_failure 2
	run --separate-stderr mlk-deid --profile no-such-profile < /dev/null
	assert_failure 2
	[[ $stderr == *"no profile named 'no-such-profile'"* ]]
}

@test "built-in profiles are listed and shown" {
	run mlk-deid --list-profiles
	assert_success
	assert_line 'safe-harbor'
	assert_line 'limited-dataset'
	assert_line 'research-pseudonymized'
	run mlk-deid --show-profile limited-dataset
	assert_success
	assert_line --partial 'extends: safe-harbor'
	assert_line --partial 'name: safe-harbor'
}

@test "safe-harbor on ../shared/data/fhir: no direct identifier of the input survives" {
	cat "$DATA"/fhir/*.ndjson > in.ndjson
	fhir_phi in.ndjson > phi.txt
	[ "$(wc -l < phi.txt)" -gt 1000 ]
	run --separate-stderr mlk-deid in.ndjson
	assert_success
	printf '%s\n' "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq "$(wc -l < in.ndjson)" ]
	# every identifier, searched for as a word anywhere in the output
	untoken out.ndjson > plain.ndjson
	run grep -F -o -w -f phi.txt plain.ndjson
	assert_failure 1
	assert_output ''
	# and none reached stderr either
	run grep -F -o -w -f phi.txt <<< "$stderr"
	assert_failure 1
	# Patient: year of birth, ZIP3, state kept; names and identifiers gone
	run jq -c 'select(.resourceType == "Patient") | [has("name"), has("identifier"), has("telecom"), (.birthDate | length), (.address[0].postalCode | tostring | length)]' out.ndjson
	assert_line '[false,false,false,4,3]'
	# every record says how it was de-identified, never with the key
	run jq -r '._mlk.deid | [.profile, (.profile_sha256 | test("^[0-9a-f]{64}$")), (.key_id | test("^k-[0-9a-f]{16}$")), .project] | @tsv' out.ndjson
	assert_output --regexp '^(safe-harbor	true	true	default
?)+$'
	# the source path is gone from the envelope, its hash stays
	[ "$(jq -c '._mlk.src // {} | has("path")' out.ndjson | sort -u)" = false ]
}

@test "references stay resolvable: every Patient reference names a Patient in the output" {
	cat "$DATA"/fhir/Patient.ndjson "$DATA"/fhir/Encounter.ndjson "$DATA"/fhir/Condition.ndjson > in.ndjson
	mlk-deid in.ndjson > out.ndjson
	jq -r 'select(.resourceType == "Patient") | .id' out.ndjson | sort -u > ids
	jq -r 'select(.subject) | .subject.reference | sub("^Patient/"; "")' out.ndjson | sort -u > refs
	[ "$(wc -l < refs)" -ge 10 ]
	[ -z "$(comm -13 ids refs)" ]
	# Encounter references of Conditions resolve to Encounters too
	jq -r 'select(.resourceType == "Encounter") | .id' out.ndjson | sort -u > encs
	jq -r 'select(.resourceType == "Condition") | .encounter.reference | sub("^Encounter/"; "")' out.ndjson | sort -u > erefs
	[ -z "$(comm -13 encs erefs)" ]
	# and _mlk.patient is the same token
	run jq -r 'select(.resourceType == "Condition") | (.subject.reference == "Patient/" + ._mlk.patient)' out.ndjson
	refute_output --partial false
	# no original id is left
	head -1 "$DATA"/fhir/Patient.ndjson | jq -r .id > orig
	run grep -c -F -f orig out.ndjson
	assert_output 0
}

@test "deterministic: same input, key and project, same bytes; another project, other tokens" {
	cat "$DATA"/fhir/Patient.ndjson "$DATA"/fhir/Encounter.ndjson > in.ndjson
	mlk-deid --project p1 in.ndjson > a.ndjson
	mlk-deid --project p1 < in.ndjson > b.ndjson
	cmp a.ndjson b.ndjson
	# one thread gives the same bytes as two
	echo 'deid: {threads: 1}' >> "$MLK_LAKE/mlk.yaml"
	mlk-deid --project p1 in.ndjson > c.ndjson
	cmp a.ndjson c.ndjson
	mlk-deid --project p2 in.ndjson > d.ndjson
	jq -r 'select(.resourceType == "Patient") | .id' a.ndjson > ida
	jq -r 'select(.resourceType == "Patient") | .id' d.ndjson > idd
	[ "$(wc -l < ida)" -eq 13 ]
	[ -z "$(comm -12 <(sort ida) <(sort idd))" ]
	# another lake (another key) gives other tokens too
	mklake "$BATS_TEST_TMPDIR/lake2"
	mlk-deid --project p1 in.ndjson > e.ndjson
	jq -r 'select(.resourceType == "Patient") | .id' e.ndjson > ide
	[ -z "$(comm -12 <(sort ida) <(sort ide))" ]
}

@test "synthea CSV through ingest: identifiers gone, patient tokens link the tables" {
	mlk-ingest --quiet --dataset ehr/synthea "$DATA/synthea-csv" > in.ndjson
	# the identifying columns of patients.csv, as they came
	jq -r 'select(._mlk.type == "csv:patients") | .SSN, .FIRST, .LAST, .ADDRESS, .BIRTHDATE, .ZIP, .DRIVERS, .PASSPORT, .MAIDEN | select(. != null and length > 3)' in.ndjson | sort -u > phi.txt
	[ "$(wc -l < phi.txt)" -gt 100 ]
	run --separate-stderr mlk-deid in.ndjson
	assert_success
	printf '%s\n' "$output" > out.ndjson
	untoken out.ndjson > plain.ndjson
	run grep -F -o -w -f phi.txt plain.ndjson
	assert_failure 1
	# full dates are gone everywhere
	run grep -c -E '[0-9]{4}-[0-9]{2}-[0-9]{2}' out.ndjson
	assert_output 0
	# encounters.PATIENT is the token of patients.Id
	jq -r 'select(._mlk.type == "csv:patients") | .Id' out.ndjson | sort -u > ids
	jq -r 'select(._mlk.type == "csv:encounters") | .PATIENT' out.ndjson | sort -u > pats
	[ -z "$(comm -13 ids pats)" ]
	run jq -r 'select(._mlk.type == "csv:patients") | .ZIP // "none" | tostring | length' out.ndjson
	refute_output --regexp '^5$'
}

@test "fail closed: an unnamed field is dropped and named on stderr, without its value" {
	cat > in.ndjson <<-'EOF'
	{"patient_id":"p1","favourite_colour":"SECRET-BLUE","sex":"F"}
	{"patient_id":"p2","favourite_colour":"SECRET-RED","sex":"M"}
	EOF
	run --separate-stderr mlk-deid in.ndjson
	assert_success
	refute_output --partial SECRET
	refute_output --partial favourite_colour
	[ "$(jq -r .sex <<< "$output" | tr -d '\n')" = FM ]
	[[ $stderr == *"dropped field 'favourite_colour' in 2 records"* ]]
	[[ $stderr != *SECRET* ]]
	[ "$(grep -c favourite_colour <<< "$stderr")" -eq 1 ]
	# the audit event names the field, never the value
	run jq -c 'select(.action == "deid") | .detail.dropped_fields' "$MLK_LAKE/audit/log.ndjson"
	assert_output '["favourite_colour"]'
	run grep -c SECRET "$MLK_LAKE/audit/log.ndjson"
	assert_output 0
}

@test "a team profile extends a built-in one: its own columns, pass-through" {
	mkdir -p "$MLK_LAKE/profiles"
	cat > "$MLK_LAKE/profiles/team.yaml" <<-'EOF'
	mlk_profile: 1
	name: team
	extends: safe-harbor
	rules:
	  - field: favourite_colour
	    method: keep
	  - field: nickname
	    method: substitute
	    with: "[removed]"
	EOF
	echo '{"patient_id":"p1","favourite_colour":"blue","nickname":"Bob","other":"x"}' > in.ndjson
	run --separate-stderr mlk-deid --profile team in.ndjson
	assert_success
	run jq -c 'del(._mlk)' <<< "$output"
	assert_output '{"patient_id":"'"$(mlk-deid --profile team in.ndjson 2>/dev/null | jq -r .patient_id)"'","favourite_colour":"blue","nickname":"[removed]"}'
	[ "$(mlk-deid --profile team in.ndjson 2>/dev/null | jq -r ._mlk.deid.profile)" = team ]
	# pass_through keeps what no rule names
	printf 'mlk_profile: 1\nname: open\nextends: safe-harbor\npass_through: true\n' > open.yaml
	run --separate-stderr mlk-deid --profile ./open.yaml in.ndjson
	assert_success
	[ "$(jq -r .other <<< "$output")" = x ]
	[ "$(jq -r .nickname <<< "$output")" = Bob ]
	# a broken profile is a usage error naming file and line
	printf 'mlk_profile: 1\nrules:\n  - field: x\n    method: shred\n' > bad.yaml
	run --separate-stderr mlk-deid --profile ./bad.yaml in.ndjson
	assert_failure 2
	[[ $stderr == *"bad.yaml':3: a rule needs a method"* ]]
}

@test "generalize: ZIP3 with the restricted areas as 000, ages over 89 as 90" {
	cat > in.ndjson <<-'EOF'
	{"patient_id":"a","zip":"03601","birth_date":"1930-02-03","age":95}
	{"patient_id":"b","zip":"02155-1234","birth_date":"1990-07-08","age":"36"}
	{"patient_id":"c","zip":"8932","birth_date":"not a date","age":89}
	EOF
	run --separate-stderr mlk-deid in.ndjson
	assert_success
	run jq -c '[.zip, .birth_date, .age]' <<< "$output"
	assert_line --index 0 '["000","1936",90]'
	assert_line --index 1 '["021","1990","36"]'
	assert_line --index 2 '[null,null,89]'
}

@test "research-pseudonymized: one offset per patient, intervals survive" {
	cat > in.ndjson <<-'EOF'
	{"patient_id":"a","encounter_date":"2020-01-10","mrn":"MRN1"}
	{"patient_id":"a","encounter_date":"2020-03-01T10:20:00Z","mrn":"MRN1"}
	{"patient_id":"b","encounter_date":"2020-01-10","mrn":"MRN2"}
	EOF
	run --separate-stderr mlk-deid --profile research-pseudonymized --project study in.ndjson
	assert_success
	printf '%s\n' "$output" > out.ndjson
	run jq -r '.encounter_date' out.ndjson
	refute_line '2020-01-10'
	d1=$(jq -r 'select(.patient_id == "'"$(jq -r .patient_id out.ndjson | head -1)"'") | .encounter_date[0:10]' out.ndjson | head -1)
	d2=$(sed -n 2p out.ndjson | jq -r '.encounter_date')
	# the time of day stays, the interval of 51 days stays
	[[ $d2 == *T10:20:00Z ]]
	[ $(( ($(date -d "${d2:0:10}" +%s) - $(date -d "$d1" +%s)) / 86400 )) -eq 51 ]
	# tokens for the MRN, the same for the same patient
	[ "$(jq -r .mrn out.ndjson | sort -u | wc -l)" -eq 2 ]
	run grep -c MRN out.ndjson
	assert_output 0
}

@test "mask, perturb, age bands and buckets are deterministic" {
	cat > p.yaml <<-'EOF'
	mlk_profile: 1
	name: methods
	rules:
	  - field: card
	    method: mask
	    keep_last: 4
	  - field: weight
	    method: perturb
	    noise: 2
	    precision: 1
	  - field: age
	    method: generalize
	    to: age_band
	    width: 10
	  - field: income
	    method: generalize
	    to: bucket
	    width: 1000
	  - field: patient_id
	    method: pseudonymize
	EOF
	echo '{"patient_id":"x","card":"4111-1111-1111-1234","weight":80.0,"age":47,"income":51234}' > in.ndjson
	run --separate-stderr mlk-deid --profile ./p.yaml --seed 3 in.ndjson
	assert_success
	run jq -c '[.card, (.weight >= 78 and .weight <= 82), .age, .income]' <<< "$output"
	assert_output '["***************1234",true,"40-49",51000]'
	# ten records: two seeds give the same noise for all ten once in 41^10
	for i in 0 1 2 3 4 5 6 7 8 9; do
		echo "{\"patient_id\":\"p$i\",\"weight\":80.0}"
	done > ten.ndjson
	a=$(mlk-deid --profile ./p.yaml --seed 3 ten.ndjson 2>/dev/null | jq .weight)
	b=$(mlk-deid --profile ./p.yaml --seed 3 ten.ndjson 2>/dev/null | jq .weight)
	c=$(mlk-deid --profile ./p.yaml --seed 4 ten.ndjson 2>/dev/null | jq .weight)
	[ "$(wc -l <<< "$a")" -eq 10 ]
	[ "$a" = "$b" ]
	[ "$a" != "$c" ]
}

@test "a key file readable by others is refused" {
	cp "$MLK_LAKE"/keys/*.key k.key
	chmod 644 k.key
	echo '{"a":1}' | { run --separate-stderr mlk-deid --key-file k.key --lake /nonexistent; }
	run --separate-stderr bash -c 'echo "{}" | MLK_LAKE= mlk-deid --key-file k.key'
	assert_failure 3
	[[ $stderr == *"readable by group or others"* ]]
}

@test "invalid lines are reported by line and left out; the rest goes on" {
	printf '{"patient_id":"a","sex":"F"}\nnot json\n{"patient_id":"b","sex":"M"}\n' > in.ndjson
	run --separate-stderr mlk-deid in.ndjson
	assert_failure 1
	[ "$(jq -r .sex <<< "$output" | tr -d '\n')" = FM ]
	[[ $stderr == *"'in.ndjson':2:"* ]]
}

@test "k-anonymity: small classes reported, and suppressed with --suppress" {
	gen_ehr --format flat --records 300 --seed 2 --patients 60 > in.ndjson
	run --separate-stderr mlk-deid --k 5 --quasi sex,zip,birth_date --k-report k.json in.ndjson
	assert_success
	[ "$(wc -l <<< "$output")" -eq 300 ]
	run jq -c '[.k, .records, (.small_classes > 0), .suppressed, .k_anonymous]' k.json
	assert_output '[5,300,true,0,false]'
	small=$(jq .records_in_small_classes k.json)
	mlk-deid --k 5 --quasi sex,zip,birth_date --suppress --k-report k2.json in.ndjson > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq $((300 - small)) ]
	run jq -c '[.suppressed == '"$small"', .k_anonymous]' k2.json
	assert_output '[true,true]'
	# what is left is 5-anonymous over the quasi-identifiers
	run bash -c "jq -r '[.sex, .zip, .birth_date] | @tsv' out.ndjson | sort | uniq -c | awk '\$1 < 5' | wc -l"
	assert_output 0
}

@test "encrypt keeps originals in the vault; rehydrate needs a grant, an approval and time" {
	cat > p.yaml <<-'EOF'
	mlk_profile: 1
	name: vaulted
	extends: safe-harbor
	rules:
	  - field: mrn
	    method: encrypt
	EOF
	printf '{"patient_id":"a","mrn":"MRN-777001"}\n{"patient_id":"b","mrn":"MRN-777002"}\n' > in.ndjson
	run --separate-stderr mlk-deid --profile ./p.yaml --project trial in.ndjson
	assert_success
	refute_output --partial MRN-777
	tok=$(head -1 <<< "$output" | jq -r .mrn)
	[[ $tok =~ ^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	# the vault holds sealed values only, read-only
	run find "$MLK_LAKE/vault/trial" -name '*.ndjson' -perm 0400
	[ "${#lines[@]}" -eq 1 ]
	run grep -rc MRN-777 "$MLK_LAKE/vault"
	refute_output --regexp ':[1-9]'
	# the owner alone may not re-identify
	run --separate-stderr mlk-deid rehydrate --project trial --approval IRB-1 --expires 2026-12-31 "$tok"
	assert_failure 3
	assert_output ''
	[[ $stderr == *"needs a grant of action rehydrate"* ]]
	# a privacy officer with a grant may, until the approval expires
	sed -i 's/^test_identity_override: false/test_identity_override: true/' "$MLK_LAKE/policy.yaml"
	cat >> "$MLK_LAKE/policy.yaml" <<-'EOF'
	  - role: privacy-officer
	    actions: [rehydrate]
	EOF
	sed -i 's/^roles:/roles:\n  privacy-officer: {users: [olivia], groups: []}/' "$MLK_LAKE/policy.yaml"
	MLK_TEST_USER=olivia run --separate-stderr mlk-deid rehydrate --project trial --approval IRB-1 --expires 2026-12-31 "$tok"
	assert_success
	assert_output '{"token":"'"$tok"'","found":true,"value":"MRN-777001"}'
	MLK_TEST_USER=olivia run --separate-stderr mlk-deid rehydrate --project trial --approval IRB-1 --expires 2026-01-01 "$tok"
	assert_failure 3
	[[ $stderr == *"expired"* ]]
	# another project's vault key does not open it
	MLK_TEST_USER=olivia run --separate-stderr mlk-deid rehydrate --project other --approval IRB-1 --expires 2026-12-31 "$tok"
	assert_failure 1
	assert_output '{"token":"'"$tok"'","found":false}'
	# every lookup is audited, without values
	run jq -c 'select(.action == "rehydrate") | [.decision, .detail.approval, .status]' "$MLK_LAKE/audit/log.ndjson"
	assert_line --index 0 '["deny","IRB-1",3]'
	assert_line --index 1 '["allow","IRB-1",0]'
	assert_line --index 2 '["deny","IRB-1",3]'
	run grep -c MRN-777 "$MLK_LAKE/audit/log.ndjson"
	assert_output 0
	run mlk-audit verify
	assert_success
}

@test "safe-harbor on ../shared/data/hl7v2: names, ids, birth dates, addresses and phones gone" {
	mlk-ingest --quiet --dataset ehr/hl7 "$DATA/hl7v2" > in.ndjson
	[ "$(wc -l < in.ndjson)" -eq 18 ]
	jq -r '
	  def vals: if type == "string" then .
	            elif type == "object" or type == "array" then .[] | vals
	            else empty end;
	  def comp(n): if type == "array" then .[] else . end
	               | if type == "object" then .[n] else . end;
	  [ (.PID[]? | (.["3"] | comp("1")), .["5"], .["6"], .["7"],
	               (.["13"] | comp("1")), (.["14"] | comp("1")),
	               .["19"], .["20"],
	               (.["11"] | comp("1"), comp("3"), comp("5"))),
	    (.NK1[]? | .["2"], (.["5"] | comp("1"))) ]
	  | .[] | vals | select(length > 3)
	  # the Epic sample has placeholder words, not identifiers, in PID
	  | select(test("^(Patient|Autogenerated|TEST|DOB|MRN|SEX)$"; "i")
	           | not)' in.ndjson | sort -u > phi.txt
	[ "$(wc -l < phi.txt)" -gt 50 ]
	run --separate-stderr mlk-deid in.ndjson
	assert_success
	printf '%s\n' "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq 18 ]
	untoken out.ndjson > plain.ndjson
	run grep -F -o -w -f phi.txt plain.ndjson
	assert_failure 1
	# the message type stays; MSH-7 and PID-7 keep their year; ZIP3
	run jq -r 'select(.PID[0]["7"]) | [.message_type, .timestamp, .PID[0]["7"]] | map(length) | @tsv' out.ndjson
	refute_output --regexp '	([0-35-9]|1[0-9])$'
	run jq -c '[.message_type, .PID[0]["11"]["5"]]' <<< "$(sed -n 1p out.ndjson)"
	assert_output '["ADT^A01","274"]'
	# Z-segments nobody named are dropped and said so
	[[ $stderr == *"dropped field 'ZPD' in 1 record"* ]]
	# the patient token links messages of one patient (PID-3)
	[ "$(jq -r ._mlk.patient out.ndjson | grep -c -E '^[0-9a-f-]{36}$')" -ge 15 ]
}

@test "free text: the record's and the patient's own names, and what detectors find, are scrubbed" {
	head -n 1 "$DATA/fhir/Patient.ndjson" > in.ndjson
	pid=$(jq -r .id in.ndjson)
	family=$(jq -r '.name[0].family' in.ndjson)
	given=$(jq -r '.name[0].given[0]' in.ndjson)
	jq -nc --arg p "$pid" --arg f "$family" --arg g "$given" '{resourceType: "Observation", id: "o1", status: "final",
	    code: {text: "note"}, subject: {reference: ("Patient/" + $p)},
	    valueString: ("Seen " + $g + " " + $f + " on 03/04/2021, call 555-123-4567 or mail a.b@example.org; MRN 12345678. Mr. " + $f + " is a 93-year-old.")}' >> in.ndjson
	# a pipe and a file give the same bytes
	mlk-deid in.ndjson > out1.ndjson
	mlk-deid < in.ndjson > out2.ndjson
	cmp out1.ndjson out2.ndjson
	run jq -r 'select(.resourceType == "Observation") | .valueString' out1.ndjson
	assert_output 'Seen [NAME] [NAME] on [DATE], call [PHONE] or mail [EMAIL]; MRN [ID]. Mr. [NAME] is a 90+-year-old.'
	# flat exports: the row's own names leave its notes
	gen_ehr --format flat --records 50 --seed 4 > flat.ndjson
	mlk-deid flat.ndjson > fout.ndjson
	jq -r '.first_name, .last_name' flat.ndjson | sort -u > names
	run grep -c -F -w -f names fout.ndjson
	assert_output 0
	run jq -r '.notes' fout.ndjson
	assert_output --partial '[NAME]'
}

# --- objects ---
# Records naming an object (_mlk.blob) get a de-identified copy of it in
# the object store (common/objdeid.c): DICOM through PS3.15's basic
# profile, VCF/BCF/SAM/BAM headers through htslib.

# The object file a record's blob names.
blob_path() {
	local h=${1#sha256:}
	echo "$MLK_LAKE/objects/sha256/${h:0:2}/$h"
}

# Put a genomics file into the object store as ingest would; print the
# record that names it (type $2).
store() {
	local h
	h=$(sha256sum "$1" | cut -c1-64)
	mkdir -p "$MLK_LAKE/objects/sha256/${h:0:2}"
	cp "$1" "$MLK_LAKE/objects/sha256/${h:0:2}/$h"
	jq -nc --arg b "sha256:$h" --arg t "$2" \
	   '{_mlk: {v: 1, kind: "genomics", type: $t, blob: $b, dataset: "genomics/x"}}'
}

@test "objects: DICOM records point to de-identified copies; the raw objects stay" {
	mlk-ingest --dataset imaging/samples "$DATA/dicom" > in.ndjson 2> /dev/null
	[ "$(wc -l < in.ndjson)" -eq 9 ]
	run --separate-stderr mlk-deid --project imaging in.ndjson
	assert_failure 1
	# the ultrasound has no BurnedInAnnotation: left out, named by hash
	assert_equal "$(grep -c 'burned-in annotation' <<< "$stderr")" 1
	[[ $stderr == *"'sha256:"*"BurnedInAnnotation absent for modality US"* ]]
	echo "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq 8 ]
	# every blob is new, stored, read-only, named by its hash
	jq -r '._mlk.blob' in.ndjson | sort > old
	jq -r '._mlk.blob' out.ndjson | sort > new
	[ -z "$(comm -12 old new)" ]
	while read -r b; do
		f=$(blob_path "$b")
		assert_file_exists "$f"
		[ "sha256:$(sha256sum "$f" | cut -c1-64)" = "$b" ]
		[ ! -w "$f" ] || [ "$(id -u)" -eq 0 ]
	done < new
	# the originals are untouched
	while read -r b; do
		[ "sha256:$(sha256sum "$(blob_path "$b")" | cut -c1-64)" = "$b" ]
	done < old
	# tools nobody here wrote read the copies: identity gone, tokens in
	while read -r b; do
		run dcmdump -q "$(blob_path "$b")"
		assert_success
	done < new
	run /usr/bin/python3 -W ignore -c '
import sys, pydicom
for f in sys.argv[1:]:
    d = pydicom.dcmread(f)
    print(d.get("PatientIdentityRemoved"), len(str(d.get("PatientID", ""))),
          str(d.get("PatientName", "")) == str(d.get("PatientID", "")),
          "InstitutionName" in d, bool(d.get("PatientBirthDate", "")),
          bool(d.get("AccessionNumber", "")), d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID,
          d.SOPInstanceUID.startswith("2.25."))
' $(while read -r b; do blob_path "$b"; done < new)
	assert_success
	# the SR has no PatientID: both stay empty
	assert_equal "$(grep -c '^YES 36 True False False False True True$' <<< "$output")" 7
	assert_equal "$(grep -c '^YES 0 True False False False True True$' <<< "$output")" 1
	run jq -c 'select(.action == "deid") | .detail | [.objects, .objects_left_out]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '[8,1]'
}

@test "objects: same input, key and project give the same objects; another project others" {
	mlk-ingest --dataset imaging/samples "$DATA/dicom" > in.ndjson 2> /dev/null
	mlk-deid --project imaging in.ndjson > a.ndjson 2> /dev/null || true
	mlk-deid --project imaging in.ndjson > b.ndjson 2> /dev/null || true
	mlk-deid --project other in.ndjson > c.ndjson 2> /dev/null || true
	[ -s a.ndjson ]
	cmp a.ndjson b.ndjson
	[ -z "$(comm -12 <(jq -r '._mlk.blob' a.ndjson | sort) <(jq -r '._mlk.blob' c.ndjson | sort))" ]
	# objects are shared among threads: one or five give the same bytes,
	# and the same messages in the same order
	mlk-deid --project imaging in.ndjson > /dev/null 2> e2 || true
	echo 'deid: {threads: 1}' >> "$MLK_LAKE/mlk.yaml"
	mlk-deid --project imaging in.ndjson > d.ndjson 2> e1 || true
	sed -i 's/threads: 1/threads: 5/' "$MLK_LAKE/mlk.yaml"
	cat in.ndjson in.ndjson in.ndjson > in3.ndjson
	mlk-deid --project imaging in3.ndjson > e.ndjson 2> e5 || true
	cmp a.ndjson d.ndjson
	cmp <(cat a.ndjson a.ndjson a.ndjson) e.ndjson
	cmp e1 e2
	[ "$(grep -c burned-in e5)" -eq 3 ]
}

@test "objects: VCF and BAM records get token samples and clean headers; FASTQ and bad blobs are left out" {
	{
		store "$DATA/genomics/pysam_ex1.vcf.gz" vcf
		store "$DATA/genomics/pysam_ex3.bam" bam
		store "$DATA/genomics/pysam_faidx_ex1.fq.gz" fastq
		echo '{"_mlk":{"v":1,"kind":"genomics","type":"vcf","blob":"sha256:nothex"}}'
	} > in.ndjson
	run --separate-stderr mlk-deid --project seq in.ndjson
	assert_failure 1
	[[ $stderr == *"no de-identification for objects of this type yet"* ]]
	[[ $stderr == *"_mlk.blob is not sha256:HEX"* ]]
	echo "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq 2 ]
	vcf=$(blob_path "$(jq -r 'select(._mlk.type == "vcf") | ._mlk.blob' out.ndjson)")
	bam=$(blob_path "$(jq -r 'select(._mlk.type == "bam") | ._mlk.blob' out.ndjson)")
	run --separate-stderr bcftools query -l "$vcf"
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	for l in "${lines[@]}"; do
		[[ $l =~ ^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	done
	[ "$(bcftools view -H --no-version "$vcf" 2>/dev/null | md5sum)" = \
	  "$(bcftools view -H --no-version "$DATA/genomics/pysam_ex1.vcf.gz" 2>/dev/null | md5sum)" ]
	run --separate-stderr bcftools view -h --no-version "$vcf"
	refute_output --partial '##source'
	refute_output --partial '##fileDate'
	run --separate-stderr samtools view -H --no-PG "$bam"
	assert_success
	refute_output --partial '@CO'
	refute_output --partial 'NA12891'
	refute_output --partial 'LB:'
	[ "$(samtools view --no-PG "$bam" | md5sum)" = \
	  "$(samtools view --no-PG "$DATA/genomics/pysam_ex3.bam" | md5sum)" ]
}

@test "objects: the record describes the new object; left-out objects get a reason in quarantine" {
	mlk-ingest --dataset imaging/samples "$DATA/dicom" > in.ndjson 2> /dev/null
	run --separate-stderr mlk-deid --project imaging in.ndjson
	assert_failure 1
	# DICOM records are rebuilt from their object: no rule drops their fields
	[[ $stderr != *"dropped field"* ]]
	echo "$output" > out.ndjson
	run jq -e -s 'length == 8 and all(.[]; (.dicom | type) == "object")' out.ndjson
	assert_success
	# size, UIDs and modality are those of the new file
	jq -r '[.study_instance_uid, .sop_instance_uid, .modality] | join(" ")' out.ndjson > got
	while read -r b s; do
		f=$(blob_path "$b")
		[ "$s" -eq "$(stat -c %s "$f")" ]
		echo "$f"
	done < <(jq -r '"\(._mlk.blob) \(._mlk.size)"' out.ndjson) > files
	/usr/bin/python3 -W ignore -c '
import sys, pydicom
for f in sys.argv[1:]:
    d = pydicom.dcmread(f)
    print(d.get("StudyInstanceUID", ""), d.get("SOPInstanceUID", ""), d.get("Modality", ""))
' $(cat files) > want
	[ "$(wc -l < want)" -eq 8 ]
	diff got want
	run jq -r '.study_instance_uid // empty, .sop_instance_uid // empty' out.ndjson
	assert_success
	refute_output --regexp '(^|\n)1\.'
	# the record's header is the new one: no name, no institution
	[ "$(jq -r '.dicom["00080080"] // empty' out.ndjson)" = "" ]
	run jq -r '.dicom["00100010"].Value[0].Alphabetic // empty' out.ndjson
	refute_output --regexp '\^'
	# the ultrasound: a reason record named by its hash, no value in it
	us=$(jq -r 'select(.modality == "US") | ._mlk.blob' in.ndjson)
	q=$MLK_LAKE/quarantine/_deid/imaging/${us#sha256:}.json
	assert_file_exists "$q"
	run jq -c '[.object, .type, .dataset, .project, .profile, .reason]' "$q"
	assert_output "[\"$us\",\"dicom\",\"imaging/samples\",\"imaging\",\"safe-harbor\",\"burned-in annotation: BurnedInAnnotation absent for modality US\"]"
	[ "$(stat -c %a "$q")" = 444 ]
	# a rerun replaces it: still one reason per object
	mlk-deid --project imaging in.ndjson > /dev/null 2>&1 || true
	[ "$(ls "$MLK_LAKE/quarantine/_deid/imaging" | wc -l)" -eq 1 ]
}

@test "objects: research-pseudonymized moves DICOM dates by the patient's EHR offset and cleans descriptors" {
	mlk-ingest --dataset imaging/ct "$DATA/dicom/CT_CT1_UNC.explicit_little_endian.dcm" \
		"$DATA/dicom/MR_deid_example.dcm" > in.ndjson 2> /dev/null
	# an EHR record of the CT's patient (PatientID 1CT1) on the study day
	echo '{"patient_id":"1CT1","date":"2004-08-26"}' > ehr.ndjson
	cat ehr.ndjson in.ndjson > both.ndjson
	run --separate-stderr mlk-deid --profile research-pseudonymized --project p both.ndjson
	assert_success
	echo "$output" > out.ndjson
	ehr=$(head -1 out.ndjson | jq -r .date)
	[ "$ehr" != 2004-08-26 ]
	ct=$(jq -c 'select(.modality == "CT")' out.ndjson)
	# the record and the object carry the date the EHR record got
	assert_equal "$(jq -r .date <<< "$ct")" "$ehr"
	f=$(blob_path "$(jq -r ._mlk.blob <<< "$ct")")
	run dcmdump -q +P 0008,0020 +P 0028,0303 +P 0010,0020 "$f"
	assert_line --index 0 --partial "[${ehr//-/}]"
	assert_line --index 1 --partial '[MODIFIED]'
	# PatientID is the token the EHR record's patient gets
	tok=$(echo '{"patient_id":"1CT1","mrn":"1CT1"}' | mlk-deid --profile research-pseudonymized --project p | jq -r .mrn)
	assert_line --index 2 --partial "[$tok]"
	# the method codes: basic, modified dates, clean descriptors
	run /usr/bin/python3 -W ignore -c '
import sys, pydicom
d = pydicom.dcmread(sys.argv[1])
print(" ".join(i.CodeValue for i in d.DeidentificationMethodCodeSequence))
print(d.get("StudyDescription", ""), "|", d.get("SeriesDescription", ""))
' "$(blob_path "$(jq -r 'select(.modality == "MR") | ._mlk.blob' out.ndjson)")"
	assert_success
	assert_line --index 0 '113100 113107 113105'
	# descriptions kept, cleaned of the object's own identifiers
	assert_line --index 1 'MRI Abdomen without contrast | MobiView'
	# another project: another offset
	mlk-deid --profile research-pseudonymized --project q ehr.ndjson > q.ndjson
	[ "$(jq -r .date q.ndjson)" != "$ehr" ]
}

@test "objects: a profile's dicom map accepts burned-in text and keeps named private tags; bad maps are usage errors" {
	mlk-ingest --dataset imaging/samples "$DATA/dicom" > in.ndjson 2> /dev/null
	printf 'mlk_profile: 1\nname: team\nextends: safe-harbor\ndicom:\n  accept_burned_in: true\n  keep_private: ["2001,1003"]\n' > team.yaml
	run --separate-stderr mlk-deid --profile ./team.yaml --project t in.ndjson
	assert_success
	[ "${#lines[@]}" -eq 9 ]
	echo "$output" > out.ndjson
	src=$(sha256sum "$DATA/dicom/MR_deid_example.dcm" | cut -c1-64)
	mr=$(blob_path "$(jq -r --arg s "$src" 'select(._mlk.src.sha256 == $s) | ._mlk.blob' out.ndjson)")
	run dcmdump -q "$mr"
	assert_success
	assert_output --partial '(2001,0010) LO [Philips Imaging DD 001]'
	assert_output --partial '(2001,1003)'
	refute_output --partial '(2001,1001)'
	refute_output --partial '(0009,0010)'
	for bad in 'options: [nope]' 'options: [safe-private]' \
		   'options: [full-dates, modified-dates]' \
		   'keep_private: ["0010,0010"]' 'accept_burned_in: maybe' 'colour: red'; do
		printf 'mlk_profile: 1\nname: b\nextends: safe-harbor\ndicom:\n  %s\n' "$bad" > b.yaml
		run --separate-stderr mlk-deid --profile ./b.yaml --project t in.ndjson
		assert_failure 2
		[[ $stderr == *"'./b.yaml':"[0-9]*": dicom"* ]]
		[ -z "$output" ]
	done
}

@test "objects: --sample-map gives each sample its patient's token, the one his EHR records get" {
	{
		store "$DATA/genomics/pysam_ex1.vcf.gz" vcf
		store "$DATA/genomics/pysam_ex3.bam" bam
	} > in.ndjson
	printf 'sample_id\tsite\tpatient_id\nB\tx\tp-77\nNA12891\ty\tp-78\n' > map.tsv
	run --separate-stderr mlk-deid --project seq --sample-map map.tsv in.ndjson
	assert_success
	echo "$output" > out.ndjson
	tok() {
		echo "{\"patient_id\":\"$1\",\"mrn\":\"$1\"}" |
			mlk-deid --profile research-pseudonymized --project seq | jq -r .mrn
	}
	a=$(echo '{"patient_id":"A","mrn":"A"}' | mlk-deid --profile research-pseudonymized --project seq | jq -r .mrn)
	vcf=$(blob_path "$(jq -r 'select(._mlk.type == "vcf") | ._mlk.blob' out.ndjson)")
	run --separate-stderr bcftools query -l "$vcf"
	# A is not in the map: its own name's token; B is patient p-77's
	assert_output "$a
$(tok p-77)"
	# the record describes the new file: its samples, size and build
	[ "$(jq -r 'select(._mlk.type == "vcf") | .samples | join("\n")' out.ndjson)" = "$output" ]
	[ "$(jq -r 'select(._mlk.type == "vcf") | ._mlk.size' out.ndjson)" -eq "$(stat -c %s "$vcf")" ]
	[ "$(jq -r 'select(._mlk.type == "vcf") | .reference_build' out.ndjson)" = GRCh37 ]
	[[ $stderr != *"dropped field"* ]]
	bam=$(blob_path "$(jq -r 'select(._mlk.type == "bam") | ._mlk.blob' out.ndjson)")
	run --separate-stderr samtools view -H --no-PG "$bam"
	assert_equal "$(grep -c "SM:$(tok p-78)" <<< "$output")" 2
	# the map's values never reach stderr or the audit log
	printf 'sample,patient\nB,p-SECRET1\nB,p-SECRET2\n' > bad.csv
	run --separate-stderr mlk-deid --project seq --sample-map bad.csv in.ndjson
	assert_failure 2
	[[ $stderr == *"'bad.csv':3:"* ]]
	[[ $stderr != *SECRET* ]]
	run grep -c SECRET "$MLK_LAKE/audit/log.ndjson"
	assert_output 0
}

@test "objects: records without a blob pass as before" {
	gen_ehr --format flat --records 20 --seed 3 > flat.ndjson
	run --separate-stderr mlk-deid --project p flat.ndjson
	assert_success
	[ "${#lines[@]}" -eq 20 ]
}

# --- genomics objects: CRAM and indexes ---
# CRAM is de-identified without its reference (header cleaned, containers
# copied verbatim); every copy that can be indexed gets its own index,
# stored as an object and named by _mlk.index; the original's index
# records are left out on purpose (common/gendeid.c, common/objdeid.c).

TOKEN_RE='^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'


# Copy the object and index of the output record of type $1 to $2 and
# $2 plus the index suffix $3, as a user would to query it.
gen_fetch() {
	local r
	r=$(jq -c --arg t "$1" 'select(._mlk.type == $t)' out.ndjson)
	[ "$(wc -l <<< "$r")" -eq 1 ]
	cp "$(blob_path "$(jq -r '._mlk.blob' <<< "$r")")" "$2"
	cp "$(blob_path "$(jq -r '._mlk.index' <<< "$r")")" "$2$3"
}

@test "genomics objects: CRAM is de-identified without its reference; samtools reads the same reads" {
	G=$DATA/genomics
	mlk-ingest --dataset genomics/x "$G/pysam_ex3.cram" "$G/pysam_ex3.cram.crai" > in.ndjson 2> /dev/null
	assert_equal "$(jq -r '._mlk.type' in.ndjson | sort | tr '\n' ' ')" "crai cram "
	run --separate-stderr mlk-deid --project seq in.ndjson
	assert_success
	assert_equal "$(grep -c 'index records left out' <<< "$stderr")" 1
	[[ $stderr == *"mlk-deid: 1 index records left out: each de-identified object carries its own index (_mlk.index)"* ]]
	echo "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq 1 ]
	run jq -r '._mlk | [.type, (keys_unsorted | index("index") - index("blob"))] | @tsv' out.ndjson
	assert_output "$(printf 'cram\t1')"
	b=$(jq -r '._mlk.blob' out.ndjson)
	[ "$b" != "$(jq -r 'select(._mlk.type == "cram") | ._mlk.blob' in.ndjson)" ]
	cram=$(blob_path "$b")
	[ "sha256:$(sha256sum "$cram" | cut -c1-64)" = "$b" ]
	# a CRAM of the input's version, complete (EOF container), one only
	run htsfile "$cram"
	assert_output --partial 'CRAM version 3.0'
	run samtools quickcheck -v "$cram"
	assert_success
	assert_equal "$(grep -c 'EOF' "$cram")" 1
	# the file id holds no file name
	[ -z "$(head -c 26 "$cram" | tail -c 20 | tr -d '\0')" ]
	# same reads, read through the reference embedded in the input
	[ "$(samtools view --no-PG "$cram" | md5sum)" = \
	  "$(samtools view --no-PG "$G/pysam_ex3.cram" | md5sum)" ]
	[ "$(samtools view --no-PG "$cram" | wc -l)" -eq 4 ]
	# the header: @SQ and @RG in order with their ids, SM a token
	run --separate-stderr samtools view -H --no-PG "$cram"
	assert_success
	assert_equal "$(grep '^@SQ' <<< "$output" | cut -f2 | tr '\n' ' ')" "SN:chr1 SN:chr2 "
	assert_equal "$(grep '^@RG' <<< "$output" | cut -f2 | tr '\n' ' ')" "ID:L1 ID:L2 "
	refute_output --partial 'NA12891'
	refute_output --partial '@CO'
	refute_output --regexp $'\t(LB|PU|CN|UR):'
	for sm in $(grep '^@RG' <<< "$output" | grep -oE 'SM:[^	]*' | cut -c4-); do
		[[ $sm =~ $TOKEN_RE ]]
	done
	run jq -c 'select(.action == "deid") | .detail | [.objects, .objects_left_out, .indexes_superseded]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '[1,0,1]'
}

@test "genomics objects: each indexable copy carries its own index, equal to samtools' and bcftools' own" {
	G=$DATA/genomics
	mlk-ingest --dataset genomics/x "$G/pysam_ex1.vcf.gz" "$G/pysam_ex1.vcf.gz.tbi" \
		"$G/pysam_ex1.sorted.bam" "$G/pysam_ex1.sorted.bam.bai" \
		"$G/pysam_ex3.cram" "$G/pysam_ex3.cram.crai" "$G/pysam_ex3.sam" \
		> in.ndjson 2> /dev/null
	[ "$(wc -l < in.ndjson)" -eq 7 ]
	run --separate-stderr mlk-deid --project seq in.ndjson
	assert_success
	[[ $stderr == *"mlk-deid: 3 index records left out: each de-identified object carries its own index (_mlk.index)"* ]]
	echo "$output" > out.ndjson
	run jq -r '._mlk | [.type, .index != null] | @tsv' out.ndjson
	assert_equal "$(sort <<< "$output" | tr '\t\n' ': ')" "bam:true cram:true sam:false vcf:true "
	# every index is a stored object named by its hash, read-only
	for i in $(jq -r '._mlk.index // empty' out.ndjson); do
		[[ $i =~ ^sha256:[0-9a-f]{64}$ ]]
		f=$(blob_path "$i")
		[ "sha256:$(sha256sum "$f" | cut -c1-64)" = "$i" ]
		[ ! -w "$f" ] || [ "$(id -u)" -eq 0 ]
	done
	gen_fetch vcf x.vcf.gz .tbi
	gen_fetch bam x.bam .bai
	gen_fetch cram x.cram .crai
	# region queries through our indexes give what the input gives
	[ "$(bcftools view -H -r chr1:16900000-17100000 x.vcf.gz | wc -l)" -eq 5 ]
	[ "$(bcftools view -H --no-version -r chr1:16900000-17100000 x.vcf.gz | md5sum)" = \
	  "$(bcftools view -H --no-version -r chr1:16900000-17100000 "$G/pysam_ex1.vcf.gz" 2> /dev/null | md5sum)" ]
	[ "$(samtools view x.bam chr2:100-900 | wc -l)" -gt 10 ]
	[ "$(samtools view x.bam chr2:100-900 | md5sum)" = \
	  "$(samtools view "$G/pysam_ex1.sorted.bam" chr2:100-900 | md5sum)" ]
	assert_equal "$(samtools idxstats x.bam)" "$(samtools idxstats "$G/pysam_ex1.sorted.bam")"
	[ "$(samtools view x.cram chr2:80-100 | md5sum)" = \
	  "$(samtools view "$G/pysam_ex3.cram" chr2:80-100 | md5sum)" ]
	run samtools idxstats x.cram
	assert_output "$(printf 'chr1\t1575\t1\t0\nchr2\t1584\t3\t0\n*\t0\t0\t0')"
	# the same bytes the tools themselves build
	bcftools index -t -o ref.tbi x.vcf.gz
	samtools index -o ref.bai x.bam
	samtools index -o ref.crai x.cram
	cmp ref.tbi x.vcf.gz.tbi
	cmp ref.bai x.bam.bai
	cmp ref.crai x.cram.crai
	run jq -c 'select(.action == "deid") | .detail | [.objects, .objects_left_out, .indexes_superseded]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '[4,0,3]'
}

@test "genomics objects: a BCF gets a CSI; a name-sorted BAM and a plain VCF get no index, without error" {
	G=$DATA/genomics
	bcftools view --no-version -Ob -o x.bcf "$G/pysam_ex1.vcf.gz" 2> /dev/null
	bcftools view --no-version -Ov -o plain.vcf "$G/pysam_ex1.vcf.gz" 2> /dev/null
	samtools sort -n -o byname.bam "$G/pysam_ex1.sorted.bam"
	{
		store x.bcf bcf
		store plain.vcf vcf
		store byname.bam bam
	} > in.ndjson
	run --separate-stderr mlk-deid --project seq in.ndjson
	assert_success
	[[ $stderr != *"index records"* ]]
	echo "$output" > out.ndjson
	[ "$(wc -l < out.ndjson)" -eq 3 ]
	run jq -r '._mlk | [.type, .index != null] | @tsv' out.ndjson
	assert_output "$(printf 'bcf\ttrue\nvcf\tfalse\nbam\tfalse')"
	gen_fetch bcf y.bcf .csi
	[ "$(bcftools view -H -r chr2 y.bcf 2> /dev/null | wc -l)" -eq 16 ]
	run bcftools index -s y.bcf
	assert_success
	assert_output --partial $'chr1\t249250621\t29'
	[ "$(bcftools view -H --no-version -r chr2 y.bcf | md5sum)" = \
	  "$(bcftools view -H --no-version -t chr2 x.bcf 2> /dev/null | md5sum)" ]
	bcftools index -o ref.csi y.bcf
	cmp ref.csi y.bcf.csi
	# the copies themselves are still complete
	[ "$(samtools view -c "$(blob_path "$(jq -r 'select(._mlk.type == "bam") | ._mlk.blob' out.ndjson)")")" -eq 3270 ]
}

@test "genomics objects: same input, key and project give the same copies and indexes; a stale _mlk.index is replaced" {
	G=$DATA/genomics
	mlk-ingest --dataset genomics/x "$G/pysam_ex3.cram" "$G/pysam_ex1.vcf.gz" > in.ndjson 2> /dev/null
	mlk-deid --project seq in.ndjson > a.ndjson 2> /dev/null
	mlk-deid --project seq in.ndjson > b.ndjson 2> /dev/null
	cmp a.ndjson b.ndjson
	[ "$(jq -r '._mlk.index' a.ndjson | sort -u | wc -l)" -eq 2 ]
	# an index the input names (before or after the blob) is the original's
	jq -c '._mlk = ({index: "sha256:stale"} + ._mlk)' in.ndjson > first.ndjson
	jq -c '._mlk.index = "sha256:stale"' in.ndjson > last.ndjson
	for f in first last; do
		run --separate-stderr mlk-deid --project seq $f.ndjson
		assert_success
		assert_equal "$output" "$(cat a.ndjson)"
	done
}

@test "genomics objects: a truncated CRAM is left out with the reason, exit 1" {
	head -c 1000 "$DATA/genomics/pysam_ex3.cram" > cut.cram
	store cut.cram cram > in.ndjson
	h=$(sha256sum cut.cram | cut -c1-64)
	run --separate-stderr mlk-deid --project seq in.ndjson
	assert_failure 1
	assert_output ''
	assert_equal "$stderr" "mlk-deid: 'sha256:$h': truncated container"
	run jq -c 'select(.action == "deid") | .detail | [.objects, .objects_left_out, .indexes_superseded]' "$MLK_LAKE/audit/log.ndjson"
	assert_output '[0,1,0]'
}

@test "objects: kill -9 at any moment leaves only whole objects and reasons; a rerun gives what an unbroken run gives" {
	/usr/bin/python3 "$MLK_ROOT/scripts/gen-dicom" --files 200 --seed 5 \
		--data "$DATA/dicom" dcm > /dev/null
	mlk-ingest --quiet --dataset imaging/crash dcm > in.ndjson
	total=$(grep -c . in.ndjson)
	[ "$total" -eq 200 ]
	# the same lake and key, never interrupted
	cp -a "$MLK_LAKE" clean
	run --separate-stderr mlk-deid --lake clean --project crash in.ndjson
	assert_failure 1
	echo "$output" > want.ndjson
	for delay in 0.05 0.15 0.3 0.5; do
		mlk-deid --project crash in.ndjson > out.ndjson 2> /dev/null &
		pid=$!
		sleep "$delay"
		kill -9 "$pid" 2> /dev/null || true
		wait "$pid" 2> /dev/null || true
		# every object under its final name holds the bytes of that name
		find "$MLK_LAKE/objects/sha256" -type f ! -name '.tmp-*' |
			while read -r f; do
				[ "$(sha256sum < "$f" | cut -c1-64)" = "${f##*/}" ] ||
					{ echo "torn object: $f"; exit 1; }
			done
		# every record that got out names a whole object
		jq -r '._mlk.blob' out.ndjson | while read -r b; do
			[ -f "$(blob_path "$b")" ] || { echo "missing: $b"; exit 1; }
		done
		# every reason under its final name is whole
		for q in "$MLK_LAKE"/quarantine/_deid/crash/*.json; do
			[ -e "$q" ] || continue
			jq -e .reason "$q" > /dev/null
		done
	done
	run --separate-stderr mlk-deid --project crash in.ndjson
	assert_failure 1
	[ "$output" = "$(cat want.ndjson)" ]
	# each record is either out or has its reason
	reasons=$(ls "$MLK_LAKE/quarantine/_deid/crash" | grep -c '\.json$')
	[ "$reasons" -gt 0 ]
	[ $(($(grep -c . want.ndjson) + reasons)) -eq "$total" ]
}

@test "genomics objects: a BAM bigger than the store's background-copy threshold is stored whole" {
	# 9+ MiB of reads that do not compress (random bases and qualities)
	awk 'BEGIN {
		srand(7)
		print "@HD\tVN:1.6\tSO:unsorted"
		print "@SQ\tSN:chr1\tLN:248956422"
		print "@RG\tID:rg1\tSM:PATIENT-77\tLB:lib-of-PATIENT-77"
		for (i = 0; i < 60000; i++) {
			s = ""; q = ""
			for (j = 0; j < 150; j++) {
				s = s substr("ACGT", int(rand() * 4) + 1, 1)
				q = q sprintf("%c", 35 + int(rand() * 40))
			}
			printf "r%d\t4\t*\t0\t0\t*\t*\t0\t0\t%s\t%s\tRG:Z:rg1\n", i, s, q
		}
	}' | samtools view -b -o big.bam -
	[ "$(stat -c %s big.bam)" -gt $((8 << 20)) ]
	store big.bam bam > in.ndjson
	run --separate-stderr mlk-deid --project p in.ndjson
	assert_success
	f=$(blob_path "$(jq -r ._mlk.blob <<< "$output")")
	samtools quickcheck "$f"
	[ "$(samtools view -c "$f")" -eq 60000 ]
	[ "$(samtools view "$f" | md5sum)" = "$(samtools view big.bam | md5sum)" ]
	run samtools view -H "$f"
	refute_output --partial PATIENT-77
	# nothing of the work is left in the store's folder
	[ -z "$(find "$MLK_LAKE/objects" -name '.tmp-*')" ]
}

@test "genomics objects: a record's patient column names its only sample's patient; the record carries his EHR token" {
	bcftools view -s "$(bcftools query -l "$DATA/genomics/pysam_ex1.vcf.gz" | head -1)" \
		-Oz -o one.vcf.gz "$DATA/genomics/pysam_ex1.vcf.gz" 2> /dev/null
	mlk-ingest --quiet --dataset genomics/x one.vcf.gz \
		"$DATA/genomics/pysam_ex1.vcf.gz" "$DATA/genomics/pysam_ex3.bam" |
		jq -c '. + {patient_id: "PAT-9"}' > in.ndjson
	echo '{"patient_id":"PAT-9","date":"2020-01-01"}' >> in.ndjson
	run --separate-stderr mlk-deid --project p in.ndjson
	assert_success
	echo "$output" > out.ndjson
	tok=$(jq -r 'select(._mlk.type == null) | .patient_id' out.ndjson)
	[[ $tok =~ ^[0-9a-f-]{36}$ ]]
	# every genomics record carries the token, never the id
	[ "$(jq -r 'select(._mlk.type != null) | .patient_id' out.ndjson | sort -u)" = "$tok" ]
	! grep -q PAT-9 out.ndjson
	f() { blob_path "$(jq -r "select(._mlk.type == \"$1\") | ._mlk.blob" out.ndjson | sed -n "${2}p")"; }
	# one sample: the patient's token, in the file and the record
	[ "$(bcftools query -l "$(f vcf 1)")" = "$tok" ]
	[ "$(samtools view -H "$(f bam 1)" | grep -o 'SM:[^	]*' | sort -u)" = "SM:$tok" ]
	# two samples: the record cannot say which is his; each its own token
	run --separate-stderr bcftools query -l "$(f vcf 2)"
	assert_equal "${#lines[@]}" 2
	refute_line "$tok"
}
