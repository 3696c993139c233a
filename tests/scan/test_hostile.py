"""A broken or hostile Hub (issue 14): tests/hostile/proxy.py in front of the
stand-in misbehaves in one way per scenario. Each scan must end within a bound,
with a clear message, its peak memory under a cap, no token in any file, and no
substituted bytes recorded as a good hash."""
import csv
import glob
import json
import os
import subprocess
import sys
import time
import unittest

from hubfixture import (GRANTED, HFSCAN, SOURCE_DIR, ScanCase, file_key, hfscan_env, read_csv,
                        scan_files)

PROXY = os.path.join(SOURCE_DIR, "tests/hostile/proxy.py")
# Peak resident memory any scan may reach, whatever the server sends (issue 14).
RSS_CAP = 300 << 20
SANITIZED = os.environ.get("HFSCAN_SANITIZED", "").upper() in ("1", "ON", "TRUE", "YES")


class HostileProxy:
    def __init__(self, workdir, hub, scenario):
        self.ready = os.path.join(workdir, "proxy-%s.json" % scenario)
        self.proc = subprocess.Popen([sys.executable, PROXY, "--upstream", hub.endpoint,
                                      "--upstream-cdn", hub.cdn, "--scenario", scenario,
                                      "--ready-file", self.ready])
        deadline = time.time() + 30
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the hostile proxy did not start")
            time.sleep(0.02)
        with open(self.ready) as f:
            self.endpoint = json.load(f)["endpoint"]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class HostileCase(ScanCase):
    MODELS = "3"

    def setUp(self):
        super().setUp()
        self.hub = self.start_hub("--models", self.MODELS, "--window", "1")
        self.proxies = []

    def tearDown(self):
        for p in self.proxies:
            p.stop()
        super().tearDown()

    def hostile_scan(self, scenario, *args, token=None, bound=90):
        """Runs a scan through the proxy. Returns (exit status, stderr, seconds,
        peak RSS in bytes, the scan's files)."""
        proxy = HostileProxy(self.dir, self.hub, scenario)
        self.proxies.append(proxy)
        out = os.path.join(self.dir, "out-" + scenario)
        argv = [HFSCAN, "--endpoint", proxy.endpoint, "--output-dir", out, "--rate-limit", "0",
                "--quiet", "--download-threshold", "1", "--retry-budget", "2", "--yes"]
        argv += ["--token", token] if token else ["--no-token"]
        before, before_here = set(os.listdir(self.dir)), set(os.listdir("."))
        started = time.monotonic()
        err_path = os.path.join(self.dir, "stderr-" + scenario)
        with open(err_path, "w") as err:
            proc = subprocess.Popen(argv + list(args), env=hfscan_env(), stdout=subprocess.DEVNULL,
                                    stderr=err)
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except KeyboardInterrupt:
                proc.kill()
                raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        with open(err_path) as f:
            stderr = f.read()
        # Whatever the server sent, nothing was written outside the output folder.
        self.assertEqual(set(os.listdir(self.dir)) - before - {os.path.basename(out),
                                                               os.path.basename(err_path)}, set())
        self.assertEqual(set(os.listdir(".")) - before_here, set())
        self.assertLess(seconds, bound, "%s: the scan took %.0f s\n%s" % (scenario, seconds, stderr[-2000:]))
        # Every scenario, the memory ones included (sanitizers' shadow memory aside).
        if not SANITIZED:
            self.assertLess(usage.ru_maxrss * 1024, RSS_CAP, scenario)
        return proc.returncode, stderr, seconds, usage.ru_maxrss * 1024, scan_files(out)

    def rows(self, files):
        if not files["extended"]:
            return []
        return read_csv(files["extended"])[2]

    def errors(self, files):
        if not files["errors"]:
            return []
        return read_csv(files["errors"])[2]

    def truth_hashes(self):
        return {file_key(f): f["sha256"] for f in self.hub.truth()}


class ServerDictatedWaits(HostileCase):
    """Retry-After and RateLimit values no client should honour are clamped (to
    the bucket's window when it is known, else 15 minutes), so the scan ends."""

    def check(self, scenario, warning):
        status, stderr, _, _, files = self.hostile_scan(scenario)
        # The repos whose api answers are refused go by the resolvers route, or
        # are left for a restart: either way every row written is right.
        self.assertIn(status, (0, 1), stderr[-2000:])
        if status == 1:
            self.assertIn("--restart", stderr)
        truth = self.truth_hashes()
        for r in self.rows(files):
            if not r["hash"].startswith("FAILED"):
                self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])])
        with open(files["log"]) as f:
            log = f.read()
        # The scan asks another endpoint at once rather than wait on a 5xx, so
        # only the limiter's RateLimit values are waits it could have honoured.
        if warning:
            self.assertEqual(log.count("suspicious"), 1, log[-2000:])
            self.assertIn(warning, log)

    def test_huge_retry_after(self):
        self.check("retry-after-huge", None)

    def test_infinite_retry_after(self):
        self.check("retry-after-inf", None)

    def test_negative_retry_after(self):
        self.check("retry-after-negative", None)

    def test_huge_ratelimit_reset(self):
        self.check("ratelimit-huge", "t=999999999")

    def test_a_zero_quota_is_no_quota(self):
        self.check("ratelimit-policy-q0", "q=0")


class ScriptWaits(HostileCase):
    """The scripting client retries a 5xx (5 times): a Retry-After it cannot
    honour is cut to the bucket's window (1 s here), so the call ends."""

    def test_a_scripts_retries_wait_at_most_the_window(self):
        proxy = HostileProxy(self.dir, self.hub, "retry-after-huge")
        self.proxies.append(proxy)
        script = os.path.join(self.dir, "info.lua")
        with open(script, "w") as f:
            f.write('local hub = require("hfscan.hub.client").connect { endpoint = arg[1], token = false }\n'
                    'local info, err = hub.model_info(arg[2])\n'
                    'print(info and "info" or err.kind, err and err.status)\n')
        repo = self.hub.truth()[0]["repo_id"]
        started = time.monotonic()
        r = subprocess.run([HFSCAN, "--script", script, proxy.endpoint, repo], env=hfscan_env(),
                           capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
        self.assertEqual(r.stdout.split(), ["server_error", "503"], r.stderr)
        # Five waits of at most the 1 s window (a 999999999 s one each, uncut).
        self.assertLess(seconds, 5 * 1 + 20)


class Deadlines(HostileCase):
    """A tree page that drips, never answers, or whose error or redirect body
    never ends is given up within --stall-timeout (1 s here); the repo falls
    back to model info and every hash is right."""

    def check(self, scenario):
        status, stderr, seconds, _, files = self.hostile_scan(scenario, "--stall-timeout", "1",
                                                              bound=60)
        truth = self.truth_hashes()
        good = [r for r in self.rows(files) if not r["hash"].startswith("FAILED")]
        self.assertTrue(good, stderr[-2000:])
        for r in good:
            self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])])
        self.assertEqual(status, 0, stderr[-2000:])

    def test_a_dripping_body(self):
        self.check("drip-body")

    def test_a_server_that_never_answers(self):
        self.check("silent")

    def test_an_error_body_that_never_ends(self):
        self.check("endless-500")

    def test_a_redirect_body_of_a_terabyte(self):
        self.check("endless-302")


class Pagination(HostileCase):
    """A Link that points back, or to pages that add nothing, ends the tree."""

    def check_tree_fallback(self, scenario):
        status, stderr, _, _, files = self.hostile_scan(scenario)
        # The tree's loop is a bad answer: the repo falls back to model info and
        # still gets every file with its right hash.
        truth = self.truth_hashes()
        rows = self.rows(files)
        good = [r for r in rows if not r["hash"].startswith("FAILED")]
        self.assertTrue(good, stderr[-2000:])
        for r in good:
            self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])])
        return status, stderr

    def test_link_back_to_the_same_page(self):
        self.check_tree_fallback("link-loop")

    def test_link_to_pages_that_add_nothing(self):
        self.check_tree_fallback("link-grow")

    def test_a_quadratic_link_header_is_parsed_in_linear_time(self):
        status, stderr, seconds, _, files = self.hostile_scan("link-quadratic", bound=60)
        self.assertEqual(status, 0, stderr[-2000:])


class Amplification(HostileCase):
    def test_a_250_mb_model_info_and_tree_cost_neither_memory_nor_rows(self):
        status, stderr, _, rss, files = self.hostile_scan("huge-json")
        # Both answers are refused at their caps; paths-info still lists the
        # files, and every hash is right.
        truth = self.truth_hashes()
        good = [r for r in self.rows(files) if not r["hash"].startswith("FAILED")]
        self.assertTrue(good, stderr[-2000:])
        for r in good:
            self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])])


class BigTrees(HostileCase):
    """Trees just under their cap (7 MB of files no scan wants) for 16 repos, 8 at
    a time: kept page by page only for the files wanted, they cost no memory (463
    MB of peak RSS when whole trees were kept)."""
    MODELS = "16"

    def test_trees_of_unwanted_files_are_not_kept(self):
        status, stderr, _, rss, files = self.hostile_scan("big-tree", "--max-workers", "8")
        self.assertEqual(status, 0, stderr[-2000:])
        truth = self.truth_hashes()
        good = [r for r in self.rows(files) if not r["hash"].startswith("FAILED")]
        self.assertTrue(good)
        for r in good:
            self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])])


class Substitution(HostileCase):
    """Bytes of the right size but the wrong content are never a good hash,
    whatever the X-Linked-Etag says (upper case, a 40-hex id, or nothing)."""
    MODELS = "6"

    def check(self, scenario):
        policy = os.path.join(self.dir, "download-only.lua")
        with open(policy, "w") as f:
            f.write('return { tiers = function() return { "downloaded" } end }\n')
        status, stderr, _, _, files = self.hostile_scan(scenario, "--policy", policy)
        truth = self.truth_hashes()
        rows = self.rows(files)
        downloaded = [r for r in rows if r["hash_method"] == "downloaded"]
        for r in downloaded:
            self.assertEqual(r["hash"], truth[(r["repo_id"], r["filename"])],
                             "%s: substituted bytes recorded as good" % scenario)
        kinds = {e["error_type"] for e in self.errors(files)}
        self.assertTrue(kinds & {"hash_mismatch", "unverifiable"}, (scenario, kinds))
        return kinds

    def test_upper_case_etag(self):
        self.assertIn("hash_mismatch", self.check("substitute-upper"))

    def test_forty_hex_etag(self):
        self.check("substitute-40hex")

    def test_no_etag(self):
        self.check("substitute-none")


class EchoedToken(HostileCase):
    def test_a_token_echoed_by_the_server_is_masked_in_every_file(self):
        status, stderr, _, _, files = self.hostile_scan("token-echo", token=GRANTED)
        self.assertNotIn(GRANTED, stderr)
        out = os.path.dirname(files["metadata"])
        reasons = " ".join(e["reason"] for e in self.errors(files))
        self.assertIn("[TOKEN_MASKED]", reasons)
        for path in glob.glob(os.path.join(out, "*")):
            with open(path, "rb") as f:
                self.assertNotIn(GRANTED.encode(), f.read(), path)


class MalformedRepoId(HostileCase):
    def test_a_repo_id_outside_the_hubs_character_set_is_a_permanent_named_error(self):
        status, stderr, _, _, files = self.hostile_scan("bad-repo-id")
        errors = [e for e in self.errors(files) if "\n" in e["repo_id"] or "\r" in e["repo_id"]]
        self.assertEqual([e["error_type"] for e in errors], ["invalid_repo_id"])
        # Permanent: the repo is finished (a restart does not redo it for ever),
        # and it cost no request.
        progress = glob.glob(os.path.join(os.path.dirname(files["metadata"]), "*progress*"))
        self.assertEqual(len(progress), 1)
        with open(progress[0], newline="") as f:
            finished = [row[0] for row in csv.reader(f)]
        self.assertIn("org/bad\r\nid", finished)
        self.assertEqual([r for r in self.hub.requests() if "bad" in r.get("path", "")], [])


if __name__ == "__main__":
    unittest.main()
