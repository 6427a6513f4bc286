#!/usr/bin/env bats
# mlk-catalog: init (the catalog proper comes with its own issue).

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
