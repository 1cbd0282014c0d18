#!/usr/bin/env bash
# checksrc.sh - flag what docs/internals/conventions.md forbids in src/.
#
#   scripts/checksrc.sh [FILE...]     (default: every .c and .h under src/)
#
# Prints one line per finding, "path:line: rule: detail", and exits 1 when
# there is any.  make test runs it.  The rules, and why:
#
#   alloc     raw malloc/calloc/realloc/free/strdup/strndup outside
#             src/core/alloc.c: everything goes through eg_malloc & co., so
#             the torture tests' failure hook reaches every allocation.
#   oom       "out of memory" spelled by hand: eg_error_oom() and EG_OOM_TEXT
#             (src/core/err.h) say it once.
#   banned    functions with a safer house replacement: strcpy, strcat,
#             strncpy, strncat, sprintf, vsprintf, gets, strtok, atoi,
#             atol, atoll, atof (no error detection: strtol/strtod or
#             eg_env_*), localtime, gmtime, ctime, asctime (not
#             thread-safe: the _r forms), rand, srand (shared state),
#             tmpnam, mktemp (races: mkstemp), alloca (unbounded stack).
#   length    lines longer than 120 columns.
#   internal  a function declared in an _int.h (a module's internals)
#             whose name lacks the "__" that marks it internal (e.g.
#             bolt_conn__flush), or a "__" name in a public header.
#
# A line may opt out of one rule with a comment naming it and saying why:
#     free(line); /* checksrc: alloc (getline's buffer is libc's) */
# Comments and string literals are not code: they are blanked before the
# alloc and banned rules look (so a Cypher rand() is not the C one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find src -name '*.[ch]' | sort)
else
  files=("$@")
fi
exec python3 - "${files[@]}" <<'PY'
import re
import sys

MAX_COLUMNS = 120
ALLOC = re.compile(r'(?<![\w.>])(malloc|calloc|realloc|free|strdup|strndup)\s*\(')
BANNED = re.compile(r'(?<![\w.>])(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll|atof|'
                    r'localtime|gmtime|ctime|asctime|rand|srand|tmpnam|mktemp|alloca)\s*\(')
OOM = re.compile(r'"[^"\n]*out of memory[^"\n]*"', re.I)
DECL = re.compile(r'^[A-Za-z_][\w \t\*]*?\b([a-z][a-z0-9_]*)\s*\(', re.M)
# Files that are data, not code written by hand.
GENERATED = ('src/embed/wordpiece_tables.c',)


def blank_comments_and_strings(text):
    """The text with comments and string/char literals replaced by spaces,
    newlines kept, so offsets and line numbers stay the same."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ''
        if c == '/' and nxt == '*':
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == '/' and nxt == '/':
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + ' ' * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def opted_out(line, rule):
    return re.search(r'checksrc:\s*' + rule + r'\b', line) is not None


findings = []


def report(path, lineno, rule, detail):
    findings.append(f'{path}:{lineno}: {rule}: {detail}')


for path in sys.argv[1:]:
    if path in GENERATED:
        continue
    with open(path, encoding='utf-8') as f:
        text = f.read()
    raw = text.split('\n')
    code = blank_comments_and_strings(text).split('\n')
    for k, (line, stripped) in enumerate(zip(raw, code), start=1):
        if len(line.expandtabs(4)) > MAX_COLUMNS and not opted_out(line, 'length'):
            report(path, k, 'length', f'{len(line.expandtabs(4))} columns (limit {MAX_COLUMNS})')
        if path != 'src/core/alloc.c':
            for m in ALLOC.finditer(stripped):
                if not opted_out(line, 'alloc'):
                    report(path, k, 'alloc', f'{m.group(1)}(): use eg_{m.group(1)} from core/alloc.h')
        for m in BANNED.finditer(stripped):
            if not opted_out(line, 'banned'):
                report(path, k, 'banned', f'{m.group(1)}() (see the list in scripts/checksrc.sh)')
        if path not in ('src/core/err.c', 'src/core/err.h') and OOM.search(line) and not opted_out(line, 'oom'):
            report(path, k, 'oom', 'use eg_error_oom(err)')
    if path.endswith('.h'):
        internal = path.endswith('_int.h')
        for m in DECL.finditer(blank_comments_and_strings(text)):
            name = m.group(1)
            decl_line = text.count('\n', 0, m.start()) + 1
            if m.group(0).lstrip().startswith(('return', 'if', 'while', 'for', 'switch', 'sizeof', '#', 'typedef')):
                continue
            if opted_out(raw[decl_line - 1], 'internal'):
                continue
            if internal and '__' not in name:
                report(path, decl_line, 'internal', f'{name}() is declared in an _int.h: mark it module_file__name')
            if not internal and '__' in name:
                report(path, decl_line, 'internal', f'{name}() is module-internal: declare it in an _int.h')

for line in findings:
    print(line)
if findings:
    print(f'checksrc: {len(findings)} finding(s)', file=sys.stderr)
    sys.exit(1)
PY
