#!/usr/bin/env python3
"""A stand-in EC2 instance metadata service (test fixture), to be run ONLY inside a
network namespace the test created (on 169.254.169.254:80 and [fd00:ec2::254]:80 there):
never on, or towards, this machine's own network.

It answers IMDSv2 (PUT /latest/api/token) and IMDSv1, and hands out the credentials of a
"node role" whose access key starts with ASIANODEIMDS, so a client that falls back to the
node's identity is seen twice: here, and in the signature of what it sends. Every
connection and every request is appended to --log, one line each (a request with the
client's address). --hop-limit N sends the token's answer with an IP TTL of N, as the
real service does with the instance's HttpPutResponseHopLimit (1 by default): the node
gets its token, a container one routed hop behind the node does not.
"""
import argparse
import json
import socket
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ROLE = "aws-role-test-node-role"


def log(path, line):
    with LOCK, open(path, "a") as f:
        f.write(line + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    log_path = ""
    hop_limit = None

    def verify_request(self, request, client_address):
        log(self.log_path, f"connection from {client_address[0]}")
        return True


class Server6(Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, ctype="text/plain", headers=()):
        data = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        log(self.server.log_path, f"PUT {self.path} from {self.client_address[0]}")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/latest/api/token":
            if self.server.hop_limit is not None and self.server.address_family == socket.AF_INET:
                self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.server.hop_limit)
            # As the real service: the TTL is required, and echoed back with the token.
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "missing or invalid token TTL")
            return self.answer(200, "AQAEAnodeImdsToken==",
                               headers=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        self.answer(404, "not found")

    def do_GET(self):
        log(self.server.log_path, f"GET {self.path}")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path in (base, base.rstrip("/")):
            return self.answer(200, ROLE)
        if self.path.startswith(base + ROLE):
            exp = datetime.now(timezone.utc) + timedelta(hours=6)
            creds = {
                "Code": "Success",
                "Type": "AWS-HMAC",
                "AccessKeyId": "ASIANODEIMDS00000000",
                "SecretAccessKey": "node-imds-secret-not-a-real-one",
                "Token": "node-imds-session-token",
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "LastUpdated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return self.answer(200, json.dumps(creds), "application/json")
        if self.path == "/latest/dynamic/instance-identity/document":
            return self.answer(200, json.dumps({"region": "us-east-1"}), "application/json")
        if self.path == "/latest/meta-data/placement/region":
            return self.answer(200, "us-east-1")
        self.answer(404, "not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", action="append", required=True, help="an address in this namespace")
    ap.add_argument("--log", required=True)
    ap.add_argument("--hop-limit", type=int, help="IP TTL of the token's answer (IPv4)")
    a = ap.parse_args()
    Server.log_path = a.log
    Server.hop_limit = a.hop_limit
    servers = []
    for addr in a.bind:
        cls = Server6 if ":" in addr else Server
        servers.append(cls((addr, 80), Handler))
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("imds emulator on " + ", ".join(a.bind), file=sys.stderr, flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
