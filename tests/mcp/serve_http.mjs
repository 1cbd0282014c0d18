// serve_http.mjs - start `engram serve --transport http` on a free port for
// a node test, shared by the tests that need their own server (teams,
// console).  A port another process holds makes the server exit at once:
// another one is tried; only a server still alive after the port answers
// is ours.  Its stderr is passed through.
import { spawn } from "node:child_process";
import { connect } from "node:net";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const isUp = (p) => new Promise((ok) => {
  const s = connect(p, "127.0.0.1", () => { s.destroy(); ok(true); });
  s.on("error", () => ok(false));
});

// Resolves to { child, port }, or null when no attempt started.
export async function startServeHttp(bin, args, env) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(bin, ["serve", "--transport", "http", "--port", String(port), ...args],
      { env, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.on("data", (d) => process.stderr.write(d));
    let exited = false;
    child.on("exit", () => (exited = true));
    for (let i = 0; i < 300 && !exited; i++) {
      if (await isUp(port)) {
        await sleep(200);
        if (!exited) return { child, port };
        break;
      }
      await sleep(100);
    }
    child.kill("SIGTERM");
  }
  return null;
}
