#!/usr/bin/env bash
# import_export.test.sh - `engram import` and `engram export` as a user runs
# them: the official memory server's memory.jsonl with malformed lines
# (reported with their numbers; --on-error abort writes nothing; skip imports
# the rest and exits 3), idempotence (the same file again creates nothing,
# queues nothing), --dry-run counts, and an engram export restored into
# another namespace exporting the same official file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export ENGRAM_LOG_LEVEL=warning
run="io$RANDOM$RANDOM"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1])[sys.argv[1]])' "$1"; }

cat >"$dir/memory.jsonl" <<'JSONL'
{"type":"entity","name":"Ada","entityType":"person","observations":["wrote the first algorithm","mathematician"]}
{"type":"relation","from":"Ada","to":"Engine","relationType":"programmed"}
{"type":"entity","name":"Engine","entityType":"machine","observations":["designed by Babbage"]}

{"type":"entity","name":"","entityType":"x","observations":[]}
this is not json
{"type":"relation","from":"Ada","to":"Nobody","relationType":"knows"}
JSONL

# abort: the malformed lines are named, nothing is written
err="$("$BIN" import "$dir/memory.jsonl" --namespace "$run-a" --on-error abort --json 2>&1 >/dev/null)"
rc=$?
[[ $rc == 1 ]] || fail "--on-error abort exited $rc: $err"
grep -q 'memory.jsonl:5: entity needs a non-empty "name"' <<<"$err" || fail "line 5 not reported: $err"
grep -q 'memory.jsonl:6: not JSON' <<<"$err" || fail "line 6 not reported: $err"
n="$("$BIN" export --namespace "$run-a" --format official 2>/dev/null | wc -l)"
[[ $n == 0 ]] || fail "abort wrote $n records"

# dry run counts, writes nothing
out="$("$BIN" import "$dir/memory.jsonl" --namespace "$run-a" --dry-run --json 2>/dev/null)"
[[ "$(jget wouldCreateEntities <<<"$out")" == 2 ]] || fail "dry run: $out"
n="$("$BIN" export --namespace "$run-a" --format official 2>/dev/null | wc -l)"
[[ $n == 0 ]] || fail "dry run wrote $n records"

# skip: the good lines go in, the exit status says some did not
out="$("$BIN" import "$dir/memory.jsonl" --namespace "$run-a" --json 2>"$dir/err")"
rc=$?
[[ $rc == 3 ]] || fail "skip exited $rc: $(cat "$dir/err")"
# jobs: one per entity and one per observation record (2 entities, 3 observations)
[[ "$(jget entitiesCreated <<<"$out")" == 2 && "$(jget relationsCreated <<<"$out")" == 1 &&
   "$(jget relationsSkipped <<<"$out")" == 1 && "$(jget jobs <<<"$out")" == 5 ]] || fail "first import: $out"
grep -q 'Ada -\[knows\]-> Nobody skipped' "$dir/err" || fail "the dangling relation was not reported"

# the same file again changes nothing and queues nothing
out="$("$BIN" import "$dir/memory.jsonl" --namespace "$run-a" --json 2>/dev/null)"
[[ "$(jget entitiesCreated <<<"$out")" == 0 && "$(jget entitiesUnchanged <<<"$out")" == 2 &&
   "$(jget relationsCreated <<<"$out")" == 0 && "$(jget jobs <<<"$out")" == 0 ]] || fail "second import: $out"

# official export reads back as the official server writes it
"$BIN" export --namespace "$run-a" --format official --output "$dir/official.jsonl" 2>/dev/null || fail "official export"
[[ ! -e "$dir/official.jsonl.partial" ]] || fail "a .partial file was left"
head -1 "$dir/official.jsonl" | grep -qx '{"type":"entity","name":"Ada","entityType":"person","observations":\["wrote the first algorithm","mathematician"\]}' ||
    fail "official line: $(head -1 "$dir/official.jsonl")"

# engram export -> another namespace -> the same official export
"$BIN" export --namespace "$run-a" --output "$dir/backup.jsonl" 2>/dev/null || fail "engram export"
out="$("$BIN" import "$dir/backup.jsonl" --namespace "$run-b" --json 2>/dev/null)" || fail "restore exited $?: $out"
[[ "$(jget format <<<"$out")" == engram && "$(jget entitiesRestored <<<"$out")" == 2 &&
   "$(jget observationRecords <<<"$out")" == 3 && "$(jget jobs <<<"$out")" == 5 ]] || fail "restore: $out"
# the restored history's lists became records: no version keeps a copy, and
# the copy's history reads as the original's
"$BIN" export --namespace "$run-a" --output "$dir/backup-a.jsonl" 2>/dev/null || fail "export a"
"$BIN" export --namespace "$run-b" --output "$dir/backup-b.jsonl" 2>/dev/null || fail "export b (engram)"
strip() { python3 -c '
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    if j.get("type") == "entityVersion":
        print(j["name"], j["version"], json.dumps(j["observations"]))' "$1" | sort; }
[[ "$(strip "$dir/backup-a.jsonl")" == "$(strip "$dir/backup-b.jsonl")" && -n "$(strip "$dir/backup-b.jsonl")" ]] ||
    fail "the restored versions' lists differ"
"$BIN" export --namespace "$run-b" --format official --output "$dir/official-b.jsonl" 2>/dev/null || fail "export b"
cmp -s "$dir/official.jsonl" "$dir/official-b.jsonl" || fail "the restored copy exports differently"
out="$("$BIN" import "$dir/backup.jsonl" --namespace "$run-b" --json 2>/dev/null)"
[[ "$(jget entitiesRestored <<<"$out")" == 0 && "$(jget entityVersionsRestored <<<"$out")" == 0 &&
   "$(jget observationRecords <<<"$out")" == 0 && "$(jget jobs <<<"$out")" == 0 ]] ||
    fail "second restore: $out"

echo "ok"
