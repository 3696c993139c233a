"""`hfscan serve` (issue 17): every endpoint against `hfscan lookup --json` on
the same database, bulk lookups, bad input (malformed, too many, too large,
slow), concurrent clients, a newer database served while clients run, SIGHUP,
and the drain at SIGTERM."""
import http.client
import json
import os
import select
import signal
import socket
import threading
import time

from hubfixture import read_csv, run_hfscan, start_hfscan
from test_database import WorldCase
from test_security import with_verdicts

UNKNOWN = "ab" * 32
MAX_HASHES = 10000  # hfscan.commands.serve.MAX_HASHES
BODY_LIMIT = 1024 * 1024  # hfscan.commands.serve.BODY_LIMIT
ENDPOINTS = ["/lookup/sha256/{sha256}", "/bulk/sha256", "/repo/{repo}", "/info", "/flagged",
             "/openapi.json"]


class Server:
    """hfscan serve on a free port of 127.0.0.1, its port read from its first line."""

    def __init__(self, output, *args, env=None):
        self.proc = start_hfscan(["serve", "--output-dir", output, "--listen", "127.0.0.1:0"]
                                 + list(args), env=env, stdout=-1, stderr=-1)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise AssertionError("serve did not start: %r %r" % (line, self.proc.stderr.read()))
        self.port = int(line.rsplit(":", 1)[1])

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, path, conn=None):
        """(status, decoded JSON body, headers) of a GET."""
        return self.request("GET", path, conn=conn)

    def request(self, method, path, body=None, conn=None, headers=None):
        own = conn is None
        conn = conn or self.connection()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        if own:
            conn.close()
        return r.status, json.loads(data), dict(r.getheaders())

    def bulk(self, hashes, conn=None):
        return self.request("POST", "/bulk/sha256", json.dumps({"hashes": hashes}), conn=conn,
                            headers={"Content-Type": "application/json"})

    def generation(self):
        return self.get("/info")[1]["generation"]

    def stop(self):
        """SIGTERM; returns (exit status, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err.decode()


def read_to_end(sock):
    """What the server sends until it closes the connection."""
    reply = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            sock.close()
            return reply
        reply += chunk


def hold_body(port, body, sent):
    """A bulk lookup whose first `sent` bytes of body have been sent, after the
    server had its headers (it said 100 Continue): the socket, to go on with."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /bulk/sha256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(body[:sent])
    return sock


def wait_for(condition, what, seconds=30):
    """Polls condition until it holds, failing after seconds (serve looks at its
    folder every second: there is no event to wait on from outside)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class ServeCase(WorldCase):
    def setUp(self):
        super().setUp()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.communicate()
        super().tearDown()

    def serve(self, output="out", *args, env=None):
        s = Server(os.path.join(self.dir, output), *args, env=env)
        self.servers.append(s)
        return s

    def flagged_world(self):
        return with_verdicts(self.world())

    def verdict_scan(self, world, name="flagged"):
        hub = self.hub_for(world, name)
        _, files = self.scan(hub, "--download-threshold", "0", "--security-status")
        return hub, files

    def lookup_json(self, hashes, *args):
        r = run_hfscan(["lookup", "--json", "--output-dir", os.path.join(self.dir, "out")]
                       + list(args) + list(hashes))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return json.loads(r.stdout)

    @staticmethod
    def known_hashes(files):
        _, _, rows = read_csv(files["extended"])
        return sorted({r["hash"] for r in rows if not r["hash"].startswith("FAILED")}), rows


class ServeEndpointsTest(ServeCase):
    def test_every_endpoint_answers_as_lookup_json_does(self):
        hub, files = self.verdict_scan(self.flagged_world())
        hashes, rows = self.known_hashes(files)
        expected = {r["hash"]: r for r in self.lookup_json(hashes)}
        server = self.serve()
        conn = server.connection()  # one keep-alive connection for all of them
        for h in hashes:
            status, body, headers = server.get("/lookup/sha256/" + h.upper(), conn)
            self.assertEqual(status, 200, h)
            self.assertEqual(headers["Content-Type"], "application/json")
            want = expected[h]
            self.assertEqual((body["hash"], body["known"], body["occurrences"]),
                             (h, True, want["occurrences"]))
            first = want["occurrences"][0]
            self.assertEqual((body["SHA-256"], body["FileName"], body["FileSize"], body["source"]),
                             (h.upper(), first["filename"], str(first["file_size"]), "hfscan"))
        # Some occurrences carry the Hub's verdicts: the comparison covered them.
        statuses = {o.get("security_status") for r in expected.values() for o in r["occurrences"]}
        self.assertTrue({"unsafe", "suspicious", "safe"} <= statuses, statuses)

        self.assertEqual(server.get("/lookup/sha256/" + UNKNOWN, conn)[:2],
                         (404, {"message": "Non existing SHA-256", "query": UNKNOWN}))
        self.assertEqual(self.lookup_json([UNKNOWN])[0]["known"], False)
        for bad in ("abc", "g" * 64, "a" * 65, ""):
            status, body, _ = server.get("/lookup/sha256/" + bad, conn)
            self.assertEqual((status, body["query"]), (400, bad), bad)
            self.assertIn("Malformed SHA-256", body["message"])

        # Bulk: one answer per hash, in order, each the single lookup's.
        asked = hashes + [UNKNOWN] + [hashes[0].upper()]
        status, answers, _ = server.bulk(asked, conn)
        self.assertEqual(status, 200)
        singles = [server.get("/lookup/sha256/" + h, conn)[1] for h in asked]
        self.assertEqual(answers, singles)

        # The repo's files at its latest commit: the CSV's rows of that repo.
        repo = "hfscan-test/mobile-misc"
        status, body, _ = server.get("/repo/" + repo, conn)
        self.assertEqual(status, 200)
        self.assertEqual(body["repo_id"], repo)
        self.assertEqual(sorted((f["filename"], f["hash"], f["commit_hash"], f.get("security_status"))
                                for f in body["files"]),
                         sorted((r["filename"], r["hash"], r["commit_hash"], r["security_status"])
                                for r in rows if r["repo_id"] == repo))
        self.assertEqual(server.get("/repo/nobody/nothing", conn)[:2],
                         (404, {"message": "Non existing repo", "query": "nobody/nothing"}))

        # /flagged is lookup --flagged --json; /info counts what the CSV holds.
        flagged = json.loads(run_hfscan(["lookup", "--flagged", "--json", "--output-dir",
                                         os.path.join(self.dir, "out")]).stdout)
        self.assertEqual(len(flagged), 2)
        self.assertEqual(server.get("/flagged", conn)[:2], (200, flagged))
        status, info, _ = server.get("/info", conn)
        ts = os.path.basename(files["extended"])[len("hf_model_hashes_extended_"):-len(".csv")]
        self.assertEqual({k: info[k] for k in ("rows", "repos", "scans", "latest_scan", "endpoint",
                                               "status", "security_status", "flagged", "generation")},
                         {"rows": len(rows), "repos": len({r["repo_id"] for r in rows}), "scans": 1,
                          "latest_scan": ts, "endpoint": hub.endpoint, "status": "completed",
                          "security_status": True, "flagged": 2, "generation": 1})

        status, doc, _ = server.get("/openapi.json", conn)
        self.assertEqual((status, sorted(doc["paths"])), (200, sorted(ENDPOINTS)))
        self.assertEqual(server.get("/nowhere", conn)[:2],
                         (404, {"message": "Unknown path (see /openapi.json)", "query": "/nowhere"}))
        status, body, headers = server.get("/bulk/sha256", conn)
        self.assertEqual((status, headers["Allow"]), (405, "POST"))
        conn.close()
        self.assertEqual(server.stop()[0], 0)

    def test_bad_bulk_bodies_get_a_json_4xx(self):
        self.verdict_scan(self.flagged_world())
        server = self.serve()
        cases = [
            (b"not json", 400, "not a JSON object"),
            (b'{"hashes": "abc"}', 400, '"hashes"'),
            (b'{"other": []}', 400, '"hashes"'),
            (json.dumps({"hashes": [UNKNOWN, "xyz"]}).encode(), 400, "hashes[1]"),
            (json.dumps({"hashes": [UNKNOWN] * (MAX_HASHES + 1)}).encode(), 400, "at most 10000"),
        ]
        for body, status, named in cases:
            got, answer, _ = server.request("POST", "/bulk/sha256", body)
            self.assertEqual(got, status, body[:40])
            self.assertIn(named, answer["message"] + " " + answer["query"], body[:40])
        # The limit itself is fine: 10,000 hashes.
        status, answers, _ = server.bulk([UNKNOWN] * MAX_HASHES)
        self.assertEqual((status, len(answers)), (200, MAX_HASHES))
        # A body over the limit: read to its end and refused, declared or in
        # chunks; refused unread when the client waits to be told to send it.
        big = b'{"hashes": [' + b" " * BODY_LIMIT + b"]}"
        status, answer, _ = server.request("POST", "/bulk/sha256", big)
        self.assertEqual((status, answer["query"]), (413, str(BODY_LIMIT)))
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(b"POST /bulk/sha256 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(big))
        self.assertTrue(read_to_end(sock).startswith(b"HTTP/1.1 413 "))
        conn = server.connection()
        conn.request("POST", "/bulk/sha256", body=iter([big[:1000], big[1000:]]),
                     encode_chunked=True)
        r = conn.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.read())["query"], str(BODY_LIMIT))
        conn.close()
        # A body sent to a path that takes none is read, and the path answers.
        status, answer, headers = server.request("POST", "/info", b"x" * 100000)
        self.assertEqual((status, headers["Allow"]), (405, "GET"))
        # The server is still whole.
        self.assertEqual(server.get("/lookup/sha256/" + UNKNOWN)[0], 404)
        self.assertEqual(server.stop()[0], 0)

    def test_answers_and_bodies_held_at_once_are_bounded(self):
        _, files = self.verdict_scan(self.flagged_world())
        hashes, _ = self.known_hashes(files)
        server = self.serve("out", "--client-timeout", "60",
                            env={"HFSCAN_TEST_SERVE_LIMITS": "5000:3000"})
        # Each answer is a few hundred bytes: one fits, twenty do not.
        self.assertGreaterEqual(len(hashes), 20)
        self.assertEqual(server.bulk(hashes[:1])[0], 200)
        status, answer, _ = server.bulk(hashes[:20])
        self.assertEqual((status, answer["query"]), (413, "5000"))
        self.assertIn("ask for fewer hashes", answer["message"])
        self.assertEqual(server.get("/lookup/sha256/" + hashes[0])[0], 200)
        # A client holding 2500 bytes of a body: another's 1000 more are refused
        # until the first has been answered.
        body = json.dumps({"hashes": [UNKNOWN] * 20}).encode()
        body = body[:-1] + b" " * (2800 - len(body)) + b"}"
        small = json.dumps({"hashes": [UNKNOWN] * 12}).encode()
        self.assertGreater(len(small), 500)
        refused, holder = [], []

        def second_client_refused():
            # Nothing tells from outside when the server has counted the held
            # bytes, and a second client's body arriving first would make the
            # held one the refused: each try starts a new holder.
            for sock in holder:
                sock.close()
            holder[:] = [hold_body(server.port, body, 2500)]
            status, answer, _ = server.request("POST", "/bulk/sha256", small)
            refused.append(answer)
            return status == 503

        wait_for(second_client_refused, "the first client's bytes to count")
        held = holder[0]
        self.assertIn("Too many bulk bodies", refused[-1]["message"])
        held.sendall(body[2500:])
        reply = read_to_end(held)
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:100])
        self.assertEqual(len(json.loads(reply.partition(b"\r\n\r\n")[2])), 20)
        self.assertEqual(server.request("POST", "/bulk/sha256", small)[0], 200)
        self.assertEqual(server.stop()[0], 0)

    def test_without_verdicts_there_is_no_flagged_list(self):
        hub = self.hub_for(self.world(), "plain")
        self.scan(hub, "--download-threshold", "0")
        server = self.serve()
        status, body, _ = server.get("/flagged")
        self.assertEqual(status, 404)
        self.assertIn("verdicts", body["message"])
        info = server.get("/info")[1]
        self.assertEqual((info["security_status"], "flagged" in info), (False, False))
        self.assertEqual(server.stop()[0], 0)

    def test_nothing_to_serve_or_no_address_exits_2(self):
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        r = run_hfscan(["serve", "--output-dir", empty, "--listen", "127.0.0.1:0"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no scan", r.stderr.lower())
        r = run_hfscan(["serve", "--output-dir", empty, "--listen", "localhost"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("HOST:PORT", r.stderr)
        self.verdict_scan(self.flagged_world())
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_hfscan(["serve", "--output-dir", os.path.join(self.dir, "out"),
                        "--listen", "127.0.0.1:%d" % port])
        taken.close()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1 port %d" % port, r.stderr)


class ServeUnderLoadTest(ServeCase):
    def test_concurrent_clients_see_no_failure_while_the_database_is_replaced(self):
        world = self.flagged_world()
        hub, files = self.verdict_scan(world)
        hashes, _ = self.known_hashes(files)
        server = self.serve()
        answers = {h: server.get("/lookup/sha256/" + h)[1]["occurrences"] for h in hashes}
        failures, counts, stop = [], [0] * 6, threading.Event()

        def client(i):
            conn = server.connection()
            n = 0
            while not stop.is_set():
                h = hashes[(i + n) % len(hashes)]
                try:
                    if n % 5 == 4:
                        status, body, _ = server.bulk([h, UNKNOWN], conn)
                        ok = status == 200 and body[1]["query"] == UNKNOWN and body[0]["hash"] == h
                    else:
                        status, body, _ = server.get("/lookup/sha256/" + h, conn)
                        # A file of the first scan is found in every database served.
                        ok = status == 200 and answers[h][0] in body["occurrences"]
                    if not ok:
                        failures.append((status, body))
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    failures.append(repr(e))
                    conn.close()
                    conn = server.connection()
                n += 1
                counts[i] = n
            conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(counts))]
        for t in threads:
            t.start()
        # A second scan of a changed Hub in the same folder (the database
        # updated in place), then the database rebuilt and renamed over it.
        changed = self.changed_world(world)
        hub = self.hub_for(changed, "changed", replacing=hub)
        self.scan(hub, "--download-threshold", "0", "--security-status")
        wait_for(lambda: server.get("/info")[1]["scans"] == 2, "the second scan to be served")
        before = server.generation()
        r = run_hfscan(["db", "build", "--output-dir", os.path.join(self.dir, "out")])
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: server.generation() > before, "the rebuilt database to be served")
        done = list(counts)
        wait_for(lambda: all(c > d + 10 for c, d in zip(counts, done)), "more requests after it")
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(failures, [])
        self.assertTrue(all(c > 20 for c in counts), counts)
        # The new scan's files are served: a hash only the changed Hub has.
        new_hashes, _ = self.known_hashes(
            {"extended": sorted(f for f in self.output_files() if "extended" in f)[-1]})
        fresh = sorted(set(new_hashes) - set(hashes))
        self.assertTrue(fresh)
        status, body, _ = server.get("/lookup/sha256/" + fresh[0])
        self.assertEqual((status, body["occurrences"]), (200, self.lookup_json([fresh[0]])[0]["occurrences"]))
        self.assertEqual(server.get("/info")[1]["scans"], 2)
        self.assertEqual(server.stop()[0], 0)

    def output_files(self):
        out = os.path.join(self.dir, "out")
        return [os.path.join(out, n) for n in os.listdir(out)]

    def test_sighup_reopens_and_sigterm_drains_the_request_in_flight(self):
        _, files = self.verdict_scan(self.flagged_world())
        hashes, _ = self.known_hashes(files)
        server = self.serve()
        self.assertEqual(server.generation(), 1)
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: server.generation() == 2, "SIGHUP's reopen")
        # A bulk lookup whose body is half sent when SIGTERM comes: the server
        # has its headers (it said 100 Continue), so it is in flight.
        body = json.dumps({"hashes": hashes[:3]}).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(b"POST /bulk/sha256 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        self.assertTrue(sock.recv(100).startswith(b"HTTP/1.1 100 Continue"))
        sock.sendall(body[:10])
        server.proc.send_signal(signal.SIGTERM)
        sock.sendall(body[10:])
        reply = read_to_end(sock)
        head, _, payload = reply.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertIn(b"Connection: close", head)
        self.assertEqual([a["hash"] for a in json.loads(payload)], hashes[:3])
        status, err = server.stop()
        self.assertEqual(status, 0, err)

    def test_a_silent_client_is_cut_off_and_others_are_served(self):
        self.verdict_scan(self.flagged_world())
        server = self.serve("out", "--client-timeout", "1")
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        silent.sendall(b"GET /lookup/sha256/" + UNKNOWN.encode())  # and never the rest
        slow_body = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        slow_body.sendall(b"POST /bulk/sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        self.assertEqual(server.get("/lookup/sha256/" + UNKNOWN)[0], 404)
        started = time.monotonic()
        self.assertEqual(silent.recv(100), b"")  # closed by the server, not by our timeout
        self.assertEqual(slow_body.recv(100), b"")
        self.assertLess(time.monotonic() - started, 20)
        silent.close()
        slow_body.close()
        self.assertEqual(server.get("/info")[0], 200)
        self.assertEqual(server.stop()[0], 0)


