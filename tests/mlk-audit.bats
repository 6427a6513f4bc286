#!/usr/bin/env bats
# mlk-audit: verify, checkpoints, proofs, query, trace.

load helper

# stderr_has TEXT: the last `run --separate-stderr` printed TEXT on stderr.
stderr_has() {
	[[ $stderr == *"$1"* ]] || {
		echo "stderr: $stderr" >&2
		return 1
	}
}

# A lake with NEV events: init, an ingest of the FHIR sample data, and
# ingests of Patient.ndjson into ehr/p1 ... (each appends one event).
setup_lake() {
	mklake
	run mlk-ingest --quiet --dataset ehr/fhir --purpose T-1 "$DATA/fhir"
	assert_success
	for i in 1 2 3 4 5; do
		mlk-ingest --quiet --dataset "ehr/p$i" "$DATA/fhir/Patient.ndjson" >/dev/null
	done
	LOG=$MLK_LAKE/audit/log.ndjson
}

@test "verify: an intact log passes and counts its events" {
	setup_lake
	run --separate-stderr mlk-audit verify
	assert_success
	assert_equal "$(jq -r '"\(.verified) \(.events) \(.checkpoints)"' <<<"$output")" "true 7 0"
}

@test "checkpoint: signed tree head, key 0600, public copy, verify checks it" {
	setup_lake
	run --separate-stderr mlk-audit checkpoint
	assert_success
	assert_equal "$(jq -r .tree_size <<<"$output")" 7
	assert_equal "$(jq -r '.signature | length' <<<"$output")" 128
	assert_equal "$(stat -c %a "$MLK_LAKE/keys/audit-ed25519.pem")" 600
	assert_file_exists "$MLK_LAKE/audit/checkpoint-key.pub"
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/checkpoints.ndjson")" "$output"
	# the signature checks with openssl itself
	jq -j '"mlk-audit tree head v1\n\(.tree_size)\n\(.root_hash)\n\(.time)\n\(.key_id)\n"' <<<"$output" >msg
	jq -r .signature <<<"$output" | xxd -r -p >sig
	run openssl pkeyutl -verify -pubin -inkey "$MLK_LAKE/audit/checkpoint-key.pub" -rawin -in msg -sigfile sig
	assert_success
	run mlk-audit verify
	assert_success
	assert_equal "$(jq -r .covered <<<"$output")" 7
}

@test "tamper: a changed byte is found at the changed event" {
	setup_lake
	sed -i '3s/"status":0/"status":1/' "$LOG"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	assert_equal "$output" ""
	assert_equal "$stderr" "mlk-audit: '$LOG':3: seq 3: event does not match the \"prev\" hash of seq 4: it was changed, or an event was removed or inserted after it"
}

@test "tamper: a dropped line is found where it was" {
	setup_lake
	sed -i '4d' "$LOG"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "':4: seq 4: found seq 5 here"
}

@test "tamper: two swapped lines are found" {
	setup_lake
	awk 'NR == 3 { keep = $0; next } NR == 4 { print; print keep; next } 1' "$LOG" >swapped && cat swapped >"$LOG"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "':3: seq 3: found seq 4 here"
}

@test "tamper: a torn last line is found" {
	setup_lake
	truncate -s -10 "$LOG"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "':7: seq 7: torn last line"
}

@test "tamper: whole events cut from the end are found by the checkpoint" {
	setup_lake
	mlk-audit checkpoint >/dev/null
	sed -i '$d' "$LOG"
	sed -i '$d' "$LOG"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "':6: seq 6: log truncated: it has 5 events, checkpoint 1 covers 7"
}

# Rewrite the log from line N on with a recomputed chain (what a forger
# with write access but no signing key can do).
rechain() {
	python3 - "$LOG" <<'PY'
import hashlib, json, sys
p = sys.argv[1]
lines = open(p, 'rb').read().split(b'\n')[:-1]
prev = '0' * 64
out = []
for i, l in enumerate(lines):
    ev = json.loads(l)
    ev['seq'] = i + 1
    ev['prev'] = prev
    b = json.dumps(ev, separators=(',', ':')).encode()
    out.append(b)
    prev = hashlib.sha256(b).hexdigest()
open(p, 'wb').write(b'\n'.join(out) + b'\n')
PY
}

@test "tamper: an edit with a recomputed chain is found by the checkpoint" {
	setup_lake
	mlk-audit checkpoint >/dev/null
	sed -i '2s/"purpose":"T-1"/"purpose":"T-2"/' "$LOG"
	run mlk-audit verify
	assert_failure 4
	rechain
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "seq 1: events 1 to 7 do not match checkpoint 1"
}

@test "tamper: a forged event with a forged checkpoint is rejected" {
	setup_lake
	mlk-audit checkpoint >/dev/null
	# a new event chained correctly; the forger signs with a key of their own
	tail -n 1 "$LOG" | jq -c '.seq = 8 | .action = "nothing"' >>"$LOG"
	rechain
	openssl genpkey -algorithm ed25519 -out forger.pem 2>/dev/null
	root=$(python3 -c '
import hashlib,sys
L=[hashlib.sha256(b"\0"+l).digest() for l in open(sys.argv[1],"rb").read().split(b"\n")[:-1]]
def mth(a):
    if len(a)==1: return a[0]
    k=1
    while k*2<len(a): k*=2
    return hashlib.sha256(b"\1"+mth(a[:k])+mth(a[k:])).digest()
print(mth(L).hex())' "$LOG")
	printf 'mlk-audit tree head v1\n8\n%s\n2026-01-01T00:00:00Z\n%s\n' "$root" \
		"$(tail -n 1 "$MLK_LAKE/audit/checkpoints.ndjson" | jq -r .key_id)" >msg
	openssl pkeyutl -sign -inkey forger.pem -rawin -in msg -out sig
	jq -nc --arg r "$root" --arg s "$(xxd -p -c 256 sig)" \
		--arg k "$(tail -n 1 "$MLK_LAKE/audit/checkpoints.ndjson" | jq -r .key_id)" \
		'{tree_size:8,root_hash:$r,time:"2026-01-01T00:00:00Z",key_id:$k,signature:$s}' \
		>>"$MLK_LAKE/audit/checkpoints.ndjson"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "checkpoints.ndjson':2: checkpoint of 8 events: bad signature"
	# without the forged checkpoint the forged event is covered by no
	# checkpoint: verify says so (8 events, 7 covered)
	cp "$MLK_LAKE/audit/checkpoints.ndjson" cps
	sed -i '$d' "$MLK_LAKE/audit/checkpoints.ndjson"
	run --separate-stderr mlk-audit verify
	assert_success
	assert_equal "$(jq -r '"\(.events) \(.covered)"' <<<"$output")" "8 7"
	cp cps "$MLK_LAKE/audit/checkpoints.ndjson"
	# and a public key swapped for the forger's is caught while keys/ is readable
	openssl pkey -in forger.pem -pubout -out "$MLK_LAKE/audit/checkpoint-key.pub"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "not the public half of keys/audit-ed25519.pem"
}

@test "prove and check-proof: inclusion and consistency verified, forgeries rejected" {
	setup_lake
	mlk-audit checkpoint >old-head.json
	mlk-ingest --quiet --dataset ehr/p9 "$DATA/fhir/Patient.ndjson" >/dev/null
	mlk-ingest --quiet --dataset ehr/p8 "$DATA/fhir/Patient.ndjson" >/dev/null
	mlk-audit checkpoint >head.json
	cp "$MLK_LAKE/audit/checkpoint-key.pub" key.pub
	sed -n 3p "$LOG" >event
	mlk-audit prove --inclusion 3 >inc.json
	assert_equal "$(jq -r '"\(.type) \(.seq) \(.tree_size)"' inc.json)" "inclusion 3 9"
	mlk-audit prove --consistency 7 >con.json
	# the auditor needs no lake
	(
		unset MLK_LAKE
		cd "$BATS_TEST_TMPDIR" && mkdir -p away && cd away
		run mlk-audit check-proof --key ../key.pub --head ../head.json --event ../event ../inc.json
		assert_success
		assert_output "inclusion proof verified: event 3 of 9, $(jq -r .key_id ../head.json)"
		run mlk-audit check-proof --key ../key.pub --head ../head.json --old-head ../old-head.json ../con.json
		assert_success
		assert_output --partial "consistency proof verified: 7 events extend to 9"
	)
	# another event than the proven one
	sed -n 4p "$LOG" >other
	run mlk-audit check-proof --key key.pub --head head.json --event other inc.json
	assert_failure 4
	# a forged path element
	jq -c '.path[0] = ("0" * 64)' inc.json >forged.json
	run mlk-audit check-proof --key key.pub --head head.json --event event forged.json
	assert_failure 4
	jq -c '.path[1] = ("1" * 64)' con.json >forged.json
	run mlk-audit check-proof --key key.pub --head head.json --old-head old-head.json forged.json
	assert_failure 4
	# a head whose root was changed no longer carries a valid signature
	jq -c '.root_hash = ("2" * 64)' head.json >bad-head.json
	run --separate-stderr mlk-audit check-proof --key key.pub --head bad-head.json --event event inc.json
	assert_failure 4
	stderr_has "tree head signature does not verify"
}

@test "prove: against an older size, and usage errors" {
	setup_lake
	run mlk-audit prove --inclusion 2
	assert_failure 2
	run mlk-audit prove --inclusion 2 --size 5
	assert_success
	assert_equal "$(jq -r '.path | length' <<<"$output")" 3
	run mlk-audit prove --inclusion 9 --size 7
	assert_failure 2
	run mlk-audit prove --consistency 3 --inclusion 2
	assert_failure 2
	run mlk-audit verify --who x
	assert_failure 2
	run mlk-audit frobnicate
	assert_failure 2
}

@test "concurrent appends from 8 processes lose nothing and verify" {
	mklake
	for p in 1 2 3 4 5 6 7 8; do
		(for i in 1 2 3 4 5 6; do
			mlk-ingest --quiet --dataset "ehr/c$p" "$DATA/fhir/Patient.ndjson" >/dev/null
		done) &
	done
	wait
	run mlk-audit verify
	assert_success
	assert_equal "$(jq -r .events <<<"$output")" 49
	assert_equal "$(jq -r .seq "$MLK_LAKE/audit/log.ndjson" | sort -n | uniq | wc -l)" 49
	for p in 1 2 3 4 5 6 7 8; do
		assert_equal "$(mlk-audit query --dataset "ehr/c$p" | wc -l)" 6
	done
}

@test "query: by user, action, dataset and time" {
	setup_lake
	run mlk-audit query --action init
	assert_success
	assert_equal "$(jq -r .seq <<<"$output")" 1
	assert_equal "$(mlk-audit query --dataset ehr | wc -l)" 6
	assert_equal "$(mlk-audit query --dataset ehr/fhir | jq -r .purpose)" T-1
	assert_equal "$(mlk-audit query --who "$(id -un)" --action ingest | wc -l)" 6
	assert_equal "$(mlk-audit query --who nobody-here | wc -l)" 0
	assert_equal "$(mlk-audit query --since 2000-01-01 --until 2999-12-31 | wc -l)" 7
	assert_equal "$(mlk-audit query --until 2000-01-01 | wc -l)" 0
	today=$(date -u +%F)
	assert_equal "$(mlk-audit query --since "$today" --until "$today" | wc -l)" 7
}

@test "trace: batch back to its manifest and the exact FHIR source files" {
	setup_lake
	batch=$(mlk-audit query --dataset ehr/fhir | jq -r '.outputs[0].batch')
	run --separate-stderr mlk-audit trace "$batch"
	assert_success
	# every file of the sample folder, with its sha256 and size
	for f in "$DATA"/fhir/*.ndjson "$DATA"/fhir/bundles/*; do
		[ -f "$f" ] || continue
		sha=$(sha256sum "$f" | cut -c1-64)
		line=$(jq -c --arg s "source:$sha" 'select(.from == $s)' <<<"$output")
		assert_equal "$(jq -r .path <<<"$line")" "$f"
		assert_equal "$(jq -r .bytes <<<"$line")" "$(stat -c %s "$f")"
		assert_equal "$(jq -r .to <<<"$line")" "batch:$batch"
	done
	msha=$(sha256sum "$MLK_LAKE"/raw/ehr/fhir/batch="$batch"/_manifest.json | cut -c1-64)
	assert_equal "$(jq -r --arg m "manifest:$msha" 'select(.from == $m) | .relation' <<<"$output")" describes
	assert_equal "$(jq -r 'select(.relation == "part_of") | .to' <<<"$output")" dataset:ehr/fhir
	# forward: the Patient file was used by the fhir batch and by ehr/p1..p5
	sha=$(sha256sum "$DATA/fhir/Patient.ndjson" | cut -c1-64)
	run --separate-stderr mlk-audit trace "$sha"
	assert_success
	assert_equal "$(jq -r 'select(.relation == "ingested_into") | .from' <<<"$output" | sort -u)" "source:$sha"
	assert_equal "$(jq -r 'select(.relation == "part_of") | .to' <<<"$output" | sort | tr '\n' ' ')" \
		"dataset:ehr/fhir dataset:ehr/p1 dataset:ehr/p2 dataset:ehr/p3 dataset:ehr/p4 dataset:ehr/p5 "
	# a dataset, as dot
	run mlk-audit trace --format dot ehr/p2
	assert_success
	assert_line --index 0 "digraph lineage {"
	assert_output --partial "\"source:$sha\" -> \"batch:"
	run mlk-audit trace bdeadbeef
	assert_failure 2
}

@test "trace: a manifest changed after its ingest is an integrity failure" {
	setup_lake
	m=$(echo "$MLK_LAKE"/raw/ehr/p1/batch=*/_manifest.json)
	chmod u+w "$m" "$(dirname "$m")"
	sed -i 's/"records":/"records": /' "$m"
	run --separate-stderr mlk-audit trace ehr/p1
	assert_failure 4
	stderr_has "does not match the manifest_sha256 of its ingest event"
}

# --- rotation ------------------------------------------------------------

SEG=audit/segments

# ingest_one NAME: one more event (an ingest of Patient.ndjson into ehr/NAME)
ingest_one() {
	mlk-ingest --quiet --dataset "ehr/$1" "$DATA/fhir/Patient.ndjson" >/dev/null
}

# all_seqs: the seq of every event, in the order query prints them
all_seqs() {
	mlk-audit query | jq -r .seq | tr '\n' ' '
}

@test "rotate: seals the log as a read-only segment with its tree head; the chain and seq go on" {
	setup_lake
	run --separate-stderr mlk-audit rotate
	assert_success
	assert_equal "$(jq -r '"\(.rotated) \(.segment) \(.tree_size)"' <<<"$output")" \
		"true audit/segments/000001.ndjson 8"
	assert_equal "$(stat -c %a "$MLK_LAKE/$SEG/000001.ndjson")" 444
	assert_equal "$(stat -c %a "$MLK_LAKE/$SEG/000001.head.json")" 444
	assert_equal "$(wc -l <"$MLK_LAKE/$SEG/000001.ndjson")" 8
	assert_equal "$(stat -c %s "$LOG")" 0
	# the rotation's own event, allowed by policy, closes the segment
	assert_equal "$(tail -n 1 "$MLK_LAKE/$SEG/000001.ndjson" | jq -c '[.seq, .tool, .action, .decision, .rule, .outputs]')" \
		'[8,"mlk-audit","rotate","allow","owner",[{"segment":"audit/segments/000001.ndjson","tree_size":8}]]' 
	# the head is signed, covers the segment, and is also a checkpoint
	head=$(cat "$MLK_LAKE/$SEG/000001.head.json")
	assert_equal "$(jq -r .tree_size <<<"$head")" 8
	assert_equal "$(jq -r .root_hash <<<"$head")" "$(jq -r .root_hash <<<"$output")"
	assert_equal "$(tail -n 1 "$MLK_LAKE/audit/checkpoints.ndjson")" "$head"
	# the next event chains to the last event of the segment
	ingest_one q1
	assert_equal "$(jq -r .seq "$LOG")" 9
	assert_equal "$(jq -r .prev "$LOG")" "$(tail -n 1 "$MLK_LAKE/$SEG/000001.ndjson" | tr -d '\n' | sha256sum | cut -c1-64)"
	mlk-audit rotate >/dev/null
	ingest_one q2
	run --separate-stderr mlk-audit verify
	assert_success
	assert_equal "$(jq -r '"\(.events) \(.segments) \(.checkpoints) \(.covered)"' <<<"$output")" "11 2 2 10"
	# an empty log is not rotated, nor one under --min-size
	mlk-audit rotate >/dev/null
	run mlk-audit rotate
	assert_success
	assert_output '{"rotated":false}'
	ingest_one q3
	run mlk-audit rotate --min-size 100000
	assert_output '{"rotated":false}'
	printf 'audit:\n  rotate_bytes: 100\n' >>"$MLK_LAKE/mlk.yaml"
	run mlk-audit rotate
	assert_equal "$(jq -r .segment <<<"$output")" audit/segments/000004.ndjson
	run mlk-audit rotate --min-size x
	assert_failure 2
	# someone without the admin action is denied, and that is audited
	sed -i 's/^test_identity_override: false$/test_identity_override: true/' "$MLK_LAKE/policy.yaml"
	ingest_one q4
	run --separate-stderr env MLK_TEST_USER=eve mlk-audit rotate
	assert_failure 3
	stderr_has "rotate denied for user 'eve' by policy rule 'default-deny'"
	assert_equal "$(tail -n 1 "$LOG" | jq -c '[.actor.user, .action, .decision, .status]')" '["eve","rotate","deny",3]'
	assert_equal "$(ls "$MLK_LAKE/$SEG" | grep -c 'ndjson$')" 4
}

@test "rotate: query, trace, prove and old proofs work across segments" {
	setup_lake
	mlk-audit checkpoint >old-head.json
	cp "$MLK_LAKE/audit/checkpoint-key.pub" key.pub
	sed -n 2p "$LOG" >event2
	mlk-audit prove --inclusion 2 >old-inc.json
	batch=$(mlk-audit query --dataset ehr/fhir | jq -r '.outputs[0].batch')
	mlk-audit rotate >/dev/null
	ingest_one r1
	mlk-audit rotate >/dev/null
	ingest_one r2
	assert_equal "$(all_seqs)" "1 2 3 4 5 6 7 8 9 10 11 "
	assert_equal "$(mlk-audit query --dataset ehr/r1 | jq -r .seq)" 9
	assert_equal "$(mlk-audit query --action rotate | jq -r .seq | tr '\n' ' ')" "8 10 "
	assert_equal "$(mlk-audit query --action init | jq -r .seq)" 1
	# trace reads the segment that holds the batch's event
	run --separate-stderr mlk-audit trace "$batch"
	assert_success
	assert_equal "$(jq -r 'select(.relation == "part_of") | .to' <<<"$output")" dataset:ehr/fhir
	sha=$(sha256sum "$DATA/fhir/Patient.ndjson" | cut -c1-64)
	assert_equal "$(mlk-audit trace "$sha" | jq -r 'select(.relation == "part_of") | .to' | sort | tr '\n' ' ')" \
		"dataset:ehr/fhir dataset:ehr/p1 dataset:ehr/p2 dataset:ehr/p3 dataset:ehr/p4 dataset:ehr/p5 dataset:ehr/r1 dataset:ehr/r2 "
	run mlk-audit trace bdeadbeef
	assert_failure 2
	# the proof made before rotation still checks
	run mlk-audit check-proof --key key.pub --head old-head.json --event event2 old-inc.json
	assert_success
	# new proofs span segments: event 2 in the tree of 11, and 7 -> 11
	mlk-audit checkpoint >head.json
	mlk-audit prove --inclusion 2 >inc.json
	run mlk-audit check-proof --key key.pub --head head.json --event event2 inc.json
	assert_success
	assert_output --partial "event 2 of 11"
	mlk-audit prove --consistency 7 >con.json
	run mlk-audit check-proof --key key.pub --head head.json --old-head old-head.json con.json
	assert_success
	assert_output --partial "7 events extend to 11"
}

# A lake with two sealed segments (events 1-8 and 9-10, each ending in
# its rotation's event) and one active event (11).
setup_segments() {
	setup_lake
	mlk-audit rotate >/dev/null
	ingest_one s1
	mlk-audit rotate >/dev/null
	ingest_one s2
	S=$MLK_LAKE/$SEG
}

@test "tamper: a changed byte in a sealed segment is found in that segment" {
	setup_segments
	chmod u+w "$S/000001.ndjson"
	sed -i '3s/"status":0/"status":1/' "$S/000001.ndjson"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	assert_equal "$output" ""
	stderr_has "'$S/000001.ndjson':3: seq 3: event does not match the \"prev\" hash of seq 4"
}

@test "tamper: a missing segment is named" {
	setup_segments
	rm -f "$S/000001.ndjson"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "'$S/000001.ndjson': audit segment is missing (found 000002.ndjson after it)"
	# the newest segment gone: the log no longer follows on
	chmod -R u+w lake && rm -rf lake
	setup_segments
	rm -f "$S/000002.ndjson" "$S/000002.head.json"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "'$LOG':1: seq 9: found seq 11 at the start of this log: a segment before it is missing"
	# a segment without its tree head
	chmod -R u+w lake && rm -rf lake
	setup_segments
	rm -f "$S/000002.head.json"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "'$S/000002.head.json': segment 000002 has no tree head"
}

@test "tamper: reordered segments are found" {
	setup_segments
	mv "$S/000001.ndjson" x && mv "$S/000002.ndjson" "$S/000001.ndjson" && mv x "$S/000002.ndjson"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "'$S/000001.ndjson':1: seq 1: found seq 9 at the start of this segment"
}

@test "tamper: a segment rewritten with a recomputed chain is found by its tree head" {
	setup_segments
	chmod u+w "$S/000001.ndjson" "$S/000002.ndjson"
	sed -i '2s/"purpose":"T-1"/"purpose":"T-2"/' "$S/000001.ndjson"
	# recompute the chain through every part, as a forger would
	cat "$S/000001.ndjson" "$S/000002.ndjson" "$LOG" >all
	LOG=all rechain
	sed -n 1,8p all >"$S/000001.ndjson"
	sed -n 9,10p all >"$S/000002.ndjson"
	sed -n 11p all >"$MLK_LAKE/audit/log.ndjson"
	run --separate-stderr mlk-audit verify
	assert_failure 4
	stderr_has "'$S/000001.ndjson':1: events 1 to 8 do not match the tree head of segment 000001"
}

@test "crash mid-rotation: linked but not replaced, the log is finished by the next writer" {
	setup_lake
	mlk-audit rotate >/dev/null
	ingest_one c1
	ingest_one c2
	# the state a crash leaves after the head, the checkpoint and the link
	mlk-audit checkpoint >"$MLK_LAKE/$SEG/000002.head.json"
	ln "$LOG" "$MLK_LAKE/$SEG/000002.ndjson"
	# readers count the events once
	run --separate-stderr mlk-audit verify
	assert_success
	assert_equal "$(jq -r '"\(.events) \(.segments)"' <<<"$output")" "10 2"
	assert_equal "$(all_seqs)" "1 2 3 4 5 6 7 8 9 10 "
	# the next append finishes the rotation and chains on
	ingest_one c3
	assert_equal "$(stat -c %h "$MLK_LAKE/$SEG/000002.ndjson")" 1
	assert_equal "$(stat -c %a "$MLK_LAKE/$SEG/000002.ndjson")" 444
	assert_equal "$(jq -r .seq "$LOG")" 11
	run mlk-audit verify
	assert_success
	assert_equal "$(jq -r '"\(.events) \(.segments)"' <<<"$output")" "11 2"
	assert_equal "$(all_seqs)" "1 2 3 4 5 6 7 8 9 10 11 "
	# a head written by a rotation that died before its link is ignored,
	# and the next rotation replaces it
	echo '{"tree_size":1}' >"$MLK_LAKE/$SEG/000003.head.json"
	run mlk-audit verify
	assert_success
	run mlk-audit rotate
	assert_success
	assert_equal "$(jq -r .tree_size "$MLK_LAKE/$SEG/000003.head.json")" 12
	run mlk-audit verify
	assert_success
}

@test "crash mid-rotation: kill -9 at random moments loses and duplicates nothing" {
	mklake
	n=1
	for i in $(seq 1 12); do
		ingest_one k$i
		n=$((n + 1))
		mlk-audit rotate >/dev/null 2>&1 &
		pid=$!
		sleep "0.00$((RANDOM % 10))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ingest_one last
	n=$((n + 1))
	# every ingest once, plus the events of the rotations that got that far
	rot=$(mlk-audit query --action rotate | wc -l)
	run --separate-stderr mlk-audit verify
	assert_success
	assert_equal "$(jq -r .events <<<"$output")" "$((n + rot))"
	assert_equal "$(all_seqs)" "$(seq 1 "$((n + rot))" | tr '\n' ' ')"
	for d in $(seq -f 'k%g' 1 12) last; do
		assert_equal "$(mlk-audit query --dataset "ehr/$d" | wc -l)" 1
	done
}

@test "concurrent appends while the log is rotated lose nothing and verify" {
	mklake
	for p in 1 2 3 4; do
		(for i in 1 2 3 4 5; do ingest_one "w$p"; done) &
	done
	for i in 1 2 3 4 5; do mlk-audit rotate >/dev/null; done
	wait
	mlk-audit rotate >/dev/null
	rot=$(mlk-audit query --action rotate | wc -l)
	run mlk-audit verify
	assert_success
	assert_equal "$(jq -r .events <<<"$output")" "$((21 + rot))"
	assert_equal "$(all_seqs)" "$(seq 1 "$((21 + rot))" | tr '\n' ' ')"
	for p in 1 2 3 4; do
		assert_equal "$(mlk-audit query --dataset "ehr/w$p" | wc -l)" 5
	done
}

# --- export --openlineage --------------------------------------------------

OL_SCHEMA='https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent'

@test "export --openlineage: one RunEvent per event that made or read data, with the fields the spec requires" {
	setup_lake
	# a denial reads nothing
	sed -i 's/^test_identity_override: false$/test_identity_override: true/' "$MLK_LAKE/policy.yaml"
	run env MLK_TEST_USER=eve mlk-ingest --quiet --dataset ehr/fhir "$DATA/fhir/Patient.ndjson"
	assert_failure 3
	mlk-audit rotate >/dev/null
	ingest_one after
	run --separate-stderr mlk-audit export --openlineage
	assert_success
	printf '%s\n' "$output" >ol.ndjson
	# init and the denial are left out: the 7 ingests remain
	assert_equal "$(wc -l <ol.ndjson)" 7
	ns="mlk://$(sed -n 's/^  id: //p' "$MLK_LAKE/mlk.yaml")"
	# every line: the RunEvent fields of OpenLineage 2-0-2
	run jq -e --arg ns "$ns" --arg schema "$OL_SCHEMA" '
		(.eventType | IN("START","RUNNING","COMPLETE","ABORT","FAIL","OTHER"))
		and (.eventTime | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
		and (.run.runId | test("^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"))
		and .job.namespace == $ns and .job.name == "mlk-ingest.ingest"
		and (.inputs | length > 0) and (.outputs | length > 0)
		and ([.inputs[], .outputs[]] | all(.namespace == $ns and (.name | type == "string")))
		and (.producer | test("^https://.*/v0\\.1\\.0$"))
		and .schemaURL == $schema and .eventType == "COMPLETE"' ol.ndjson
	assert_success
	assert_equal "$(sort -u <<<"$output")" true
	# the first ingest: its sources in, its batch and dataset out
	batch=$(mlk-audit query --dataset ehr/fhir | jq -r 'select(.decision == "allow") | .outputs[0].batch')
	first=$(head -n 1 ol.ndjson)
	assert_equal "$(jq -r '.outputs | map(.name) | join(" ")' <<<"$first")" "batch:$batch dataset:ehr/fhir"
	sha=$(sha256sum "$DATA/fhir/Patient.ndjson" | cut -c1-64)
	assert_equal "$(jq -r --arg s "source:$sha" '.inputs | map(select(.name == $s)) | length' <<<"$first")" 1
	# runId: the event's SHA-256 as a version 8 UUID
	h=$(sed -n 2p "$MLK_LAKE/$SEG/000001.ndjson" | tr -d '\n' | sha256sum | cut -c1-32)
	v=$(printf '%x' $((0x8 | (0x${h:16:1} & 0x3))))
	assert_equal "$(jq -r .run.runId <<<"$first")" "${h:0:8}-${h:8:4}-8${h:13:3}-$v${h:17:3}-${h:20:12}"
	# the same log exports the same bytes
	mlk-audit export --openlineage >again.ndjson
	run cmp ol.ndjson again.ndjson
	assert_success
	run mlk-audit export
	assert_failure 2
}

# --- metrics -----------------------------------------------------------------

# add_event JSON: append an event built from JSON (any members), then
# re-chain the log so that it stays a valid audit log.
add_event() {
	jq -c --argjson x "$1" '{v:1,seq:0,time:"2026-01-01T00:00:00Z",actor:{user:"alice",uid:1000},
		tool:"mlk-catalog",version:"0.1.0",action:"x",purpose:null,zone:null,dataset:null,
		decision:"allow",rule:"owner",inputs:[],outputs:[],status:0,prev:""} + $x' -n >>"$LOG"
	rechain
}

@test "metrics: an empty lake reports zeros and nulls, not failures" {
	mklake
	run --separate-stderr mlk-audit metrics
	assert_success
	assert_equal "$(jq -c '[.events, .lineage.datasets, .lineage.share, .ownership.datasets, .access_requests.requests, .access_requests.median_seconds, .exports.events, .sandboxes.examined, .rebuilds.rebuilds, .rebuilds.max_seconds]' <<<"$output")" \
		'[1,0,null,0,0,null,0,0,0,null]'
}

@test "metrics: lineage share, owners and stewards, access decisions, exports, overdue sandboxes, rebuilds" {
	mklake
	LOG=$MLK_LAKE/audit/log.ndjson
	ingest_one fhir
	ingest_one p1
	ingest_one p2
	# lineage: p2's manifest changed since its ingest; p3 has a batch no
	# event records
	m=$(echo "$MLK_LAKE"/raw/ehr/p2/batch=*/_manifest.json)
	chmod u+w "$m" "$(dirname "$m")"
	sed -i 's/"records":/"records": /' "$m"
	mkdir -p "$MLK_LAKE/raw/ehr/p3/batch=bfeed"
	# owners: fhir has both, p1 no steward, p2 and p3 no descriptor, one
	# descriptor of a dataset without data yet
	mkdir -p "$MLK_LAKE/catalog/datasets/ehr"
	printf 'owner: alice\nsteward: bob\n' >"$MLK_LAKE/catalog/datasets/ehr/fhir.yaml"
	printf 'owner: alice\nsteward:\n' >"$MLK_LAKE/catalog/datasets/ehr/p1.yaml"
	printf 'owner: carol\nsteward: dave\n' >"$MLK_LAKE/catalog/datasets/ehr/planned.yaml"
	# access requests: r1 decided after an hour, r2 after a minute, r3 open
	add_event '{"action":"access.request","time":"2026-03-01T10:00:00Z","detail":{"request":"r1"}}'
	add_event '{"action":"access.request","time":"2026-03-01T10:00:00Z","detail":{"request":"r2"}}'
	add_event '{"action":"access.decide","time":"2026-03-01T10:01:00Z","detail":{"request":"r2"}}'
	add_event '{"action":"access.request","time":"2026-03-01T12:00:00Z","detail":{"request":"r3"}}'
	add_event '{"action":"access.decide","time":"2026-03-01T11:00:00Z","detail":{"request":"r1"}}'
	# exports: one done, one denied
	add_event '{"tool":"mlk-snapshot","action":"export","dataset":"ehr/fhir"}'
	add_event '{"tool":"mlk-snapshot","action":"export","dataset":"ehr/fhir","decision":"deny","rule":"default-deny","status":3}'
	# rebuilds of snapshots
	add_event '{"tool":"mlk-snapshot","action":"snapshot","detail":{"rebuild_of":"s-1","seconds":12}}'
	add_event '{"tool":"mlk-snapshot","action":"snapshot","detail":{"rebuild_of":"s-2","seconds":30.5}}'
	# sandboxes: sb1 overdue, sb2 not yet, sb3 expired and marked so,
	# sb4 with an expiry that is no time
	for s in sb1 sb2 sb3 sb4; do mkdir -p "$MLK_LAKE/sandboxes/$s"; done
	printf 'owner: alice\nexpires: 2000-01-01T00:00:00Z\nstatus: active\n' >"$MLK_LAKE/sandboxes/sb1/sandbox.yaml"
	printf 'owner: alice\nexpires: 2999-01-01T00:00:00Z\nstatus: active\n' >"$MLK_LAKE/sandboxes/sb2/sandbox.yaml"
	printf 'owner: alice\nexpires: 2000-01-01\nstatus: expired\n' >"$MLK_LAKE/sandboxes/sb3/sandbox.yaml"
	printf 'owner: alice\nexpires: soon\n' >"$MLK_LAKE/sandboxes/sb4/sandbox.yaml"
	run mlk-audit verify
	assert_success
	run --separate-stderr mlk-audit metrics
	assert_success
	assert_equal "$(jq -c .lineage <<<"$output")" \
		'{"datasets":4,"complete":2,"share":0.5,"incomplete":["ehr/p2","ehr/p3"]}'
	assert_equal "$(jq -c .ownership <<<"$output")" \
		'{"datasets":5,"without_owner_or_steward":3,"unowned":["ehr/p1","ehr/p2","ehr/p3"]}'
	assert_equal "$(jq -c .access_requests <<<"$output")" \
		'{"requests":3,"decided":2,"pending":1,"median_seconds":1830,"max_seconds":3600}'
	assert_equal "$(jq -c .exports <<<"$output")" '{"events":2,"denied":1}'
	assert_equal "$(jq -c .sandboxes <<<"$output")" \
		'{"examined":4,"past_expiry":1,"unreadable_expiry":1,"overdue":["sb1"]}'
	assert_equal "$(jq -c .rebuilds <<<"$output")" \
		'{"rebuilds":2,"median_seconds":21.25,"max_seconds":30.5}'
	assert_equal "$(jq -r .events <<<"$output")" 13
	# a table for a person
	run mlk-audit metrics --format table
	assert_success
	assert_line "datasets, complete lineage   2 of 4 (50%)"
	assert_line "access requests decided      2 of 3, median 1830 s, max 3600 s"
	assert_line "sandboxes past expiry        1 of 4"
	run mlk-audit metrics --format xml
	assert_failure 2
}
