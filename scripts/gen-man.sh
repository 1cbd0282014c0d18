#!/usr/bin/env bash
# gen-man.sh ENGRAM - print engram(1) in roff, made from the binary's own
# --help texts (the top-level one and each command's), so the manual says
# exactly what the program does.  Used by the build (CMakeLists.txt).
set -euo pipefail
bin="${1:?usage: gen-man.sh path/to/engram}"
version="$("$bin" --version | head -1 | awk '{print $2}')"
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"; }
cat <<ROFF
.TH ENGRAM 1 "" "engram $version" "User Commands"
.SH NAME
engram \\- knowledge-graph memory for LLM agents (MCP server on Neo4j)
.SH SYNOPSIS
.B engram
.I command
.RI [ options ]
.SH DESCRIPTION
engram keeps entities, observations and relations in Neo4j with their history, and serves them
to agents over the Model Context Protocol (stdio or Streamable HTTP). Embeddings are made by a
durable job queue in Neo4j, worked by
.B engram worker
processes or by the server's own workers. Configuration comes from the environment; every
variable is described in the documentation (docs/configuration.md, installed with the docs).
.SH COMMANDS
.nf
ROFF
"$bin" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/' | esc
echo ".fi"
for cmd in $("$bin" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
  echo ".SH ENGRAM ${cmd^^}"
  echo ".nf"
  # a command that needs its arguments prints its usage on stderr
  { "$bin" "$cmd" --help 2>&1 || true; } | esc
  echo ".fi"
done
cat <<'ROFF'
.SH FILES
.TP
.I /etc/engram/engram.env
environment of the systemd units engram-worker.service and engram-http.service
.TP
.I ~/.local/share/engram/models
the built-in encoder's model files (ENGRAM_MODEL_DIR); an installed copy is under the data directory
.SH EXIT STATUS
0 on success, 2 for bad usage, 1 for other failures; some commands have their own (doctor and
schema status: 3 when something needs attention; import: 3 when malformed lines were skipped).
.SH SEE ALSO
The documentation installed with engram: README.md, docs/operations.md, docs/security.md,
docs/tools.md.
ROFF
