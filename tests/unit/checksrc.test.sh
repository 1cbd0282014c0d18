#!/usr/bin/env bash
# checksrc.test.sh - scripts/checksrc.sh finds each kind of violation it
# promises, ignores the look-alikes it promises to ignore (comments, string
# literals, method calls, opted-out lines), and passes on src/ as it is.
set -euo pipefail
root="${ENGRAM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fails=0
long="$(printf 'x%.0s' $(seq 1 121))"
cat >"$work/bad.c" <<C
static void f(char *d, const char *s, void *p)
{
    strcpy(d, s);
    free(p);
    int n = atoi(s);
    const char *e = "out of memory";
    /* ${long} */
}
C
cat >"$work/bad_int.h" <<'C'
int mod_file_helper(int x);
typedef int (*mod_fn)(int x);
C
cat >"$work/pub.h" <<'C'
int mod__hidden(int x);
C
cat >"$work/good.c" <<'C'
/* free(p) and strcpy() in a comment are prose, not calls */
static const char Q[] = "RETURN rand() AS r, 'free(x)' AS s";
static void g(struct vt *o, char *line)
{
    o->free(o);
    free(line); /* checksrc: alloc (getline's buffer is libc's) */
}
C
expect() { # name, expected count, actual count
  if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected $2, got $3" >&2; fails=$((fails + 1)); fi
}
out="$("$root/scripts/checksrc.sh" "$work/bad.c" "$work/bad_int.h" "$work/pub.h" "$work/good.c" 2>&1 || true)"
expect "banned strcpy" 1 "$(grep -c 'bad.c:3: banned: strcpy' <<<"$out")"
expect "raw free" 1 "$(grep -c 'bad.c:4: alloc: free' <<<"$out")"
expect "banned atoi" 1 "$(grep -c 'bad.c:5: banned: atoi' <<<"$out")"
expect "hand-spelled oom" 1 "$(grep -c 'bad.c:6: oom' <<<"$out")"
expect "long line" 1 "$(grep -c 'bad.c:7: length' <<<"$out")"
expect "internal without __" 1 "$(grep -c 'bad_int.h:1: internal: mod_file_helper' <<<"$out")"
expect "typedef is not a function" 0 "$(grep -c 'bad_int.h:2' <<<"$out")"
expect "__ name in a public header" 1 "$(grep -c 'pub.h:1: internal: mod__hidden' <<<"$out")"
expect "look-alikes are not findings" 0 "$(grep -c 'good.c' <<<"$out")"
if "$root/scripts/checksrc.sh" "$work/bad.c" >/dev/null 2>&1; then
  echo "FAIL: exit status 0 with findings" >&2; fails=$((fails + 1))
fi
if ! (cd "$root" && scripts/checksrc.sh); then
  echo "FAIL: src/ has findings" >&2; fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
