#!/usr/bin/env bash
# Connection limits of the Streamable HTTP server (issue 14, finding 2):
# one client address holds at most ENGRAM_MCP_HTTP_PER_IP connections (the
# rest are closed at once), and a connection that trickles its headers a
# byte at a time is closed at the header deadline although it is never
# silent long enough for the idle timeout.  Bounded: about 10 s.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
ENGRAM_MCP_HTTP_PER_IP=8 ENGRAM_MCP_HTTP_HEADER_TIMEOUT=3 ENGRAM_MCP_HTTP_IDLE_TIMEOUT=60 mcp_start_http
python3 - "$mcp_http_port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
fails = 0

def conn(src):
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

def closed_within(s, seconds):
    """True when the server closes s within seconds (recv gives EOF or a reset)."""
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True

# 12 idle connections from one address: 8 held, 4 closed at once
socks = [conn("127.0.0.7") for _ in range(12)]
for s in socks:
    s.sendall(b"POST /mcp HTTP/1.1\r\n")
time.sleep(0.3)
shut = sum(1 for s in socks if closed_within(s, 0.2))
if shut != 4:
    print(f"FAIL: per-address limit 8: {shut} of 12 connections closed at once, expected 4", file=sys.stderr)
    fails += 1
# another address is not affected
other = conn("127.0.0.8")
other.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
other.settimeout(5)
if not other.recv(64).startswith(b"HTTP/1.1 400"):
    print("FAIL: another address was not served while one address is at its limit", file=sys.stderr)
    fails += 1
for s in socks + [other]:
    s.close()

# a byte every 0.5 s: never silent, but the headers never end
t0 = time.monotonic()
s = conn("127.0.0.9")
gone = None
for i in range(40):  # at most 20 s
    try:
        s.sendall(b"X")
    except OSError:
        gone = time.monotonic() - t0
        break
    if closed_within(s, 0.5):
        gone = time.monotonic() - t0
        break
s.close()
if gone is None or not 2.5 <= gone <= 5.5:
    print(f"FAIL: trickled headers closed after {gone} s, expected at the 3 s header deadline", file=sys.stderr)
    fails += 1
print(f"mcp-http-limits: trickle_closed_after_s={gone and round(gone, 1)} failures={fails}")
sys.exit(1 if fails else 0)
PY
