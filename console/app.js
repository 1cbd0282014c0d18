// engram console: a read-only look at the memory, plus a retry button for
// dead embedding jobs.  It is an MCP client of the server that serves it:
// every figure comes from a tool call on /mcp with the user's bearer token,
// so the console can see exactly what an agent with that token can, no more.
// Text from the memory is only ever set as textContent, never as HTML.
'use strict';

const PROTOCOL = '2025-06-18';
const $ = (id) => document.getElementById(id);

const conn = {
  token: sessionStorage.getItem('engram.token') || '',
  namespace: sessionStorage.getItem('engram.namespace') || '',
  session: null,
  protocol: null,
  seq: 0,
};

class AuthError extends Error {}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// ---- MCP over Streamable HTTP (JSON responses) ----

async function post(body) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  if (conn.token) headers.Authorization = 'Bearer ' + conn.token;
  if (conn.session) headers['MCP-Session-Id'] = conn.session;
  if (conn.protocol) headers['MCP-Protocol-Version'] = conn.protocol;
  const res = await fetch('/mcp', { method: 'POST', headers, body: JSON.stringify(body) });
  if (res.status === 401) throw new AuthError('the server did not accept this token');
  return res;
}

async function connect() {
  conn.session = null;
  conn.protocol = null;
  const res = await post({
    jsonrpc: '2.0', id: ++conn.seq, method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'engram-console', version: '1' } },
  });
  const msg = await res.json();
  if (msg.error) throw new Error(msg.error.message);
  conn.session = res.headers.get('MCP-Session-Id');
  conn.protocol = msg.result.protocolVersion;
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
}

async function tool(name, args, retried) {
  if (!conn.session) await connect();
  const a = Object.assign({}, args);
  if (conn.namespace) a.namespace = conn.namespace;
  const res = await post({ jsonrpc: '2.0', id: ++conn.seq, method: 'tools/call', params: { name, arguments: a } });
  if (res.status === 404 && !retried) { // the session expired: start a new one
    conn.session = null;
    return tool(name, args, true);
  }
  const msg = await res.json();
  if (msg.error) throw new Error(msg.error.message);
  const r = msg.result;
  const text = (r.content || []).map((c) => c.text || '').join('\n');
  if (r.isError) throw new Error(text || name + ' failed');
  return r.structuredContent || JSON.parse(text);
}

function showError(e) {
  if (e instanceof AuthError) return logout(e.message);
  $('error').textContent = String(e.message || e);
}

// ---- log in ----

async function login(ev) {
  ev.preventDefault();
  conn.token = $('token').value.trim();
  conn.namespace = $('namespace').value.trim();
  $('login-error').textContent = '';
  try {
    await connect();
    await whoami(); // proves the token may read this namespace
  } catch (e) {
    conn.session = null;
    $('login-error').textContent = e instanceof AuthError ? 'Wrong token.' : String(e.message || e);
    return;
  }
  sessionStorage.setItem('engram.token', conn.token);
  sessionStorage.setItem('engram.namespace', conn.namespace);
  enter();
}

function logout(why) {
  sessionStorage.removeItem('engram.token');
  conn.token = '';
  conn.session = null;
  $('app').hidden = $('nav').hidden = $('logout').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = typeof why === 'string' ? why : '';
  $('token').focus();
}

// The namespace the server works in for this token, and its embedding model.
async function whoami() {
  const c = await tool('debug_embedding_config', {});
  conn.shownAs = 'namespace ' + c.namespace + ' · ' + c.provider + ' ' + (c.providerModel || '');
}

function enter() {
  $('login').hidden = true;
  $('app').hidden = $('nav').hidden = $('logout').hidden = false;
  $('who').textContent = conn.shownAs || '';
  route();
}

// ---- views ----

function show(view) {
  for (const v of ['search-view', 'entity-view', 'queue-view']) $(v).hidden = v !== view;
  $('nav-search').className = view === 'search-view' ? 'active' : '';
  $('nav-queue').className = view === 'queue-view' ? 'active' : '';
  $('error').textContent = '';
}

function route() {
  const h = location.hash || '#/search';
  if (h.startsWith('#/entity/')) return showEntity(decodeURIComponent(h.slice(9)));
  if (h.startsWith('#/queue')) return showQueue();
  show('search-view');
  const q = new URLSearchParams(h.split('?')[1] || '');
  if (q.has('q')) {
    $('q').value = q.get('q');
    $('mode').value = q.get('mode') || 'keyword';
    runSearch();
  }
}

function entityLink(name) {
  return el('a', { href: '#/entity/' + encodeURIComponent(name), class: 'entity-link', text: name });
}

// The observations that contain a word of the query, with the words marked.
function matchedObservations(obs, query) {
  const words = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1);
  const out = [];
  for (const o of obs || []) {
    const low = o.toLowerCase();
    if (!words.some((w) => low.includes(w))) continue;
    const li = el('li', { class: 'matched' });
    let i = 0;
    while (i < o.length) {
      let best = -1, len = 0;
      for (const w of words) {
        const j = low.indexOf(w, i);
        if (j >= 0 && (best < 0 || j < best)) { best = j; len = w.length; }
      }
      if (best < 0) { li.append(o.slice(i)); break; }
      li.append(o.slice(i, best), el('mark', { text: o.slice(best, best + len) }));
      i = best + len;
    }
    out.push(li);
  }
  return out;
}

async function runSearch() {
  const query = $('q').value.trim();
  const mode = $('mode').value;
  $('results').replaceChildren();
  $('search-note').textContent = 'searching…';
  try {
    let r;
    if (mode === 'keyword') r = await tool('search_nodes', { query, limit: 20 });
    else if (mode === 'semantic') r = await tool('semantic_search', { query, limit: 20, hybrid_search: false });
    else r = await tool('hybrid_search', { query, limit: 20 });
    const byName = new Map((r.entities || []).map((e) => [e.name, e]));
    const rows = r.matches
      ? r.matches.map((m) => ({ e: byName.get(m.name) || { name: m.name, entityType: m.entityType }, m }))
      : (r.entities || []).map((e) => ({ e, m: e.score != null ? { score: e.score } : null }));
    for (const { e, m } of rows) {
      const head = el('div', {}, entityLink(e.name), el('span', { class: 'note', text: ' ' + (e.entityType || '') }));
      if (m) {
        let s = 'score ' + Number(m.score).toFixed(3);
        if (m.vectorScore != null) s += ' · vector ' + Number(m.vectorScore).toFixed(3);
        if (m.keywordScore != null) s += ' · keyword ' + Number(m.keywordScore).toFixed(3);
        head.append(el('span', { class: 'score', text: s }));
      }
      const li = el('li', { class: 'result' }, head);
      const matched = matchedObservations(e.observations, query);
      if (matched.length) li.append(el('ul', {}, ...matched.slice(0, 5)));
      $('results').append(li);
    }
    let note = rows.length + ' result' + (rows.length === 1 ? '' : 's') + ' (' + (r.searchType || mode) + ')';
    if (r.note) note += ' — ' + r.note;
    if (r.fallback) note += ' — ' + r.fallback;
    $('search-note').textContent = note;
  } catch (e) {
    $('search-note').textContent = '';
    showError(e);
  }
}

let cy = null;

async function showEntity(name) {
  show('entity-view');
  $('entity-name').textContent = name;
  for (const id of ['entity-type', 'graph-note']) $(id).textContent = '';
  $('observations').replaceChildren();
  $('relations').tBodies[0].replaceChildren();
  $('history').replaceChildren();
  try {
    const [r, h] = await Promise.all([
      tool('open_nodes', { names: [name], neighbours: true }),
      tool('get_entity_history', { entityName: name }),
    ]);
    const e = (r.entities || [])[0];
    if (!e) {
      $('entity-type').textContent = 'No current entity of this name (it may have been deleted; its history is below).';
    } else {
      $('entity-type').textContent = e.entityType + ' · version ' + (e.version ?? '?') +
        ' · updated ' + new Date(e.updatedAt).toLocaleString();
      for (const o of e.observations) $('observations').append(el('li', { text: o }));
    }
    for (const rel of r.relations || []) {
      $('relations').tBodies[0].append(el('tr', {},
        el('td', {}, entityLink(rel.from)), el('td', { text: rel.relationType }), el('td', {}, entityLink(rel.to)),
        el('td', { text: rel.strength ?? '' }), el('td', { text: rel.confidence ?? '' })));
    }
    drawGraph(name, e, r.relations || [], r.neighbours || [], r.neighboursTruncated);
    renderHistory(h.history || []);
  } catch (err) {
    showError(err);
  }
}

// Each version against the one before: what was added, what was removed.
function renderHistory(versions) {
  let prev = null;
  for (const v of versions) {
    const when = new Date(v.validFrom).toLocaleString();
    const who = v.changedBy ? ' by ' + v.changedBy : '';
    const li = el('li', { class: 'version' }, el('strong', { text: when }), ' — version ' + v.version + who);
    const before = new Set(prev ? prev.observations : []);
    const now = new Set(v.observations || []);
    const changes = el('ul');
    if (!prev) changes.append(el('li', { text: 'created as ' + v.entityType }));
    else if (prev.entityType !== v.entityType) changes.append(el('li', { text: 'type: ' + prev.entityType + ' → ' + v.entityType }));
    for (const o of now) if (!before.has(o)) changes.append(el('li', { class: 'added', text: '+ ' + o }));
    for (const o of before) if (!now.has(o)) changes.append(el('li', { class: 'removed', text: '− ' + o }));
    if (v.deleted) changes.append(el('li', { text: 'deleted' }));
    if (v.validTo == null && !v.deleted) li.append(el('span', { class: 'note', text: ' (current)' }));
    li.append(changes);
    $('history').append(li);
    prev = v;
  }
  if (!versions.length) $('history').append(el('li', { text: 'no history recorded' }));
}

function drawGraph(name, entity, relations, neighbours, truncated) {
  if (cy) { cy.destroy(); cy = null; }
  if (window.ENGRAM_NO_GRAPH || typeof window.cytoscape !== 'function') {
    $('graph-note').textContent = 'This build has no graph library (run scripts/setup.sh and rebuild).';
    return;
  }
  const nodes = [{ data: { id: name, label: name + '\n' + (entity ? entity.entityType : ''), focus: 1 } }];
  for (const n of neighbours) nodes.push({ data: { id: n.name, label: n.name + '\n' + (n.entityType || '') } });
  const edges = relations.map((r, i) => ({ data: { id: 'r' + i, source: r.from, target: r.to, label: r.relationType } }));
  cy = window.cytoscape({
    container: $('graph'),
    elements: { nodes, edges },
    layout: { name: neighbours.length > 12 ? 'concentric' : 'cose', animate: false, padding: 20 },
    style: [
      { selector: 'node', style: { label: 'data(label)', 'text-wrap': 'wrap', 'font-size': 10, 'text-valign': 'bottom',
        'background-color': '#7c9bc7', width: 18, height: 18 } },
      { selector: 'node[focus]', style: { 'background-color': '#1d4f91', width: 26, height: 26 } },
      { selector: 'edge', style: { label: 'data(label)', 'font-size': 9, 'curve-style': 'bezier',
        'target-arrow-shape': 'triangle', width: 1.5, 'line-color': '#9aa6b2', 'target-arrow-color': '#9aa6b2' } },
    ],
  });
  cy.on('tap', 'node', (ev) => { location.hash = '#/entity/' + encodeURIComponent(ev.target.id()); });
  window.engramGraph = { nodes: cy.nodes().length, edges: cy.edges().length };
  $('graph-note').textContent = (nodes.length - 1) + ' neighbour' + (nodes.length === 2 ? '' : 's') + ', ' +
    edges.length + ' relation' + (edges.length === 1 ? '' : 's') + (truncated ? ' (first 200 relations only)' : '') +
    '. Click a node to open it.';
}

async function showQueue() {
  show('queue-view');
  try {
    const [st, dead] = await Promise.all([
      tool('queue_status', {}),
      tool('queue_list_jobs', { status: 'dead', limit: 100 }),
    ]);
    const counts = $('counts').tBodies[0];
    counts.replaceChildren();
    for (const [k, v] of Object.entries(st.counts || {})) {
      counts.append(el('tr', { class: 'count' }, el('th', { text: k }), el('td', { 'data-state': k, text: String(v) })));
    }
    if (st.oldestPendingAgeMs != null) {
      counts.append(el('tr', {}, el('th', { text: 'oldest ready job waits' }), el('td', { text: Math.round(st.oldestPendingAgeMs / 1000) + ' s' })));
    }
    renderHealth(st);
    renderThroughput(st.throughput);
    const tb = $('dead').tBodies[0];
    tb.replaceChildren();
    for (const j of dead.jobs || []) {
      const btn = el('button', { type: 'button', class: 'retry', text: 'Retry', on: { click: () => retry([j.id]) } });
      tb.append(el('tr', { class: 'dead-job' }, el('td', {}, j.entityName ? entityLink(j.entityName) : '—'),
        el('td', { text: String(j.attempts ?? '') }), el('td', { class: 'error-text', text: j.lastError || '' }), el('td', {}, btn)));
    }
    if (!(dead.jobs || []).length) tb.append(el('tr', {}, el('td', { colspan: 4, class: 'note', text: 'no dead jobs' })));
  } catch (e) {
    showError(e);
  }
}

function renderHealth(st) {
  const h = st.health;
  const box = $('health');
  box.replaceChildren();
  if (!h) { box.append(el('p', { class: 'note', text: 'This backend reports no health.' })); return; }
  box.append(el('p', {}, 'Workers: ', el('strong', { id: 'health-status', class: 'status-' + h.status, text: h.status })));
  const list = el('ul');
  for (const r of h.reasons || []) list.append(el('li', { class: 'error', text: r }));
  for (const n of h.notes || []) list.append(el('li', { text: n }));
  const w = st.workers;
  if (w) {
    list.append(el('li', { text: 'in this server: ' + w.concurrency + ' workers, provider ' + w.provider + ', ' +
      w.completed + ' completed, ' + w.failed + ' failed, ' + w.consecutiveFailures + ' failures in a row' }));
  } else {
    list.append(el('li', { class: 'note', text: 'no workers run inside this server; standalone `engram worker` processes report on their own /health' }));
  }
  box.append(list);
}

function renderThroughput(t) {
  const box = $('throughput');
  box.replaceChildren();
  if (!t) { $('throughput-note').textContent = 'not reported by this backend'; return; }
  const buckets = t.completed.slice().reverse(); // oldest first, left to right
  const max = Math.max(1, ...buckets);
  buckets.forEach((n, i) => {
    const ago = (buckets.length - i) * t.bucketMs / 60000;
    box.append(el('div', { title: n + ' completed, ' + (ago - t.bucketMs / 60000) + '–' + ago + ' min ago', style: 'height:' + (100 * n / max) + '%' }));
  });
  const total = buckets.reduce((a, b) => a + b, 0);
  $('throughput-note').textContent = total + ' embeddings in the last hour (' + (t.bucketMs / 60000) + '-minute bars, newest on the right)';
}

async function retry(ids) {
  try {
    const r = await tool('queue_retry_dead', { jobIds: ids });
    $('queue-message').textContent = 'retried ' + r.retried + ' job' + (r.retried === 1 ? '' : 's');
    await showQueue();
    $('queue-message').textContent = 'retried ' + r.retried + ' job' + (r.retried === 1 ? '' : 's');
  } catch (e) {
    showError(e);
  }
}

// ---- start ----

window.addEventListener('hashchange', () => { if (!$('app').hidden) route(); });
document.addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', () => logout(''));
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    $('search-note').textContent = 'searching…';
    const target = '#/search?' + new URLSearchParams({ q: $('q').value, mode: $('mode').value });
    if (location.hash === target) runSearch(); else location.hash = target;
  });
  $('token').value = conn.token;
  $('namespace').value = conn.namespace;
  // A loopback server without a token, or a token from this tab's session:
  // go straight in; otherwise ask.
  try {
    await connect();
    await whoami();
    enter();
  } catch (e) {
    logout(conn.token && !(e instanceof AuthError) ? String(e.message || e) : '');
  }
});
