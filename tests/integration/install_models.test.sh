#!/usr/bin/env bash
# install_models.test.sh - scripts/install-models.sh without the network:
# it verifies, trusts its records, detects corrupt and truncated files,
# installs atomically from a local copy (--from), applies setup's failure
# policy, and resolves the models directory like engram.
#
# It never downloads: the models come from the directory the script itself
# resolves in this environment (where setup installed them), copied into a
# temporary ENGRAM_MODEL_DIR, and every run has ENGRAM_MODELS_OFFLINE=1 or
# --from, plus stand-ins for python3/pip/mvn/curl/wget on PATH that record
# any call (the test fails if one is made).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
script="$root/scripts/install-models.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }

FILES=(all-MiniLM-L6-v2/model.safetensors all-MiniLM-L6-v2/vocab.txt
       bge-small-en-v1.5/bge-small-en-v1.5.onnx bge-small-en-v1.5/tokenizer.json)
src="$("$script" --print-dir)" || fail "--print-dir failed"
for f in "${FILES[@]}"; do
    if [[ ! -f "$src/$f" ]]; then
        echo "SKIP: $src/$f is not installed (scripts/install-models.sh installs it)" >&2
        exit 77
    fi
done

t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT
dest="$t/models"

# Any attempt to reach a registry shows up in $t/network.
mkdir -p "$t/shims"
for tool in python3 pip pip3 mvn curl wget; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/network"\nexit 1\n' "$tool" "$t" >"$t/shims/$tool"
    chmod +x "$t/shims/$tool"
done
run() { # run ENV... -- ARGS: the script on $dest; sets out and rc
    local envs=()
    while [[ "$1" != -- ]]; do envs+=("$1"); shift; done
    shift
    out="$(env -u CI -u ENGRAM_REQUIRE_MODELS -u ENGRAM_SETUP_MODELS -u ENGRAM_MODELS_OFFLINE \
             PATH="$t/shims:$PATH" ENGRAM_MODEL_DIR="$dest" "${envs[@]}" "$script" "$@" 2>&1)"
    rc=$?
}
count() { grep -c -- "$1" <<<"$out"; }

# 1. copies of the installed files, no records yet: each one is hashed.
for f in "${FILES[@]}"; do
    mkdir -p "$dest/$(dirname "$f")"
    cp "$src/$f" "$dest/$f" || fail "copy $f"
done
run ENGRAM_MODELS_OFFLINE=1 -- 
[[ $rc -eq 0 ]] || fail "verify copies: exit $rc: $out"
[[ "$(count 'sha256 ok')" -eq 4 ]] || fail "verify copies: not 4 files hashed: $out"
[[ -f "$dest/all-MiniLM-L6-v2/.verified" && -f "$dest/bge-small-en-v1.5/.verified" ]] || fail "no .verified records"

# 2. again, downloads allowed: nothing hashed, nothing fetched, nothing rewritten.
ino_before="$(stat -c %i "$dest/all-MiniLM-L6-v2/model.safetensors")"
run --
[[ $rc -eq 0 ]] || fail "second run: exit $rc: $out"
[[ "$(count 'sha256 ok')" -eq 0 ]] || fail "second run hashed again: $out"
grep -q 'models ready' <<<"$out" || fail "second run: no summary: $out"
[[ "$(stat -c %i "$dest/all-MiniLM-L6-v2/model.safetensors")" == "$ino_before" ]] || fail "second run rewrote a file"
run -- --verify
[[ $rc -eq 0 && "$(count 'sha256 ok')" -eq 4 ]] || fail "--verify did not hash all 4: $out"

# 3. one byte changed in place, size and mtime kept (only the ctime moves):
#    detected, removed, and not replaced while downloading is forbidden.
v="$dest/all-MiniLM-L6-v2/vocab.txt"
touch -r "$v" "$t/mtime"
printf 'X' | dd of="$v" bs=1 seek=1000 conv=notrunc status=none
touch -r "$t/mtime" "$v"
run ENGRAM_MODELS_OFFLINE=1 --
[[ $rc -eq 1 ]] || fail "corrupt vocab: exit $rc, want 1: $out"
grep -q 'all-MiniLM-L6-v2/vocab.txt: CORRUPT' <<<"$out" || fail "corruption not named: $out"
grep -q 'not downloading (ENGRAM_MODELS_OFFLINE=1)' <<<"$out" || fail "offline refusal not said: $out"
grep -q 'WARNING: could not install all-MiniLM-L6-v2 ' <<<"$out" || fail "no loud warning: $out"
grep -q 'n-gram' <<<"$out" || fail "the warning does not name the fallback: $out"
[[ ! -e "$v" ]] || fail "a corrupt file was left under its final name"
[[ -f "$dest/bge-small-en-v1.5/tokenizer.json" ]] || fail "the intact model was touched"

# 4. setup's policy for a failure: a warning, unless CI or required.
run ENGRAM_MODELS_OFFLINE=1 -- --setup
[[ $rc -eq 0 ]] || fail "--setup, not required: exit $rc, want 0: $out"
grep -q 'WARNING' <<<"$out" || fail "--setup: no warning: $out"
run ENGRAM_MODELS_OFFLINE=1 CI=true -- --setup
[[ $rc -eq 1 ]] || fail "--setup with CI=true: exit $rc, want 1"
run ENGRAM_MODELS_OFFLINE=1 ENGRAM_REQUIRE_MODELS=1 -- --setup
[[ $rc -eq 1 ]] || fail "--setup with ENGRAM_REQUIRE_MODELS=1: exit $rc, want 1"
run ENGRAM_SETUP_MODELS=0 CI=true -- --setup
[[ $rc -eq 0 ]] && grep -q 'skipped' <<<"$out" || fail "ENGRAM_SETUP_MODELS=0: exit $rc: $out"
[[ ! -e "$v" ]] || fail "ENGRAM_SETUP_MODELS=0 installed something"

# 5. a truncated big file (its record says otherwise) and the missing vocab:
#    both replaced from a local copy, verified, in place.
truncate -s 1000000 "$dest/all-MiniLM-L6-v2/model.safetensors"
run ENGRAM_MODELS_OFFLINE=1 -- --from "$src"
[[ $rc -eq 0 ]] || fail "--from: exit $rc: $out"
grep -q 'model.safetensors: CORRUPT' <<<"$out" || fail "truncation not detected: $out"
[[ "$(count 'installed, sha256 ok')" -eq 2 ]] || fail "--from: not 2 files installed: $out"
for f in "${FILES[@]}"; do
    cmp -s "$src/$f" "$dest/$f" || fail "$f differs from the source after --from"
done

# 6. a bad source: refused, nothing under the final name, no temporary left.
mkdir -p "$t/bad/bge-small-en-v1.5"
echo '{"not": "the tokenizer"}' >"$t/bad/bge-small-en-v1.5/tokenizer.json"
rm "$dest/bge-small-en-v1.5/tokenizer.json"
run ENGRAM_MODELS_OFFLINE=1 -- --from "$t/bad"
[[ $rc -eq 1 ]] || fail "bad source: exit $rc, want 1: $out"
grep -q 'tokenizer.json: the copy has sha256' <<<"$out" || fail "bad copy not named: $out"
[[ ! -e "$dest/bge-small-en-v1.5/tokenizer.json" ]] || fail "a bad copy was installed"
leftovers="$(find "$dest" -name '*.partial.*' -o -name '.download.*')"
[[ -z "$leftovers" ]] || fail "temporary files left: $leftovers"

# 7. the directory resolution engram uses.
d="$(env -u ENGRAM_MODEL_DIR XDG_DATA_HOME="$t/xdg" "$script" --print-dir)"
[[ "$d" == "$t/xdg/engram/models" ]] || fail "XDG_DATA_HOME: got $d"
d="$(env -u ENGRAM_MODEL_DIR XDG_DATA_HOME= HOME="$t/home" "$script" --print-dir)"
[[ "$d" == "$t/home/.local/share/engram/models" ]] || fail "HOME: got $d"
d="$(ENGRAM_MODEL_DIR="$t/m" XDG_DATA_HOME="$t/xdg" "$script" --print-dir)"
[[ "$d" == "$t/m" ]] || fail "ENGRAM_MODEL_DIR: got $d"

[[ ! -e "$t/network" ]] || fail "the script tried to download: $(cat "$t/network")"
echo "install-models: verify, trust, corrupt, truncated, --from, policy, resolution: ok"
