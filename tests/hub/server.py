"""HTTP plumbing: two threaded HTTP/1.1 servers (API and CDN) sharing one Hub.

Every API-side request goes through the same pipeline: latency fault, rate
limit, 5xx fault, routing, then the RateLimit headers are added whatever the
outcome (hub-api.md section 8), and X-HF-Warning for callers without a valid
token (section 12), and the request is logged.
"""
import hashlib
import json
import socket
import socketserver
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import access
import api
import errors
import files
import routes
import signing
import world as world_module
from response import Response, html_response, json_response, text_response

HANDLERS = dict(api.HANDLERS, **{"resolve": files.resolve, "raw": files.raw,
                                 "resolve-cache": files.resolve_cache})
TEXT_ERROR_ROUTES = ("resolve", "raw", "resolve-cache")


# --rotate-token-file: the token a refresh writes, with the access of the one it replaces.
ROTATED_FROM, ROTATED_TOKEN = "hf_testuser_granted", "hf_testuser_rotated"


class Hub:
    """Everything a request handler needs, shared by both servers."""

    def __init__(self, world, options, faults, limiter, instruments):
        self.world = world
        self.options = options
        self.faults = faults
        self.limiter = limiter
        self.instruments = instruments
        secret = hashlib.sha256(b"hfscan-test-hub-cdn\0%d" % options.seed).digest()
        self.signer = signing.Signer(secret, options.cdn_url_ttl, options.cdn_url_uses)
        self.endpoint = None        # http://host:port of the API, set once bound
        self.cdn_url = None
        self._token_uses = 0
        self._token_lock = threading.Lock()
        self._api_requests = 0
        self.api_server = None      # set once bound, for --vanish-after
        if options.rotate_token_file:
            # The token a refresh writes: testuser's, with the granted token's access.
            granted = world.tokens[ROTATED_FROM]
            world.tokens[ROTATED_TOKEN] = world_module.Token(ROTATED_TOKEN, granted.to_fixture())

    def token_revoked(self, token):
        """Counts a request carrying a valid token; True once more than
        --revoke-token-after of them were served (a token revoked mid-scan).
        With --rotate-token-file the new token is written there at that moment,
        and is never revoked."""
        limit = self.options.revoke_token_after
        if not limit or token.value == ROTATED_TOKEN:
            return False
        with self._token_lock:
            self._token_uses += 1
            revoked = self._token_uses > limit
            if revoked and self._token_uses == limit + 1 and self.options.rotate_token_file:
                with open(self.options.rotate_token_file, "w") as handle:
                    handle.write(ROTATED_TOKEN + "\n")
            return revoked

    def vanishing(self):
        """True once --vanish-after N API requests were served: from then on the
        API host answers nothing, and its port is closed (a Hub that is gone)."""
        limit = self.options.vanish_after
        if not limit:
            return False
        with self._token_lock:
            self._api_requests += 1
            if self._api_requests == limit + 1:
                threading.Thread(target=self._close_api_port, daemon=True).start()
            return self._api_requests > limit

    def _close_api_port(self):
        self.api_server.shutdown()
        self.api_server.server_close()


class Server(ThreadingHTTPServer):
    daemon_threads = True           # keep-alive connections must not block exit
    request_queue_size = 128

    def __init__(self, address, hub, role):
        self.hub = hub
        self.role = role
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup; not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hfscan-test-hub"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are separate writes

    def do_GET(self):
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.hub.options.verbose:
            sys.stderr.write("hub: %s\n" % (fmt % args))

    # ---------------------------------------------------------------- flow

    def _serve(self):
        hub = self.server.hub
        body = self._read_body()
        if self.server.role == "api" and self.path.startswith("/_hub/"):
            self._send(self._control(hub, body))
            return
        if self.server.role == "api" and hub.vanishing():
            self.close_connection = True    # no answer at all
            return
        auth = access.authenticate(hub.world, self.headers.get("Authorization"))
        if auth.token is not None and hub.token_revoked(auth.token):
            auth = access.Auth(True)  # the token now answers like an unknown one
        host = self.headers.get("Host") or hub.endpoint.split("//", 1)[1]
        req = routes.Request(self.command, self.path, self.headers, body, auth,
                             self.client_address[0], "http://" + host)
        if self.server.role == "cdn":
            bucket = None
            hub.instruments.count_request(None)
            if auth.sent:
                hub.instruments.bump("cdn_requests_with_authorization")
            response = files.cdn(hub, req)
        else:
            bucket, response = self._api_side(hub, req)
        # Logged before the answer goes out: a client that has its answer finds
        # the request in the log, even if it is killed the next instant.
        hub.instruments.record(self.command, self.path, self.server.role, host, auth.sent,
                               response.status, bucket, self.headers.get("Range"))
        self._send(response)

    def _api_side(self, hub, req):
        bucket = routes.bucket_of(req.path, hub.options.resolve_cache_bucket)
        hub.faults.delay()
        decision = hub.limiter.take(bucket, access.caller_key(req.auth, req.client))
        hub.instruments.count_request(bucket, decision)
        ratelimit_headers = not hub.options.no_ratelimit_headers
        if not decision.allowed and hub.faults.html_429():
            hub.instruments.bump("html_429s")
            response = html_response(429, HTML_429)
            ratelimit_headers = False      # it comes from in front of the Hub
        elif not decision.allowed:
            response = _too_many(decision, hub.options.retry_after, req)
        else:
            status = hub.faults.api_error() if bucket == "api" else None
            if status:
                hub.instruments.bump("api_faults_injected")
                response = errors.server_error(status).to_response(True)
            elif bucket == "api" and hub.faults.refused_by_other_quota():
                hub.instruments.bump("other_quota_429s")
                response = json_response(429, {"error": OTHER_QUOTA_MESSAGE})
            else:
                response = self._dispatch(hub, req)
        if ratelimit_headers:
            response.headers += decision.headers()
        if req.auth.token is None and not hub.options.no_hf_warning:
            response.headers.append(("x-hf-warning", HF_WARNING))
        return bucket, response

    def _dispatch(self, hub, req):
        route = routes.parse(hub.world, req.path)
        as_json = route.name not in TEXT_ERROR_ROUTES
        try:
            handler = HANDLERS.get(route.name)
            if handler is None:
                raise errors.not_found()
            allowed = api.METHODS.get(route.name, ("GET", "HEAD"))
            if req.method not in allowed:
                raise errors.HubError(405, "Method not allowed")
            return handler(hub, req, route)
        except errors.Redirect as moved:
            location = route.location(moved.canonical_id, req.query_string)
            return Response(307, [("location", location),
                                  ("content-type", "text/plain; charset=utf-8")],
                            b"Temporary Redirect. Redirecting to " + location.encode())
        except errors.HubError as err:
            return err.to_response(as_json)
        except Exception:  # a bug in the stand-in: say so loudly, keep serving
            traceback.print_exc()
            return errors.server_error(500).to_response(as_json)

    def _control(self, hub, body):
        """/_hub/: test hooks, never rate-limited nor logged."""
        path = self.path.split("?", 1)[0]
        if path == "/_hub/stats":
            return json_response(200, hub.instruments.snapshot())
        if path == "/_hub/reset-stats" and self.command == "POST":
            hub.instruments.reset()
            return json_response(200, {"ok": True})
        if path == "/_hub/reset-ratelimits" and self.command == "POST":
            hub.limiter.reset()
            return json_response(200, {"ok": True})
        if path == "/_hub/truth":
            lines = [json.dumps(r, ensure_ascii=False) for r in hub.world.truth(hub.faults)]
            return text_response(200, "".join(line + "\n" for line in lines))
        if path == "/_hub/world":
            return json_response(200, hub.world.to_fixture())
        return text_response(404, "unknown test hook")

    # ------------------------------------------------------------------ I/O

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass                    # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response):
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.send_length or self.command != "HEAD":
            self.send_header("content-length", str(response.length))
        self.end_headers()
        if self.command == "HEAD":
            return
        hub = self.server.hub
        cut = (self.command == "GET" and response.cut_id is not None and response.length >= 2
               and hub.faults.should_cut(response.cut_id))
        limit = response.length // 2 if cut else response.length
        try:
            self._write_body(response, limit)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if cut:
            # Content-Length promised more: closing now is a truncated download.
            hub.instruments.bump("downloads_cut")
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _write_body(self, response, limit):
        sent = 0
        for chunk in response.chunks():
            if sent + len(chunk) > limit:
                chunk = chunk[:limit - sent]
            self.wfile.write(chunk)
            sent += len(chunk)
            if sent >= limit:
                break


# The body huggingface_hub's tests use for a 429 of another quota (hub-api.md section 8).
OTHER_QUOTA_MESSAGE = "You have exceeded the rate limit for repository creation (300 per day)."


# hub-api.md section 12: what anonymous answers carry (the wording is ours).
HF_WARNING = ("unauthenticated; Authenticate with a token to get higher rate limits and "
              "access to gated and private repos")
HTML_429 = "<html><body><h1>429 Too Many Requests</h1></body></html>"


def _too_many(decision, retry_after, req):
    """A window-exhaustion 429 as the Hub words it (hub-api.md section 12)."""
    headers = [("retry-after", str(decision.reset))] if retry_after else []
    if req.auth.token is not None:
        message = ("We had to rate limit you, you hit the quota of %d %s requests per %s "
                   "period. Upgrade to a PRO account for higher limits."
                   % (decision.quota, decision.bucket, _period(decision.window)))
    else:
        message = ("We had to rate limit your IP (%s). To continue using our service, create "
                   "a HF account or login to your existing account, and note that you have a "
                   "higher rate limit when logged in." % req.client)
    return json_response(429, {"error": message}, headers)


def _period(window):
    """300 -> "5 minutes"; a window that is not whole minutes stays in seconds."""
    count, unit = (window // 60, "minute") if window % 60 == 0 else (window, "second")
    return "%d %s%s" % (count, unit, "" if count == 1 else "s")
