#!/usr/bin/env bash
# run.sh - `make run`: set up, build, start the embedded-default local Neo4j
# (persistent, loopback only, authentication on) and run engram against it.
#
# Data directory: $ENGRAM_NEO4J_DATA (default ~/.local/share/engram/neo4j).
# Bolt port:      $ENGRAM_NEO4J_PORT (default 7687).
# Password:       $NEO4J_PASSWORD, or the file $NEO4J_PASSWORD_FILE names, else
#                 one generated at first start and kept (mode 0600) in
#                 <data>/../neo4j-password.  It is passed to the launcher and
#                 to engram in the environment (NEO4J_PASSWORD_FILE when there
#                 is a file), never on a command line, where `ps` shows it to
#                 every user of the machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --quiet
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build >&2

data="${ENGRAM_NEO4J_DATA:-$HOME/.local/share/engram/neo4j}"
port="${ENGRAM_NEO4J_PORT:-7687}"
mkdir -p "$(dirname "$data")"
pwfile="${NEO4J_PASSWORD_FILE:-$(dirname "$data")/neo4j-password}"
if [ -z "${NEO4J_PASSWORD:-}" ]; then
  if [ ! -s "$pwfile" ]; then
    (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$pwfile")
  fi
  export NEO4J_PASSWORD_FILE="$pwfile"
else
  export NEO4J_PASSWORD
fi
export NEO4J_USERNAME="${NEO4J_USERNAME:-neo4j}"

neo="$root/tools/neo4j-local/neo4j"
if "$neo" status --data "$data" >/dev/null 2>&1; then
  echo "local Neo4j already running ($data)" >&2
  export NEO4J_URI="${NEO4J_URI:-$("$neo" status --data "$data" | grep -o 'bolt://[^ ]*' | head -1)}"
else
  echo "starting local Neo4j 5.26 (data: $data, port $port) ..." >&2
  NEO4J_URI="$("$neo" start --data "$data" --port "$port")"
  export NEO4J_URI
fi

echo >&2
"$root/build/engram" doctor
if [ -x "$root/scripts/demo.sh" ]; then
  "$root/scripts/demo.sh"
fi
cat >&2 <<MSG

Neo4j keeps running at $NEO4J_URI (stop it: tools/neo4j-local/neo4j stop --data "$data").
The password is in ${NEO4J_PASSWORD_FILE:-your NEO4J_PASSWORD}.
MSG
