#!/usr/bin/env python3
"""A hostile Hub: a proxy in front of the stand-in (tests/hub) that passes every
request on and misbehaves in exactly one way, chosen by --scenario. It stands for
what the open internet, a proxy or a mirror can do (issue 14): waits no client
should honour, bodies that never end, loops, huge or malformed answers,
substituted bytes, an echoed token. Standard library only.

    proxy.py --upstream URL --upstream-cdn URL --scenario NAME --ready-file F

It listens on two loopback ports, the API and the CDN, and rewrites Locations
so that the client's CDN requests come through the second one too.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.dont_write_bytecode = True


class Answer:
    """A response about to be sent: status, headers (a list of pairs), body."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


def instead(upstream, status, headers, body):
    """Another answer in place of upstream's, with upstream's RateLimit headers
    kept (the Hub sends them on every answer, hub-api.md section 8)."""
    kept = [(k, v) for k, v in upstream.headers if k.lower().startswith("ratelimit")]
    return Answer(status, kept + headers, body)


def is_model_info(path):
    parts = urlsplit(path).path.split("/")
    return len(parts) in (5, 7) and parts[1:3] == ["api", "models"] and \
        (len(parts) == 5 or parts[5] == "revision")


def is_tree(path):
    return "/tree/" in urlsplit(path).path


def is_listing(path):
    return urlsplit(path).path == "/api/models"


def is_resolve(path):
    return "/resolve/" in urlsplit(path).path


class Scenario:
    """Decides, per request, whether to pass it on as it is, change the answer,
    or take the connection over. Counters are per scenario run."""

    def __init__(self, name, token_echo):
        self.name = name
        self.lock = threading.Lock()
        self.hits = {}
        self.token_echo = token_echo

    def count(self, key):
        with self.lock:
            self.hits[key] = self.hits.get(key, 0) + 1
            return self.hits[key]

    # --- answers made without asking upstream: return True when handled ---
    def take_over(self, handler, side):
        path = handler.path
        if self.name == "drip-body" and side == "api" and is_tree(path):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000000")
            handler.end_headers()
            try:
                for _ in range(600):   # about a minute at most, then the test has failed
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass   # the client gave up on the drip: what the test wants
            return True
        if self.name == "endless-500" and side == "api" and is_tree(path):
            handler.send_response(500)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(100000):
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass   # the client stopped reading: what the test wants
            return True
        if self.name == "silent" and side == "api" and is_tree(path):
            time.sleep(120)   # never answers, as far as the client can wait
            return True
        if self.name == "endless-302" and side == "api" and is_tree(path):
            handler.send_response(302)
            handler.send_header("Location", "/elsewhere")
            handler.send_header("Content-Length", str(1 << 40))
            handler.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(100000):
                    handler.wfile.write(chunk)
            except OSError:
                pass
            return True
        if self.name == "huge-json" and side == "api" and (is_model_info(path) or is_tree(path)):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b'{"id":"x","siblings":[' + b'{"rfilename":"a"},' * 20000
            try:
                for _ in range((250 << 20) // len(chunk)):
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass   # the client gave up: what the test wants
            return True
        return False

    # --- changes to upstream's answer ---
    def change(self, method, path, side, answer, token):
        n = self.name
        if n == "retry-after-huge" and side == "api" and (is_tree(path) or is_model_info(path)):
            return instead(answer, 503, [("Retry-After", "999999999")], b"busy")
        if n == "retry-after-inf" and side == "api" and (is_tree(path) or is_model_info(path)):
            return instead(answer, 503, [("Retry-After", "1e309")], b"busy")
        if n == "retry-after-negative" and side == "api" and is_tree(path):
            return instead(answer, 503, [("Retry-After", "-5")], b"busy")
        if n == "ratelimit-huge" and side == "api" and (is_tree(path) or is_model_info(path)):
            return Answer(429, [("RateLimit", '"api";r=0;t=999999999'),
                                ("RateLimit-Policy", '"fixed window";"api";q=1000;w=300')],
                          b'{"error":"rate limited"}')
        if n == "ratelimit-policy-q0" and side == "api":
            answer.set_header("RateLimit-Policy", '"fixed window";"api";q=0;w=300')
        if n in ("link-loop", "link-grow") and side == "api" and is_tree(path):
            again = path if n == "link-loop" else path + "&again=%d" % self.count("grow")
            answer.set_header("Link", '<%s%s>; rel="next"' % (self.endpoint, again))
        if n == "link-quadratic" and side == "api" and is_tree(path):
            answer.set_header("Link", "<" * 100000)
        if n.startswith("substitute-") and side == "api" and is_resolve(path) and \
                answer.status in (301, 302, 303, 307, 308):
            etag = answer.header("X-Linked-Etag")
            if n == "substitute-upper" and etag:
                answer.set_header("X-Linked-Etag", etag.upper())
            elif n == "substitute-40hex":
                answer.set_header("X-Linked-Etag", '"%s"' % ("ab" * 20))
            elif n == "substitute-none":
                answer.set_header("X-Linked-Etag", None)
        if n.startswith("substitute-") and side == "cdn" and answer.status in (200, 206):
            answer.body = bytes(reversed(answer.body)) if len(set(answer.body)) > 1 else \
                bytes((b + 1) % 256 for b in answer.body)
        if n == "token-echo" and side == "api" and is_resolve(path) and token:
            return Answer(404, [("X-Error-Code", "EntryNotFound"),
                                ("X-Error-Message", "Entry not found for token %s" % token)],
                          ("no such file (you sent %s)" % token).encode())
        if n == "big-tree" and side == "api" and is_tree(path) and answer.status == 200:
            # Just under the tree's 8 MiB cap: real entries plus padding that is
            # no target file, for every repo at once.
            entries = json.loads(answer.body)
            pad = {"type": "file", "oid": "0" * 40, "size": 1}
            n_pad = (7 << 20) // 100
            entries += [dict(pad, path="pad/%s/%07d.txt" % (self.count("big"), i)) for i in range(n_pad)]
            answer.body = json.dumps(entries).encode()
        if n == "bad-repo-id" and side == "api" and is_listing(path) and answer.status == 200:
            models = json.loads(answer.body)
            if models:
                bad = dict(models[0], id="org/bad\r\nid", modelId="org/bad\r\nid")
                models.insert(0, bad)
                answer.body = json.dumps(models).encode()
        return answer


class Proxy:
    def __init__(self, args):
        self.upstream = {"api": urlsplit(args.upstream), "cdn": urlsplit(args.upstream_cdn)}
        self.scenario = Scenario(args.scenario, True)
        self.public = {}   # side -> http://127.0.0.1:port once bound

    def rewrite_urls(self, value):
        """Upstream's URLs in a header made to point at this proxy's sides."""
        for side, up in self.upstream.items():
            value = value.replace("%s://%s" % (up.scheme, up.netloc), self.public[side])
        return value

    def forward(self, side, method, path, headers, body):
        up = self.upstream[side]
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        sent["Host"] = up.netloc
        conn.request(method, path, body=body, headers=sent)
        r = conn.getresponse()
        data = r.read()
        answer = Answer(r.status, [(k, v) for k, v in r.getheaders()
                                   if k.lower() not in ("transfer-encoding", "connection",
                                                        "content-length", "keep-alive")], data)
        conn.close()
        for name in ("Location", "Link"):
            value = answer.header(name)
            if value:
                answer.set_header(name, self.rewrite_urls(value))
        return answer


def make_handler(proxy, side):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            scenario = proxy.scenario
            if scenario.take_over(self, side):
                self.close_connection = True
                return
            auth = self.headers.get("Authorization") or ""
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            answer = proxy.forward(side, self.command, self.path, dict(self.headers.items()), body)
            answer = scenario.change(self.command, self.path, side, answer, token)
            self.send_response(answer.status)
            for k, v in answer.headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_POST = do_HEAD = handle_any
    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--upstream-cdn", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--ready-file", required=True)
    args = p.parse_args()
    proxy = Proxy(args)
    servers = {}
    for side in ("api", "cdn"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(proxy, side))
        server.daemon_threads = True
        servers[side] = server
        proxy.public[side] = "http://127.0.0.1:%d" % server.server_address[1]
    proxy.scenario.endpoint = proxy.public["api"]
    threading.Thread(target=servers["cdn"].serve_forever, daemon=True).start()
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"endpoint": proxy.public["api"], "cdn": proxy.public["cdn"]}, f)
    os.rename(tmp, args.ready_file)
    try:
        servers["api"].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
