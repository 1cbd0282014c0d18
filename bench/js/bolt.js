#!/usr/bin/env node
// bolt.js - the reference side of `bench/run bolt`: the official Neo4j
// JavaScript driver doing the same three workloads as bench/bench_bolt.c.
//
//   roundtrip : N sequential auto-commit `RETURN $x` (session.run, awaited one by one)
//   pipelined : N `RETURN $x` in one explicit transaction, issued in windows of
//               DEPTH concurrent tx.run() promises (Promise.all per window)
//   stream    : one `UNWIND range(1, ROWS) AS i RETURN i, toString(i)`, every
//               record consumed (default fetch size 1000, like ours)
//
// With --routed 1, round trips and the stream again through a bolt:// driver
// ("direct") and a neo4j:// driver to the same server ("routed"; Community
// answers ROUTE with itself), both with one connection.  Round trips
// alternate blocks of ROUTED_BLOCK between the two drivers (a session per
// block, flipping which goes first), exactly as bench_bolt.c alternates its
// two pools; the stream likewise, in streams of ROUTED_STREAM_BLOCK rows
// until each side has read --rows, --order (the run number) choosing which
// starts.
//
// One measured run per invocation (bench/bolt.sh alternates runs of both
// sides and takes medians).  Prints one JSON line on stdout; progress and
// errors go to stderr.  Connection settings: BENCH_NEO4J_URI (bolt://), _USER,
// _PASSWORD.  Counts: --roundtrips N --pipelined N --depth D --rows N
// --warmup 0|1 --routed 0|1 --order N.
'use strict';

const neo4j = require('neo4j-driver');

const ROUTED_BLOCK = 500;
const ROUTED_STREAM_BLOCK = 100000;

function parseArgs(argv) {
  const o = { roundtrips: 20000, pipelined: 20000, depth: 100, rows: 1000000, warmup: 1, routed: 0, order: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o) || i + 1 >= argv.length) throw new Error(`bad option ${argv[i]}`);
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`bad value for ${argv[i]}: ${argv[i + 1]}`);
    o[k] = v;
  }
  if (o.depth < 1) throw new Error('--depth must be >= 1');
  return o;
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

// n sequential round trips with values base..; elapsed milliseconds.
async function roundtrips(driver, base, n) {
  const session = driver.session();
  try {
    const t0 = performance.now();
    for (let x = base; x < base + n; x++) {
      const r = await session.run('RETURN $x AS x', { x: neo4j.int(x) });
      check(r.records.length === 1 && r.records[0].get(0).toNumber() === x, `roundtrip value ${x}`);
    }
    return performance.now() - t0;
  } finally {
    await session.close();
  }
}

async function roundtrip(driver, n) {
  return n / ((await roundtrips(driver, 0, n)) / 1000);
}

// n round trips on each driver in alternating blocks; elapsed ms of each.
async function roundtripsAlternating(a, b, n) {
  let aMs = 0;
  let bMs = 0;
  for (let base = 0, k = 0; base < n; base += ROUTED_BLOCK, k++) {
    const m = Math.min(ROUTED_BLOCK, n - base);
    if (k % 2 === 0) {
      aMs += await roundtrips(a, base, m);
      bMs += await roundtrips(b, base, m);
    } else {
      bMs += await roundtrips(b, base, m);
      aMs += await roundtrips(a, base, m);
    }
  }
  return [aMs, bMs];
}

// CPU seconds the Neo4j server has used (BENCH_NEO4J_PID), or null.
function serverCpuS() {
  const pid = process.env.BENCH_NEO4J_PID;
  if (!pid) return null;
  try {
    const stat = require('fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
  } catch {
    return null;
  }
}

// { qps, clientCpuUs, serverCpuUs }: the rate, and CPU microseconds per query
// of this process and of the server (null when unknown).
async function pipelined(driver, n, depth) {
  const session = driver.session();
  try {
    const server0 = serverCpuS();
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const tx = session.beginTransaction();
    for (let base = 0; base < n; base += depth) {
      const batch = [];
      for (let x = base; x < Math.min(n, base + depth); x++) {
        batch.push(tx.run('RETURN $x AS x', { x: neo4j.int(x) }).then((r) => {
          check(r.records.length === 1 && r.records[0].get(0).toNumber() === x, `pipelined value ${x}`);
        }));
      }
      await Promise.all(batch);
    }
    await tx.commit();
    const s = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    const server1 = server0 === null ? null : serverCpuS();
    return { qps: n / s, clientCpuUs: (self.user + self.system) / n,
      serverCpuUs: server1 === null ? null : (server1 - server0) * 1e6 / n };
  } finally {
    await session.close();
  }
}

async function stream(driver, rows) {
  const session = driver.session();
  try {
    const t0 = performance.now();
    let count = 0;
    let sumLen = 0;
    let last = 0;
    await new Promise((resolve, reject) => {
      session.run('UNWIND range(1, $n) AS i RETURN i, toString(i) AS s', { n: neo4j.int(rows) }).subscribe({
        onNext: (rec) => {
          last = rec.get(0).toNumber();
          sumLen += rec.get(1).length;
          count++;
        },
        onCompleted: resolve,
        onError: reject,
      });
    });
    const s = (performance.now() - t0) / 1000;
    check(count === rows && (rows === 0 || last === rows), `stream rows ${count}/${rows}`);
    check(sumLen > 0 || rows === 0, 'stream strings');
    return rows / s;
  } finally {
    await session.close();
  }
}

// The routed figures (see the file comment) into out.
async function routedFigures(direct, routed, o, out) {
  if (o.warmup) {
    await roundtripsAlternating(direct, routed, 2000);
    await stream(direct, 100000);
    await stream(routed, 100000);
  }
  if (o.roundtrips) {
    const [dMs, rMs] = await roundtripsAlternating(direct, routed, o.roundtrips);
    out.pool_roundtrip_qps = o.roundtrips / (dMs / 1000);
    out.routed_roundtrip_qps = o.roundtrips / (rMs / 1000);
    out.routed_overhead = Math.round((rMs / dMs - 1) * 10000) / 10000;
  }
  if (o.rows) {
    let dS = 0;
    let rS = 0;
    for (let done = 0, k = o.order; done < o.rows; k++) {
      const m = Math.min(ROUTED_STREAM_BLOCK, o.rows - done);
      const pair = k % 2 === 1 ? [direct, routed] : [routed, direct];
      for (const d of pair) {
        const s = m / (await stream(d, m));
        if (d === direct) dS += s; else rS += s;
      }
      done += m;
    }
    out.pool_stream_rows_s = o.rows / dS;
    out.routed_stream_rows_s = o.rows / rS;
    out.routed_stream_overhead = Math.round((rS / dS - 1) * 10000) / 10000;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const uri = process.env.BENCH_NEO4J_URI;
  if (!uri) throw new Error('BENCH_NEO4J_URI is not set');
  if (o.routed && !uri.startsWith('bolt://')) throw new Error('--routed needs a bolt:// BENCH_NEO4J_URI');
  const auth = neo4j.auth.basic(process.env.BENCH_NEO4J_USER || 'neo4j', process.env.BENCH_NEO4J_PASSWORD || '');
  const driver = neo4j.driver(uri, auth, { maxConnectionPoolSize: 1 });
  const routed = o.routed ? neo4j.driver(`neo4j://${uri.slice('bolt://'.length)}`, auth,
    { maxConnectionPoolSize: 1 }) : null;
  try {
    const info = await driver.getServerInfo();
    if (o.warmup) {
      await roundtrip(driver, 2000);
      await pipelined(driver, 2000, o.depth);
      await stream(driver, 100000);
    }
    const out = { side: 'driver', driver: `neo4j-driver/${require('neo4j-driver/package.json').version}`,
      server: info.agent, protocol: String(info.protocolVersion) };
    if (o.roundtrips) out.roundtrip_qps = await roundtrip(driver, o.roundtrips);
    if (o.pipelined) {
      const p = await pipelined(driver, o.pipelined, o.depth);
      out.pipelined_qps = p.qps;
      out.pipelined_client_cpu_us = Math.round(p.clientCpuUs * 10) / 10;
      if (p.serverCpuUs !== null) out.pipelined_server_cpu_us = Math.round(p.serverCpuUs * 10) / 10;
    }
    if (o.rows) out.stream_rows_s = await stream(driver, o.rows);
    if (routed) await routedFigures(driver, routed, o, out);
    for (const k of ['roundtrip_qps', 'pipelined_qps', 'stream_rows_s', 'pool_roundtrip_qps', 'routed_roundtrip_qps',
      'pool_stream_rows_s', 'routed_stream_rows_s']) {
      if (k in out) out[k] = Math.round(out[k] * 10) / 10;
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await driver.close();
    if (routed) await routed.close();
  }
}

main().catch((e) => {
  process.stderr.write(`bolt.js: ${e.stack || e}\n`);
  process.exit(1);
});
