#!/usr/bin/env python3
"""A request log in front of the STS/S3 emulator (test fixture).

moto checks no signature, so a suite cannot learn from moto who signed a request. This
proxy forwards every request unchanged to the emulator and appends one JSON line per
request to --log:

  {"method": "PUT", "path": "/tools-boto3/obj", "akid": "ASIA...", "token": "<sha256>",
   "signed": true, "status": 200}

where "akid" is the access key of the SigV4 credential scope (Authorization header or
X-Amz-Credential query parameter), "token" the SHA-256 of the session token the request
carried (X-Amz-Security-Token), never the token itself, and "signed" whether it had a SigV4
signature at all. Listens on 127.0.0.1, or on --listen: an address of a network the test
made (the multi-node cluster's bridge).

  sigv4-log-proxy.py serve --port P --upstream URL --log FILE [--listen ADDR]
  sigv4-log-proxy.py count --log FILE --prefix /BUCKET/ --akid AKID --token SHA256

`count` prints what a suite asserts on, for the requests whose path starts with PREFIX:
"<requests> <signed with AKID and that token> <signed with the stand-in IMDS's node role>".
"""
import argparse
import hashlib
import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CRED = re.compile(r"Credential=([A-Z0-9]+)/")
# Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded; the body is sent with its length.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ("127.0.0.1", 0)
    log_path = ""

    def log_message(self, fmt, *args):
        pass

    def body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def record(self, status):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        auth = self.headers.get("Authorization", "")
        m = CRED.search(auth) or CRED.search("Credential=" + query.get("X-Amz-Credential", [""])[0])
        token = self.headers.get("X-Amz-Security-Token") or query.get("X-Amz-Security-Token", [""])[0]
        line = {
            "method": self.command,
            "path": urllib.parse.urlsplit(self.path).path,
            "akid": m.group(1) if m else "",
            "token": hashlib.sha256(token.encode()).hexdigest() if token else "",
            "signed": bool(m) and ("Signature=" in auth or "X-Amz-Signature" in query),
            "status": status,
        }
        with LOCK, open(self.log_path, "a") as f:
            f.write(json.dumps(line) + "\n")

    def forward(self):
        data = self.body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(data))
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except OSError as e:
            self.record(502)
            self.send_error(502, f"emulator: {e}")
            return
        finally:
            conn.close()
        self.record(resp.status)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and (k.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def serve(a):
    u = urllib.parse.urlsplit(a.upstream)
    Handler.upstream = (u.hostname, u.port)
    Handler.log_path = a.log
    srv = ThreadingHTTPServer((a.listen, a.port), Handler)
    srv.daemon_threads = True
    print(f"sigv4 log proxy on {a.listen}:{a.port} -> {a.upstream}", file=sys.stderr, flush=True)
    srv.serve_forever()


# The stand-in IMDS (imds-emulator.py) hands out access keys that start with this.
NODE_ROLE_KEY = "ASIANODEIMDS"


def count(a):
    rs = []
    with open(a.log) as f:
        for line in f:
            r = json.loads(line)
            if (r["path"] + "/").startswith(a.prefix):
                rs.append(r)
    job = sum(1 for r in rs if r["signed"] and r["akid"] == a.akid and r["token"] == a.token)
    node = sum(1 for r in rs if r["akid"].startswith(NODE_ROLE_KEY))
    print(len(rs), job, node)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="forward to the emulator, logging each request")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the emulator")
    s.add_argument("--log", required=True)
    s.add_argument("--listen", default="127.0.0.1")
    c = sub.add_parser("count", help="summarise the log's requests under a path")
    c.add_argument("--log", required=True)
    c.add_argument("--prefix", required=True, help="/BUCKET/")
    c.add_argument("--akid", required=True, help="the job's access key")
    c.add_argument("--token", required=True, help="the SHA-256 of the job's session token")
    a = ap.parse_args()
    serve(a) if a.cmd == "serve" else count(a)


if __name__ == "__main__":
    main()
