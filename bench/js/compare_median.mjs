// compare_median.mjs - the median of several `bench/run compare` runs.
//
// usage: node bench/js/compare_median.mjs FILE...
//
// Each FILE is a bench/results/ file of compare runs (an object whose "runs"
// holds final JSON lines) or a file of final JSON lines, one per line.  A
// single run of compare on this kind of machine moves by a third at the
// largest sizes, so the figures a note quotes are the medians over runs.
//
// stderr: a Markdown table, size x workload x server, each cell the median
// over the runs that measured it and, when runs disagree, their range.
// stdout, last line: one JSON object, {"runs": N, "median": {key: median of
// that numeric top-level key over the runs that have it}, "range": {key:
// [min, max]}}.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node compare_median.mjs FILE...\n');
  process.exit(2);
}

const lines = [];
for (const f of files) {
  const text = readFileSync(f, 'utf8');
  let doc = null;
  try { doc = JSON.parse(text); } catch { /* a file of JSON lines */ }
  const candidates = doc == null
    ? text.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l))
    : Array.isArray(doc.runs) ? doc.runs : [doc];
  for (const c of candidates) {
    if (c?.bench !== 'compare') throw new Error(`${f}: not a compare line (bench=${c?.bench})`);
    lines.push(c);
  }
}
if (lines.length === 0) throw new Error('no compare line in the files');

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => +x.toFixed(3);

const keys = new Set(lines.flatMap((l) => Object.keys(l)));
const out = { runs: lines.length, median: {}, range: {} };
for (const k of keys) {
  const v = lines.map((l) => l[k]).filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) continue;
  out.median[k] = round(median(v));
  out.range[k] = [round(Math.min(...v)), round(Math.max(...v))];
}

// The table: every size any side measured, every workload, each side.
const SIDES = ['engram', 'official', 'memento'];
const WORKLOADS = [
  ['create', 'p50'], ['create', 'p95'], ['create_idle', 'p50'], ['add_obs', 'p50'], ['add_obs_idle', 'p50'],
  ['search_hit', 'p50'], ['search_hit', 'p95'], ['search_miss', 'p50'], ['search_miss', 'p95'],
  ['open5', 'p50'], ['read_page', 'p50'], ['semantic', 'p50'], ['semantic', 'p95'],
  ['hybrid', 'p50'], ['hybrid', 'p95'], ['bulk_entities_s', null],
];
const cell = (side, size, w, q) => {
  const v = lines
    .map((l) => {
      const row = l[side]?.sizes?.[size];
      const x = q == null ? row?.[w] : row?.[w]?.[q];
      return typeof x === 'number' ? x : null;
    })
    .filter((x) => x != null);
  if (v.length === 0) return '—';
  const m = round(median(v));
  const lo = round(Math.min(...v)), hi = round(Math.max(...v));
  const n = v.length < lines.length ? ` (${v.length} runs)` : '';
  return lo === hi ? `${m}${n}` : `${m} [${lo}–${hi}]${n}`;
};
const sizes = [...new Set(lines.flatMap((l) => SIDES.flatMap((s) => Object.keys(l[s]?.sizes ?? {}))))]
  .map(Number).sort((a, b) => a - b);
let md = `| size | workload | ${SIDES.join(' | ')} |\n|---|---|${SIDES.map(() => '---').join('|')}|\n`;
for (const size of sizes)
  for (const [w, q] of WORKLOADS) {
    const cells = SIDES.map((s) => cell(s, size, w, q));
    if (cells.every((c) => c === '—')) continue;
    md += `| ${size.toLocaleString('en-US')} | ${q ? `${w} ${q}` : w} | ${cells.join(' | ')} |\n`;
  }
process.stderr.write(md);
console.log(JSON.stringify(out));
