#!/usr/bin/env python3
"""A fault-injecting proxy in front of the STS emulator (test fixture).

The first path segment of the request picks the behaviour, so one proxy serves every
fault: point the role map's [sts] endpoint at http://127.0.0.1:PORT/<mode>[/<arg>].

  pass            forward to the emulator unchanged
  slow/<s>        wait <s> seconds, then forward
  hang            accept, never answer (until the client gives up)
  deny            STS AccessDenied (HTTP 403, the real error shape)
  forge           AccessDenied whose message carries a carriage return, a terminal escape (C1 CSI)
                  and a newline followed by a fake log line (a hostile peer's text)
  throttle/<f>    answer Throttling (HTTP 400) to a fraction <f> of calls, forward the rest
  http500[/<f>]   HTTP 500 InternalFailure, to every call or to a fraction <f> of them

  rate/<r>/<b>    STS's account-wide limit: a token bucket of <r> calls a second and a
                  burst of <b>, shared by every caller of the same path; a call that finds
                  it empty is answered Throttling (HTTP 400, "Rate exceeded"), the rest are
                  forwarded. Per path, "sessions" counts each RoleSessionName's calls,
                  throttled answers and successes, and "first"/"last" the times (seconds,
                  from the path's first call) of its first call and of its success.

A fraction <f> is random (0.3: each call faulted with probability 0.3); written <k>of<n>
it is exact: the first <k> of every <n> calls to the same path are faulted (throttle/2of3:
two Throttling answers, then the emulator's).
  malformed       HTTP 200 with a body that is not XML
  truncated       HTTP 200 with the emulator's answer cut in half
  reset           the emulator's status line, headers and half its body, then a TCP reset
  expired         the emulator's answer with an Expiration in the past
  short/<s>       the emulator's answer with an Expiration <s> seconds from now

Any further path segments are ignored by the fault but counted apart: a suite can give
each job its own endpoint (e.g. /throttle/0.5/job-930010) and read its calls alone.

GET /stats returns JSON counters: calls per mode, how many were faulted, and per request
path ("paths": {"throttle/0.5/job-930010": {"calls": 3, "faulted": 2, "secrets": [...]}}),
where "secrets" are the SecretAccessKeys of the emulator's answers through that path (the
emulator's, worthless): a suite can check that a refused answer's secret is in no log;
and "params", per call, the AssumeRole parameters that moto accepts without looking at
them (ExternalId, PolicyArns.member.N.arn, TransitiveTagKeys.member.N, Tags.member.N.*,
SourceIdentity, Policy, with RoleArn, RoleSessionName and DurationSeconds), as sent.
Only listens on 127.0.0.1.
"""
import argparse
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"calls": {}, "faulted": 0, "paths": {}}
LOCK = threading.Lock()


def num(arg, default):
    """A mode's numeric argument; a missing or non-numeric one (a tag) means the default."""
    try:
        return float(arg)
    except (TypeError, ValueError):
        return default


def hit(arg, default, nth):
    """Whether call number <nth> (from 1) of a path is faulted, for the fraction <arg>."""
    m = re.fullmatch(r"(\d+)of(\d+)", arg or "")
    if m:
        k, n = int(m.group(1)), int(m.group(2))
        return (nth - 1) % max(n, 1) < k
    return random.random() < num(arg, default)


class Bucket:
    """A token bucket: <rate> tokens a second, at most <burst>, full at the start."""

    def __init__(self, rate, burst):
        self.rate, self.burst = max(rate, 0.001), max(burst, 1.0)
        self.tokens, self.at = self.burst, time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


BUCKETS = {}


def sts_error(code, message, status):
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return status, body.encode()


# The AssumeRole parameters "params" records (see the docstring).
RECORDED = {"ExternalId", "PolicyArns", "TransitiveTagKeys", "Tags", "SourceIdentity", "Policy",
            "RoleArn", "RoleSessionName", "DurationSeconds"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _send(self, status, body, content_type="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self._send(200, json.dumps(STATS).encode(), "application/json")
        else:
            self._send(404, b"")

    def _forward(self, body):
        req = urllib.request.Request(self.upstream + "/", data=body, method="POST")
        for h in ("Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = [p for p in self.path.split("/") if p]
        mode = parts[0] if parts else "pass"
        arg = parts[1] if len(parts) > 1 else None
        key = "/".join(parts)
        with LOCK:
            STATS["calls"][mode] = STATS["calls"].get(mode, 0) + 1
            path = STATS["paths"].setdefault(key, {"calls": 0, "faulted": 0, "secrets": [], "params": []})
            path["calls"] += 1
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            path["params"].append({k: v[0] for k, v in sorted(form.items()) if k.split(".")[0] in RECORDED})
            nth = path["calls"]

        def faulted():
            with LOCK:
                STATS["faulted"] += 1
                STATS["paths"][key]["faulted"] += 1

        if mode == "hang":
            faulted()
            time.sleep(3600)
            return
        if mode == "slow":
            time.sleep(num(arg, 5))
        if mode == "deny":
            faulted()
            return self._send(*sts_error("AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/node/i-0 is not authorized to perform: sts:AssumeRole", 403))
        if mode == "forge":
            faulted()
            return self._send(*sts_error("AccessDenied", "denied\r\u009b2K\nslurmstepd: error: all good, ignore the above", 403))
        if mode == "rate":
            session = form.get("RoleSessionName", ["?"])[0]
            with LOCK:
                bucket = BUCKETS.setdefault(key, Bucket(num(arg, 50), num(parts[2] if len(parts) > 2 else None, 1)))
                admitted = bucket.take()
                t0 = STATS["paths"][key].setdefault("t0", time.monotonic())
                s = STATS["paths"][key].setdefault("sessions", {}).setdefault(
                    session, {"calls": 0, "throttled": 0, "ok": 0, "first": round(time.monotonic() - t0, 3)})
                s["calls"] += 1
                if not admitted:
                    s["throttled"] += 1
            if not admitted:
                faulted()
                return self._send(*sts_error("Throttling", "Rate exceeded", 400))
            status, answer = self._forward(body)
            if status == 200:
                with LOCK:
                    s["ok"] += 1
                    s["last"] = round(time.monotonic() - t0, 3)
            return self._send(status, answer)
        if mode == "throttle" and hit(arg, 0.3, nth):
            faulted()
            return self._send(*sts_error("Throttling", "Rate exceeded", 400))
        if mode == "http500" and hit(arg, 1.0, nth):
            faulted()
            return self._send(500, b"<ErrorResponse><Error><Code>InternalFailure</Code></Error></ErrorResponse>")
        if mode == "malformed":
            faulted()
            return self._send(200, b"this is not XML {")
        status, answer = self._forward(body)
        secret = re.search(rb"<SecretAccessKey>([^<]*)</SecretAccessKey>", answer)
        if secret:
            with LOCK:
                STATS["paths"][key]["secrets"].append(secret.group(1).decode())
        if mode == "truncated":
            faulted()
            return self._send(200, answer[: len(answer) // 2])
        if mode == "reset":
            faulted()
            # A peer that dies mid-answer: the full length announced, half sent, then RST
            # (SO_LINGER 0) instead of a clean close.
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer[: len(answer) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            # Close the descriptor now: the server's own shutdown(SHUT_WR) would send a FIN
            # (a clean end of stream) before the reset.
            os.close(self.connection.detach())
            return
        if mode == "expired":
            faulted()
            answer = re.sub(rb"<Expiration>[^<]*</Expiration>", b"<Expiration>2001-01-01T00:00:00Z</Expiration>", answer)
        if mode == "short":
            faulted()
            soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + num(arg, 30)))
            answer = re.sub(rb"<Expiration>[^<]*</Expiration>", f"<Expiration>{soon}</Expiration>".encode(), answer)
        return self._send(status, answer)


class Server(ThreadingHTTPServer):
    # socketserver's default accept backlog is 5: a burst of 200 prologs then loses
    # hundreds of SYNs to the full queue, each resent after 1 s, 3 s, ..., and a test
    # measures the proxy's queue instead of the prologs. 128 is what moto listens with.
    request_queue_size = 128
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="the emulator, e.g. http://127.0.0.1:5059")
    a = ap.parse_args()
    Handler.upstream = a.upstream.rstrip("/")
    srv = Server(("127.0.0.1", a.port), Handler)
    print(f"fault proxy on 127.0.0.1:{a.port} -> {Handler.upstream}", file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
