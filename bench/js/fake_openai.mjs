// fake_openai.mjs - an OpenAI-compatible /v1/embeddings on loopback that
// answers at once with deterministic unit vectors and counts requests and
// inputs (GET /stats).  usage: node fake_openai.mjs PORT_FILE
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";

let requests = 0, inputs = 0;
const srv = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(JSON.stringify({ requests, inputs }));
  }
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const b = JSON.parse(body || "{}");
    const texts = Array.isArray(b.input) ? b.input : [b.input];
    const dims = b.dimensions ?? 64;
    requests++;
    inputs += texts.length;
    const data = texts.map((t, i) => {
      const v = new Array(dims).fill(0);
      for (let k = 0; k < String(t).length; k++) v[(String(t).charCodeAt(k) * 31 + k) % dims] += 1;
      const n = Math.hypot(...v) || 1;
      return { object: "embedding", index: i, embedding: v.map((x) => x / n) };
    });
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ object: "list", data, model: b.model, usage: { prompt_tokens: 0, total_tokens: 0 } }));
  });
});
srv.listen(0, "127.0.0.1", () => writeFileSync(process.argv[2], String(srv.address().port)));
