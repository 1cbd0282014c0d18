# lib.sh - shared start of the shell integration tests (sourced, not run):
# skip (77) without the test Neo4j, or fail when ENGRAM_REQUIRE_NEO4J=1 (a
# broken fixture must not look green); point engram at that Neo4j (the
# password in the environment, never on a command line) with the offline
# provider; BIN and fail().
set -uo pipefail
if [[ -z "${ENGRAM_TEST_NEO4J_URI:-}" ]]; then
    [[ "${ENGRAM_REQUIRE_NEO4J:-}" == 1 ]] && { echo "FAIL: ENGRAM_TEST_NEO4J_URI not set" >&2; exit 1; }
    echo "SKIP: no Neo4j" >&2
    exit 77
fi
BIN="${ENGRAM_BIN:?ENGRAM_BIN not set}"
fail() { echo "FAIL: $*" >&2; exit 1; }
export NEO4J_URI="$ENGRAM_TEST_NEO4J_URI" NEO4J_USERNAME="${ENGRAM_TEST_NEO4J_USER:-neo4j}"
export NEO4J_PASSWORD="${ENGRAM_TEST_NEO4J_PASSWORD:-}" ENGRAM_EMBED_PROVIDER=offline
