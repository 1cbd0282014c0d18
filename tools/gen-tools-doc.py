#!/usr/bin/env python3
# gen-tools-doc.py - regenerate docs/tools.md from tools/list and example calls
# against `engram serve --backend memory`.  Run from the repository root after
# building (./build/engram).
import json, subprocess
calls = [
 ("create_entities", {"entities":[{"name":"Ada Lovelace","entityType":"person","observations":["wrote the first published algorithm","mathematician"]},{"name":"Analytical Engine","entityType":"machine","observations":["designed by Charles Babbage"]}]}),
 ("create_relations", {"relations":[{"from":"Ada Lovelace","to":"Analytical Engine","relationType":"wrote_programs_for","strength":0.9,"confidence":0.95},{"from":"Ada Lovelace","to":"Nobody","relationType":"knows"}]}),
 ("add_observations", {"observations":[{"entityName":"Ada Lovelace","contents":["born 1815 in London"]}]}),
 ("delete_observations", {"deletions":[{"entityName":"Ada Lovelace","observations":["mathematician"]}]}),
 ("get_relation", {"from":"Ada Lovelace","to":"Analytical Engine","relationType":"wrote_programs_for"}),
 ("update_relation", {"relation":{"from":"Ada Lovelace","to":"Analytical Engine","relationType":"wrote_programs_for","confidence":0.99}}),
 ("read_graph", {}),
 ("search_nodes", {"query":"babbage"}),
 ("open_nodes", {"names":["Ada Lovelace"]}),
 ("semantic_search", {"query":"who wrote algorithms","limit":3,"min_similarity":0}),
 ("hybrid_search", {"query":"algorithm","semantic_weight":0.5,"limit":3}),
 ("get_entity_embedding", {"entity_name":"Ada Lovelace"}),
 ("get_entity_history", {"entityName":"Ada Lovelace"}),
 ("get_relation_history", {"from":"Ada Lovelace","to":"Analytical Engine","relationType":"wrote_programs_for"}),
 ("get_graph_at_time", {"timestamp":1795968000000}),
 ("get_decayed_graph", {"decay_factor":30}),
 ("force_generate_embedding", {"entity_name":"Ada Lovelace"}),
 ("debug_embedding_config", {}),
 ("diagnose_vector_search", {}),
 ("queue_status", {}),
 ("queue_list_jobs", {"status":"completed","limit":2}),
 ("queue_retry_dead", {}),
 ("delete_relations", {"relations":[{"from":"Ada Lovelace","to":"Analytical Engine","relationType":"wrote_programs_for"}]}),
 ("delete_entities", {"entityNames":["Analytical Engine","Charles Babbage"]}),
]
lines = [json.dumps({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}),
         json.dumps({"jsonrpc":"2.0","id":1,"method":"tools/list"})]
for i,(n,a) in enumerate(calls):
    lines.append(json.dumps({"jsonrpc":"2.0","id":100+i,"method":"tools/call","params":{"name":n,"arguments":a}}))
p = subprocess.run(["./build/engram","serve","--backend","memory","--threads","1"], input="\n".join(lines)+"\n", capture_output=True, text=True)
resp = {}
for l in p.stdout.splitlines():
    m = json.loads(l)
    if "id" in m: resp[m["id"]] = m
tools = resp[1]["result"]["tools"]
examples = {}
for i,(n,a) in enumerate(calls):
    examples.setdefault(n, (a, resp[100+i]["result"]))
def short(v, depth=0):
    if isinstance(v, list):
        if len(v) > 4 and all(isinstance(x,(int,float)) for x in v):
            return [round(x,4) if isinstance(x,float) else x for x in v[:4]] + ["..."]
        return [short(x, depth+1) for x in v]
    if isinstance(v, dict):
        return {k: short(x, depth+1) for k,x in v.items()}
    if isinstance(v, float): return round(v, 4)
    return v
def typ(s):
    t = s.get("type")
    if isinstance(t, list): t = " \\| ".join(t)
    if t == "array" and "items" in s:
        it = s["items"].get("type","object")
        t = f"array of {it}"
    if "enum" in s: t = (t or "") + " (" + ", ".join(map(str,s["enum"])) + ")"
    return t or "any"
def pretty(v, ind=0):
    c = json.dumps(v, ensure_ascii=False)
    if len(c) + ind <= 100 or not isinstance(v, (dict, list)) or not v:
        return c
    pad = " " * (ind + 2)
    if isinstance(v, list):
        return "[\n" + ",\n".join(pad + pretty(x, ind + 2) for x in v) + "\n" + " " * ind + "]"
    return "{\n" + ",\n".join(pad + json.dumps(k) + ": " + pretty(x, ind + 2) for k, x in v.items()) + "\n" + " " * ind + "}"
out = []
out.append("""# engram MCP tools

engram serves the 20 tools of memento-mcp with the same names and parameters, plus four of its own
(`hybrid_search`, `queue_status`, `queue_list_jobs`, `queue_retry_dead`). This page is generated from
`tools/list` and real calls against `engram serve --backend memory` (timestamps and vectors shortened);
the Neo4j backend returns the same shapes, sometimes with extra fields (ids, `changedBy`, `jobIds`,
`score`, `keywordRank`/`vectorRank`, `nextCursor`).

Conventions for every tool:

- **Results** carry `structuredContent` (an object conforming to the tool's `outputSchema`) and the
  same JSON as a `text` content block, for clients that ignore structured output.
- **Validation failures** (missing or mistyped arguments, unknown properties) come back as a normal result
  with `isError: true` and a text naming each problem and how to fix it, e.g.
  `Invalid arguments for create_entities: entities[0]: missing required property 'entityType' (string)`.
  Unknown tool names are a JSON-RPC error (-32602).
- **Loose inputs are accepted when unambiguous**: an array or object sent as a JSON string
  (`"observations": "[\\"a\\",\\"b\\"]"`, memento issue #118), numbers as strings (`"limit": "5"`),
  booleans as `"true"`/`"false"`. The result then has `_coerced` listing what was assumed.
- **Annotations** are honest: reads are `readOnlyHint`+`idempotentHint`; deletes are
  `destructiveHint`+`idempotentHint`; creates/updates are neither; every tool has `openWorldHint: false`
  (it touches only this memory).
- Times are milliseconds since the Unix epoch.
- **Every tool sees only its namespace** (`ENGRAM_NAMESPACE`): reads, searches, history, the
  diagnostics (`debug_embedding_config`, `diagnose_vector_search`: its probe keeps only this
  namespace's neighbours) and the queue tools (`queue_status` counts and lists only this namespace's
  jobs; `queue_retry_dead` revives only them, ignoring other namespaces' job ids as unknown ones).
  Several namespaces may share one database, queue and vector index without seeing each other.

| tool | read-only | destructive | idempotent |
|---|---|---|---|
""")
for t in tools:
    a = t["annotations"]
    out.append(f"| [`{t['name']}`](#{t['name']}) | {'yes' if a['readOnlyHint'] else 'no'} | {'yes' if a['destructiveHint'] else 'no'} | {'yes' if a['idempotentHint'] else 'no'} |\n")
for t in tools:
    out.append(f"\n## {t['name']}\n\n**{t['title']}.** {t['description']}\n\n")
    props = t["inputSchema"].get("properties", {})
    req = set(t["inputSchema"].get("required", []))
    if props:
        out.append("| parameter | type | required | notes |\n|---|---|---|---|\n")
        for k,s in props.items():
            notes = s.get("description","")
            if s.get("type") == "array" and s.get("items",{}).get("type") == "object":
                ip = s["items"].get("properties",{})
                ir = s["items"].get("required",[])
                notes += (" " if notes else "") + "Items: " + ", ".join(f"`{x}`{'*' if x in ir else ''}" for x in ip) + " (* required)."
            if s.get("type") == "object" and "properties" in s:
                ip = s.get("properties",{}); ir = s.get("required",[])
                notes += (" " if notes else "") + "Fields: " + ", ".join(f"`{x}`{'*' if x in ir else ''}" for x in ip) + " (* required)."
            rng = []
            if "minimum" in s: rng.append(f"min {s['minimum']}")
            if "maximum" in s: rng.append(f"max {s['maximum']}")
            if "minItems" in s: rng.append(f"at least {s['minItems']} item")
            if rng: notes += (" " if notes else "") + "(" + ", ".join(rng) + ")"
            out.append(f"| `{k}` | {typ(s)} | {'yes' if k in req else 'no'} | {notes} |\n")
    else:
        out.append("No parameters.\n")
    if t["name"] in examples:
        a, r = examples[t["name"]]
        out.append("\nExample call (`arguments`):\n\n```json\n" + pretty(a) + "\n```\n")
        body = short(r.get("structuredContent")) if not r.get("isError") else r["content"][0]["text"]
        out.append("\nResult (`structuredContent`):\n\n```json\n" + pretty(body) + "\n```\n")
open("docs/tools.md","w").write("".join(out))
print(len(tools), "tools documented")
