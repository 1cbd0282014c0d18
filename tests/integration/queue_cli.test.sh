#!/usr/bin/env bash
# queue_cli.test.sh - `engram schema` and `engram queue status|list|retry|prune`
# end to end on a real Neo4j, in a queue of their own (unique name), with the
# test suite's queue_stress_worker (tests/support/queue_stress_worker/)
# producing the jobs and failures.
set -uo pipefail

[[ -n "${ENGRAM_TEST_NEO4J_URI:-}" ]] || {
    [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]] && { echo "FAIL: no Neo4j" >&2; exit 1; }
    echo "SKIP: no Neo4j (ENGRAM_TEST_NEO4J_URI)" >&2; exit 77; }
BIN="${ENGRAM_BIN:?}"
STRESS_WORKER="${ENGRAM_QUEUE_STRESS_WORKER:?}"
export NEO4J_URI="$ENGRAM_TEST_NEO4J_URI" NEO4J_USERNAME="${ENGRAM_TEST_NEO4J_USER:-neo4j}" \
       NEO4J_PASSWORD="${ENGRAM_TEST_NEO4J_PASSWORD:-}"
Q="t_cli_$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')"
NS="ns_$Q"
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
jget() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval(sys.argv[1], {"d": d}))' "$1"; }
cleanup() {
    # complete whatever is left, then prune everything of this queue
    "$STRESS_WORKER" --queue "$Q" --owner cleanup --idle-ms 300 >/dev/null 2>&1
    "$BIN" queue prune --queue "$Q" --older-than-hours 0 >/dev/null 2>&1
}
trap cleanup EXIT

"$BIN" schema apply >/dev/null || fail "schema apply"
out="$("$BIN" schema status --json)"; rc=$?
[[ $rc == 0 ]] || fail "schema status exit $rc after apply"
[[ "$(jget 'sorted(set(m["state"] for m in d if m["module"]=="queue"))' <<<"$out")" == "['applied']" ]] &&
    ok "schema status: queue migrations applied" || fail "schema status: $out"
# a configuration whose migration is not applied yet (another vector index):
# status says so and exits 3, changing nothing (scripts gate on the code)
vidx="harden_t$RANDOM"
out="$(NEO4J_VECTOR_INDEX="$vidx" "$BIN" schema status --json)"; rc=$?
[[ $rc == 3 ]] || fail "schema status with a pending migration: exit $rc, want 3: $out"
[[ "$(jget '[m["state"] for m in d if m["id"]=="graph:4"][0]' <<<"$out")" == pending ]] &&
    ok "schema status: exit 3, graph:4 pending" || fail "schema status pending: $out"
out="$(NEO4J_VECTOR_INDEX="$vidx" "$BIN" schema status)"; rc=$?
[[ $rc == 3 ]] || fail "schema status (table) with a pending migration: exit $rc, want 3"
"$BIN" schema status >/dev/null; rc=$?
[[ $rc == 0 ]] || fail "schema status changed something: exit $rc afterwards"

"$STRESS_WORKER" --queue "$Q" --owner p --enqueue 6 --namespace "$NS" >/dev/null || fail "enqueue"
st="$("$BIN" queue status --queue "$Q" --json)" || fail "status"
[[ "$(jget 'd["counts"]["pending"]' <<<"$st")" == 6 && "$(jget 'd["ready"]' <<<"$st")" == 6 ]] &&
    ok "status: 6 pending, 6 ready" || fail "status: $st"
"$BIN" queue status --queue "$Q" | grep -q "^m " && ok "status table lists model m" || fail "status table"

# lease and fail 6 permanently -> dead
"$STRESS_WORKER" --queue "$Q" --owner bad --fail --batch 4 --idle-ms 300 >/dev/null || fail "fail worker"
st="$("$BIN" queue status --queue "$Q" --json)"
[[ "$(jget 'd["counts"]["dead"]' <<<"$st")" == 6 && "$(jget 'len(d["dead"])' <<<"$st")" == 6 &&
   "$(jget 'd["dead"][0]["lastError"]' <<<"$st")" == "stress worker: told to fail" ]] &&
    ok "status: 6 dead with their last error" || fail "status after failures: $st"

# list with a filter, paginated 4 + 2
l1="$("$BIN" queue list --queue "$Q" --state dead --limit 4 --json)"
next="$(jget 'd["next"]' <<<"$l1")"
l2="$("$BIN" queue list --queue "$Q" --state dead --limit 4 --after "$next" --json)"
[[ "$(jget 'len(d["jobs"])' <<<"$l1")" == 4 && "$(jget 'len(d["jobs"])' <<<"$l2")" == 2 &&
   "$(jget 'd["next"]' <<<"$l2")" == None ]] && ok "list: dead jobs in pages of 4 + 2" || fail "list: $l1 / $l2"
"$BIN" queue list --queue "$Q" --state pending --json | grep -q '"jobs":\[\]' && ok "list: no pending" ||
    fail "list pending"

# retry one by id, then the rest
id="$(jget 'd["jobs"][0]["id"]' <<<"$l1")"
[[ "$("$BIN" queue retry --queue "$Q" "$id" --json)" == '{"retried":1}' ]] && ok "retry by id" || fail "retry id"
[[ "$("$BIN" queue retry --queue "$Q" --all --json)" == '{"retried":5}' ]] && ok "retry --all" || fail "retry all"
st="$("$BIN" queue status --queue "$Q" --json)"
[[ "$(jget 'd["counts"]["pending"]' <<<"$st")" == 6 ]] && ok "6 pending again" || fail "after retry: $st"

# complete them, then prune
"$STRESS_WORKER" --queue "$Q" --owner good --idle-ms 300 >/dev/null || fail "complete worker"
[[ "$("$BIN" queue prune --queue "$Q" --older-than-hours 1 --json)" == '{"deleted":0}' ]] &&
    ok "prune keeps young completed jobs" || fail "prune young"
sleep 0.05
[[ "$("$BIN" queue prune --queue "$Q" --older-than-hours 0 --batch 4 --json)" == '{"deleted":6}' ]] &&
    ok "prune deletes 6 completed jobs in batches of 4" || fail "prune"

# bad input is refused, not guessed
"$BIN" queue list --queue "$Q" --state nonsense >/dev/null 2>&1; [[ $? == 2 ]] && ok "bad --state refused" ||
    fail "bad state accepted"
ENGRAM_QUEUE_HEARTBEAT_MS=40000 "$BIN" queue status --queue "$Q" >/dev/null 2>/tmp/queue_cli_err.$$
grep -q ENGRAM_QUEUE_HEARTBEAT_MS /tmp/queue_cli_err.$$ && ok "heartbeat >= lease refused, variable named" ||
    fail "invalid setting accepted"
rm -f /tmp/queue_cli_err.$$

echo "$FAILS failure(s)"
[[ $FAILS == 0 ]]
