#!/usr/bin/env bash
# setup_client.test.sh - `engram setup claude-desktop|cursor` in a private
# HOME: shows the change, writes nothing without --yes (no terminal) or with
# --dry-run, merges its entry without touching the file's other keys and
# servers, keeps a .bak, is a no-op the second time, never copies the Neo4j
# password into the client's file, and refuses a file that is not JSON.
set -uo pipefail
BIN="${ENGRAM_BIN:?ENGRAM_BIN not set}"
fail() { echo "FAIL: $*" >&2; exit 1; }
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
export HOME="$home" XDG_CONFIG_HOME= NEO4J_URI=bolt://127.0.0.1:7999 NEO4J_USERNAME=neo4j
export NEO4J_PASSWORD=do-not-copy-me-123 ENGRAM_NAMESPACE=team-x
unset NEO4J_PASSWORD_FILE
cfg="$home/.config/Claude/claude_desktop_config.json"
mkdir -p "$(dirname "$cfg")"
printf '{"theme":"dark","mcpServers":{"other":{"command":"/bin/true","args":[]}}}\n' >"$cfg"

out="$("$BIN" setup claude-desktop </dev/null 2>&1)"
[[ $? == 1 ]] || fail "wrote without --yes on a non-terminal: $out"
grep -q 'add mcpServers."engram"' <<<"$out" || fail "the change was not shown: $out"
grep -q '"serve"' <<<"$out" || fail "the entry does not run serve: $out"
grep -q 're-run with --yes' <<<"$out" || fail "no hint: $out"
grep -q '"engram"' "$cfg" && fail "the file changed without --yes"
"$BIN" setup claude-desktop --dry-run >/dev/null || fail "dry run exited $?"
grep -q '"engram"' "$cfg" && fail "the file changed on --dry-run"

"$BIN" setup claude-desktop --yes >"$home/out" 2>&1 || fail "setup --yes exited $?: $(cat "$home/out")"
python3 - "$cfg" "$BIN" <<'PY' || fail "merged file is wrong: $(cat "$cfg")"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["theme"] == "dark", d
assert d["mcpServers"]["other"]["command"] == "/bin/true", d
e = d["mcpServers"]["engram"]
assert e["command"] == os.path.realpath(sys.argv[2]), e
assert e["args"] == ["serve"], e
assert e["env"]["NEO4J_URI"] == "bolt://127.0.0.1:7999" and e["env"]["ENGRAM_NAMESPACE"] == "team-x", e
assert "NEO4J_PASSWORD" not in e["env"], e
PY
grep -q 'do-not-copy-me' "$cfg" && fail "the password was copied into the client's file"
grep -q 'no password file found' "$home/out" || fail "no note about the missing password file"
[[ -s "$cfg.bak" ]] && grep -q '"theme"' "$cfg.bak" || fail "no backup of the previous file"
[[ "$(stat -c %a "$cfg")" == 600 ]] || fail "the client's file is not private"
out="$("$BIN" setup claude-desktop --yes 2>&1)" || fail "second setup exited $?"
grep -q 'nothing to change' <<<"$out" || fail "second setup changed something: $out"

# cursor, with a password file: the entry names the file
printf 'pw\n' >"$home/pw"
NEO4J_PASSWORD_FILE="$home/pw" "$BIN" setup cursor --yes >/dev/null || fail "cursor setup exited $?"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["mcpServers"]["engram"]; assert e["env"]["NEO4J_PASSWORD_FILE"] == sys.argv[2], e' \
    "$home/.cursor/mcp.json" "$home/pw" || fail "cursor entry: $(cat "$home/.cursor/mcp.json")"

printf 'not json' >"$home/bad.json"
"$BIN" setup cursor --config "$home/bad.json" --yes >/dev/null 2>&1 && fail "a file that is not JSON was overwritten"
grep -qx 'not json' "$home/bad.json" || fail "the bad file was touched"
echo ok
