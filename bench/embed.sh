#!/usr/bin/env bash
# bench: no-neo4j
# bench/embed.sh - the local sentence encoder's speed (bench/bench_embed.c)
# beside ONNX Runtime on the same fp32 model, one thread each, in the same
# run.  Normally started by `bench/run embed`, which builds bench_embed into
# $BENCH_BUILD_DIR; needs no Neo4j (the marker line above tells bench/run).
#
# Workload (bench/embed/texts.py): BENCH_EMBED_TEXTS (512) deterministic
# short texts of ~13 tokens and BENCH_EMBED_LONG (16) long ones (140-210
# tokens, the last two ~570 and cut by both models), the same texts to
# every side.  Each round runs, for each model, ONNX Runtime
# (bench/embed/ort_embed.py in bench/.venv, made by bench/embed/venv.sh) and
# bench_embed once per engine, each in its own process (peak RSS per model);
# the order alternates between rounds.  Figures: texts/s one text per call
# (first BENCH_EMBED_SINGLE, 128) and BENCH_EMBED_BATCHES (32,100) per call,
# long texts 8 per call, load time, peak RSS, and the cosine of each of our
# vectors with ONNX Runtime's.
#
# Settings: BENCH_RUNS (3 rounds; medians), BENCH_EMBED_MODELS
# ("all-MiniLM-L6-v2 bge-small-en-v1.5"), BENCH_EMBED_ENGINES ("plain blas";
# an engine not built in is skipped), BENCH_EMBED_ORT (1; 0: ours only),
# ENGRAM_MODEL_DIR (the installed weights, see scripts/install-models.sh).
# Final stdout line: one JSON object (bench/README.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

PROG="$BENCH_BUILD_DIR/bench_embed"
[[ -x "$PROG" ]] || bench_die "$PROG not built (run through bench/run embed)"
RUNS="${BENCH_RUNS:-3}"
MODELS="${BENCH_EMBED_MODELS:-all-MiniLM-L6-v2 bge-small-en-v1.5}"
ENGINES="${BENCH_EMBED_ENGINES:-plain blas}"
N_SHORT="${BENCH_EMBED_TEXTS:-512}"
N_LONG="${BENCH_EMBED_LONG:-16}"
SINGLE="${BENCH_EMBED_SINGLE:-128}"
BATCHES="${BENCH_EMBED_BATCHES:-32,100}"
ORT="${BENCH_EMBED_ORT:-1}"
# One thread on every side, whatever the libraries would pick.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false

load0="$(cut -d' ' -f1 /proc/loadavg)"
mdir="$("$BENCH_ROOT/scripts/install-models.sh" --print-dir)"
for m in $MODELS; do
    [[ -d "$mdir/$m" ]] || bench_die "$m is not installed in $mdir (scripts/install-models.sh)"
done
if [[ "$ORT" == 1 ]]; then
    py="$("$HERE/embed/venv.sh")" || bench_die "bench/embed/venv.sh failed"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/engram-bench-embed.XXXXXX")"
trap 'rm -rf "$work"' EXIT
python3 "$HERE/embed/texts.py" "$work/short.txt" "$work/long.txt" "$N_SHORT" "$N_LONG"

# ONNX Runtime's files for MODEL: "onnx tokenizer pooling max_tokens".
ort_files() {
    case "$1" in
        all-MiniLM-L6-v2) echo "$HERE/.models/all-minilm-l6-v2/model.onnx $HERE/.models/all-minilm-l6-v2/tokenizer.json mean 256" ;;
        bge-small-en-v1.5) echo "$mdir/bge-small-en-v1.5/bge-small-en-v1.5.onnx $mdir/bge-small-en-v1.5/tokenizer.json cls 512" ;;
        *) bench_die "no ONNX Runtime reference for $1" ;;
    esac
}

run_ort() { # model round
    local onnx tok pool max line
    read -r onnx tok pool max <<<"$(ort_files "$1")"
    line="$("$py" "$HERE/embed/ort_embed.py" --model "$1" --onnx "$onnx" --tokenizer "$tok" --pooling "$pool" \
            --max-tokens "$max" --short "$work/short.txt" --long "$work/long.txt" --single "$SINGLE" \
            --batches "$BATCHES" --vectors "$work/$1.ort" | tail -n1)" || bench_die "ort_embed.py failed ($1)"
    bench_log "  $line"
    echo "{\"round\":$2,${line#\{}" >>"$work/lines"
}

declare -A skip=()
run_ours() { # model engine round
    local line rc=0 ref=()
    [[ -z "${skip[$2]:-}" ]] || return 0
    [[ -f "$work/$1.ort" ]] && ref=(--ref "$work/$1.ort")
    line="$("$PROG" --model "$1" --engine "$2" --short "$work/short.txt" --long "$work/long.txt" \
            --single "$SINGLE" --batches "$BATCHES" "${ref[@]}" | tail -n1)" || rc=$?
    if ((rc == 3)); then
        bench_log "  engine $2 is not built in: skipped"
        skip[$2]=1
        return 0
    fi
    ((rc == 0)) || bench_die "bench_embed failed ($1, $2)"
    bench_log "  $line"
    echo "{\"round\":$3,${line#\{}" >>"$work/lines"
}

: >"$work/lines"
for ((r = 1; r <= RUNS; r++)); do
    for m in $MODELS; do
        bench_log "embed: round $r/$RUNS, $m"
        # ONNX Runtime first in odd rounds (the first one makes the
        # reference vectors), last in even ones.
        if [[ "$ORT" == 1 ]] && ((r % 2 == 1)); then run_ort "$m" "$r"; fi
        for e in $ENGINES; do run_ours "$m" "$e" "$r"; done
        if [[ "$ORT" == 1 ]] && ((r % 2 == 0)); then run_ort "$m" "$r"; fi
    done
done

default_model="$("$PROG" --default-model)"
auto_engine="$("$PROG" --model "$default_model" --auto-engine 2>/dev/null || true)"
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
python3 "$HERE/embed/report.py" "$work/lines" default_model="$default_model" auto_engine="$auto_engine" \
    runs="$RUNS" texts="$N_SHORT" long_texts="$N_LONG" single_texts="$SINGLE" \
    cpu="$cpu" cores="$(getconf _NPROCESSORS_ONLN)" loadavg_start="$load0"
