#!/usr/bin/env bash
# secrets_argv.test.sh - no script or test of the repository passes the Neo4j
# password on a command line, where `ps` (and /proc/PID/cmdline) show it to
# every user of the machine (issue #14 finding 15).  The password travels in
# the environment (NEO4J_PASSWORD) or in a file (NEO4J_PASSWORD_FILE).
#
# Looks for: the local launcher called with --password VALUE; a shell
# command string built with NEO4J_PASSWORD=<value> (popen/system); a tool
# given NEO4J_PASSWORD=<value> as an argument (-e, --env).
set -uo pipefail
root="${ENGRAM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$root" || exit 1
self="tests/unit/secrets_argv.test.sh"
files=$(git ls-files -- scripts tests bench tools .ci Makefile 2>/dev/null | grep -v -e "^$self\$" \
        -e '^tools/neo4j-local/neo4j$' -e '/node_modules/' -e '\.md$')
[[ -n "$files" ]] || { echo "FAIL: no files to check (not a git checkout?)" >&2; exit 1; }
bad=0
check() { # pattern, what
    local hits
    # shellcheck disable=SC2086
    hits=$(grep -nE -- "$1" $files 2>/dev/null)
    if [[ -n "$hits" ]]; then
        echo "FAIL: $2:" >&2
        echo "$hits" >&2
        bad=1
    fi
}
check "--password[ =]+[\"'\$%]" "the launcher is given the password as an argument"
check "NEO4J_PASSWORD='?%s" "a command string carries the password"
check "(-e|--env) +\"?NEO4J_PASSWORD=" "a program is given the password as an argument"
if ((bad)); then exit 1; fi
echo "ok: no password on a command line in $(wc -w <<<"$files") files"
