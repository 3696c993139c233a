"""The default scan against the Hub stand-in: exact rows, methods, errors,
files, requests, tokens and faults."""
import collections
import csv
import json
import os
import signal
import subprocess
import time

from hubfixture import (EXTENDED, GRANTED, NOT_GRANTED, ScanCase, download_url, file_key,
                        is_target, read_csv, run_hfscan, run_in_terminal, scan_files,
                        start_hfscan)

MODELS = "16"


def expected_rows(truth, endpoint, threshold=1, token=None, git_mismatch=(), max_size=None):
    """What a correct scan of the stand-in's world writes, with the errors it
    must report: {(repo, path): row} and {(repo, path): error_type}."""
    rows, errors = {}, {}
    for f in truth:
        if f["downloads"] < threshold:
            continue
        if f["private"] and token != GRANTED:
            continue
        if f["disabled"]:
            # No endpoint lists a disabled repo's files: one error for the repo.
            errors[(f["repo_id"], "")] = "repository_disabled"
            continue
        if not is_target(f["path"]):
            continue
        key = file_key(f)
        row = {"filename": key[1], "repo_id": f["repo_id"], "file_size": str(f["size"]),
               "file_type": f["path"].rsplit(".", 1)[1].lower(), "commit_hash": f["commit"],
               "download_url": download_url(endpoint, f["repo_id"], f["commit"], f["path"])}
        if f["storage"] in ("lfs", "xet"):
            row.update(hash=f["sha256"], hash_method="api_metadata")
        elif max_size is not None and f["size"] > max_size:
            # The listed size is checked before any request is made.
            row.update(hash="FAILED_TOO_LARGE", hash_method="FAILED_TOO_LARGE")
            errors[key] = "file_too_large"
        elif f.get("region_blocked"):
            # Files refused from here; their LFS hashes still came from the metadata.
            row.update(hash="FAILED_NO_HASH", hash_method="FAILED_NO_HASH")
            errors[key] = "region_blocked"
        elif f["gated"] and token != GRANTED:
            row.update(hash="FAILED_NO_HASH", hash_method="FAILED_NO_HASH")
            errors[key] = "gated_repository"
        elif f["repo_id"] in git_mismatch and f["size"] > 0:  # an empty file has no byte to alter
            row.update(hash="FAILED_NO_HASH", hash_method="FAILED_NO_HASH")
            errors[key] = "hash_mismatch"
        else:
            row.update(hash=f["sha256"], hash_method="downloaded")
        rows[key] = row
    return rows, errors


class ScanTestBase(ScanCase):
    def restart_on_a_healthy_hub(self, hub, files, *hub_args, truth=None, token=None):
        """Stops hub, starts a healthy one (hub_args) on its port, resumes the scan
        of files there and checks every row. Returns the healthy hub."""
        port = hub.endpoint.rsplit(":", 1)[1]
        truth = truth or hub.truth()
        hub.stop()
        healthy = self.start_hub(*hub_args, "--port", port)
        out = os.path.dirname(files["extended"])
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"]
                       + (["--token", token] if token else []))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assert_rows(scan_files(out), truth, healthy.endpoint, token=token)
        return healthy

    def assert_rows(self, files, truth, endpoint, **kw):
        want_rows, want_errors = expected_rows(truth, endpoint, **kw)
        _, header, rows = read_csv(files["extended"])
        self.assertEqual(header, EXTENDED)
        keys = [(r["repo_id"], r["filename"]) for r in rows]
        dupes = [k for k, n in collections.Counter(keys).items() if n > 1]
        self.assertEqual(dupes, [], "every file exactly once")
        self.assertEqual(set(keys), set(want_rows), "the set of files")
        for r in rows:
            want = want_rows[(r["repo_id"], r["filename"])]
            for column, value in want.items():
                self.assertEqual(r[column], value, f"{column} of {r['repo_id']}/{r['filename']}")
            self.assertRegex(r["last_modified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
        _, bheader, basic = read_csv(files["basic"])
        self.assertEqual(bheader, ["hash", "filename", "repo_id"])
        self.assertEqual(sorted((b["hash"], b["filename"], b["repo_id"]) for b in basic),
                         sorted((r["hash"], r["filename"], r["repo_id"]) for r in rows))
        _, eheader, errors = read_csv(files["errors"])
        self.assertEqual(eheader, ["repo_id", "filename", "error_type", "reason", "timestamp"])
        got_errors = {(e["repo_id"], e["filename"]): e["error_type"] for e in errors}
        self.assertEqual(got_errors, want_errors)
        self.assertEqual(len(errors), len(want_errors), "no duplicate error rows")
        return rows, errors


class DefaultScanTest(ScanTestBase):
    @classmethod
    def setUpClass(cls):
        pass

    def test_anonymous_scan_of_every_kind_of_file(self):
        hub = self.start_hub("--models", MODELS)
        truth = hub.truth()
        r, files = self.scan(hub, "--download-threshold", "1")
        rows, errors = self.assert_rows(files, truth, hub.endpoint)
        methods = collections.Counter(row["hash_method"] for row in rows)
        self.assertGreater(methods["api_metadata"], 10)
        self.assertGreater(methods["downloaded"], 5)
        # Non-weight files and private repos are absent.
        names = {row["filename"] for row in rows}
        self.assertNotIn("config.json", names)
        self.assertNotIn("README.md", names)
        self.assertFalse(any(row["repo_id"].startswith("testuser/") for row in rows))
        # Tricky names survive exactly, but a formula start, which gets its apostrophe.
        self.assertIn('quote"name.pth', names)
        self.assertIn("a,b,c.pt", names)
        self.assertIn("'=leading-equals.ptl", names)
        self.assertIn("ünïcødé-模型.safetensors", names)
        self.assert_one_api_request_per_repo(hub, rows)

    def assert_one_api_request_per_repo(self, hub, rows):
        per_repo = collections.Counter()
        listing = 0
        for req in hub.requests():
            if req["bucket"] != "api":
                continue
            path = req["path"].split("?")[0]
            if path == "/api/models":
                listing += 1
            else:
                per_repo[path.split("/revision/")[0].split("/tree/")[0]] += 1
        self.assertEqual(listing, 1, "one listing page for a small world")
        repos = {row["repo_id"] for row in rows}
        for repo in repos:
            self.assertEqual(per_repo[f"/api/models/{repo}"], 1, repo)
        self.assertTrue(all(n == 1 for n in per_repo.values()), per_repo)

    def test_threshold_and_limit(self):
        hub = self.start_hub("--models", MODELS)
        truth = hub.truth()
        by_repo = {}
        for f in truth:
            by_repo[f["repo_id"]] = f["downloads"]
        public = sorted((d, r) for r, d in by_repo.items()
                        if not any(f["private"] for f in truth if f["repo_id"] == r))
        threshold = public[len(public) // 2][0]  # about half the repos
        r, files = self.scan(hub, "--download-threshold", str(threshold))
        self.assert_rows(files, truth, hub.endpoint, threshold=threshold)
        r, files = self.scan(hub, "--download-threshold", "1", "--limit", "3", output="limited")
        _, _, rows = read_csv(files["extended"])
        top3 = [rid for d, rid in sorted(((d, rid) for rid, d in by_repo.items()
                                           if not any(f["private"] for f in truth if f["repo_id"] == rid)),
                                          reverse=True)[:3]]
        # The three most downloaded public repos, all with target files: every one, no other.
        self.assertEqual({row["repo_id"] for row in rows}, set(top3))
        meta = json.load(open(files["metadata"]))
        self.assertEqual(meta["total_models_scanned"], 3)

    def test_granted_token_reaches_gated_and_private_and_never_the_cdn(self):
        hub = self.start_hub("--models", MODELS)
        truth = hub.truth()
        r, files = self.scan(hub, "--download-threshold", "1", "--token", GRANTED)
        rows, _ = self.assert_rows(files, truth, hub.endpoint, token=GRANTED)
        self.assertTrue(any(row["repo_id"].startswith("testuser/") for row in rows))
        cdn = [q for q in hub.requests() if q["host"] == "cdn"]
        api = [q for q in hub.requests() if q["host"] == "api"]
        self.assertTrue(all(q["auth"] for q in api), "the token goes to the endpoint")
        self.assertTrue(all(not q["auth"] for q in cdn), "no Authorization reaches the CDN")
        self.assertEqual(hub.stats()["cdn_requests_with_authorization"], 0)
        self.assert_token_absent(files, r, GRANTED)
        comments, _, _ = read_csv(files["extended"])
        self.assertIn("# authenticated: true", comments)
        self.assertTrue(any("--token [TOKEN_MASKED]" in c for c in comments))

    def assert_token_absent(self, files, result, token):
        for path in files.values():
            with open(path, encoding="utf-8") as f:
                self.assertNotIn(token, f.read(), path)
        self.assertNotIn(token, result.stdout + result.stderr)

    def test_token_without_gated_access(self):
        hub = self.start_hub("--models", MODELS)
        truth = hub.truth()
        r, files = self.scan(hub, "--download-threshold", "1", "--token", NOT_GRANTED)
        _, errors = self.assert_rows(files, truth, hub.endpoint, token=NOT_GRANTED)
        reasons = [e["reason"] for e in errors if e["error_type"] == "gated_repository"]
        self.assertTrue(reasons and all(x.startswith("HTTP 403 GatedRepo") for x in reasons), reasons)

    def test_token_from_environment_and_token_file(self):
        hub = self.start_hub("--models", "10")
        truth = hub.truth()
        r, files = self.scan(hub, "--download-threshold", "1", env={"HF_TOKEN": GRANTED})
        self.assert_rows(files, truth, hub.endpoint, token=GRANTED)
        self.assert_token_absent(files, r, GRANTED)
        home = os.path.join(self.dir, "hfhome")
        os.makedirs(home)
        with open(os.path.join(home, "token"), "w") as f:
            f.write(GRANTED + "\n")
        r, files = self.scan(hub, "--download-threshold", "1", env={"HF_HOME": home}, output="o2")
        self.assert_rows(files, truth, hub.endpoint, token=GRANTED)

    def test_endpoint_from_environment(self):
        hub = self.start_hub("--models", "6")
        out = os.path.join(self.dir, "env-out")
        r = run_hfscan(["--output-dir", out, "--rate-limit", "0", "--quiet", "--download-threshold", "1"],
                       env={"HF_ENDPOINT": hub.endpoint})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_rows(scan_files(out), hub.truth(), hub.endpoint)

    def test_database_files_and_metadata(self):
        hub = self.start_hub("--models", "8")
        r, files = self.scan(hub, "--download-threshold", "1", "--max-workers", "3")
        ts = os.path.basename(files["extended"])[len("hf_model_hashes_extended_"):-4]
        self.assertRegex(ts, r"^\d{8}_\d{6}$")
        for kind, name in (("basic", "hf_model_hashes_basic_"), ("errors", "hf_scan_errors_")):
            self.assertEqual(os.path.basename(files[kind]), f"{name}{ts}.csv")
        self.assertEqual(os.path.basename(files["metadata"]), f"scan_metadata_{ts}.json")
        comments, _, rows = read_csv(files["extended"])
        keys = [c.split(":", 1)[0][2:] for c in comments]
        self.assertEqual(keys[0], "SCAN_PARAMETERS")
        self.assertEqual(keys[-1], "END_PARAMETERS")
        for key in ("download_threshold", "max_file_size_gb", "rate_limit_delay", "max_workers",
                    "scan_start", "target_extensions", "command_line", "authenticated",
                    "output_format"):
            self.assertIn(key, keys)
        self.assertIn("# max_workers: 3", comments)
        self.assertIn("# output_format: extended", comments)
        meta = json.load(open(files["metadata"]))
        for key in ("scan_timestamp", "download_threshold", "max_file_size_gb", "total_models_scanned",
                    "total_files_processed", "total_errors", "target_extensions", "rate_limit_delay",
                    "max_workers", "authenticated", "endpoint", "duration_seconds", "files_by_method",
                    "requests_by_bucket", "rate_limited_responses", "rate_limit_wait_seconds"):
            self.assertIn(key, meta)
        self.assertEqual(meta["scan_timestamp"], ts)
        self.assertEqual(meta["total_files_processed"], len(rows))
        self.assertEqual(sum(meta["files_by_method"].values()), len(rows))
        self.assertEqual(len(meta["target_extensions"]), 22)
        self.assertEqual(meta["status"], "completed")
        # Every time is UTC with Z, the file names' stamp included.
        start = [c.split(": ", 1)[1] for c in comments if c.startswith("# scan_start: ")][0]
        self.assertEqual(start, meta["scan_start"])
        self.assertRegex(start, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(ts, start[:4] + start[5:7] + start[8:10] + "_" + start[11:13]
                         + start[14:16] + start[17:19])
        api_requests = sum(1 for q in hub.requests() if q["bucket"] == "api")
        self.assertEqual(meta["requests_by_bucket"]["api"], api_requests)
        # pandas reads the files as the seed's users do, when it is installed.
        try:
            import pandas
        except ImportError:
            return
        frame = pandas.read_csv(files["extended"], comment="#", keep_default_na=False, dtype=str)
        self.assertEqual(sorted(frame["filename"]), sorted(row["filename"] for row in rows))

    def test_log_file_and_progress_only_on_a_terminal(self):
        hub = self.start_hub("--models", "6")
        out = os.path.join(self.dir, "o")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--download-threshold", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\r", r.stderr, "no progress bar in a pipe")
        self.assertIn("Scan completed", r.stdout)
        log = open(scan_files(out)["log"]).read()
        self.assertIn("hfscan-test/sharded-safetensors@", log)


class FaultsTest(ScanTestBase):
    def test_broken_blobs_falls_back_to_the_tree(self):
        hub = self.start_hub("--models", "8", "--broken-blobs", "hfscan-test/sharded-safetensors")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)

    def test_git_content_mismatch_is_an_error_never_a_hash(self):
        hub = self.start_hub("--models", "8", "--git-mismatch", "hfscan-test/plain-git-weights")
        # Mismatches are news: a scan that found them exits 3, not 0.
        r, files = self.scan(hub, "--download-threshold", "1", expect=3)
        _, errors = self.assert_rows(files, hub.truth(), hub.endpoint,
                                     git_mismatch={"hfscan-test/plain-git-weights"})
        mismatches = [e for e in errors if e["error_type"] == "hash_mismatch"]
        # The empty file is the same whatever is flipped; every other one differs.
        self.assertGreater(len(mismatches), 2)
        self.assertTrue(all("git blob id" in e["reason"] for e in mismatches))
        with open(files["metadata"]) as f:
            meta = json.load(f)
        self.assertEqual((meta["status"], meta["hash_mismatches"]), ("completed", len(mismatches)))
        self.assertEqual(meta["errors_by_type"]["hash_mismatch"], len(mismatches))
        self.assertIn("%d downloads differ from what the Hub claims" % len(mismatches), r.stderr)

    def test_fail_on_chooses_which_results_fail_a_completed_scan(self):
        hub = self.start_hub("--models", "8", "--git-mismatch", "hfscan-test/plain-git-weights")
        def scan(fail_on, expect, output):
            r, files = self.scan(hub, "--download-threshold", "1", "--no-token", "--fail-on", fail_on,
                                 output=output, expect=expect)
            return r
        scan("none", 0, "none")
        r = scan("failed,mismatch", 3, "both")  # mismatches first: they are the news
        self.assertRegex(r.stderr, r"\d+ downloads differ from what the Hub claims of them "
                         r"\(hash_mismatch\), and --fail-on names mismatch")
        # A restart of the completed scan still tells its news.
        both = os.path.join(self.dir, "both")
        r = run_hfscan(["--restart", "--output-dir", both, "--no-token"])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("is already completed; nothing to do", r.stderr)
        r = run_hfscan(["--restart", "--output-dir", both, "--no-token", "--fail-on", "none"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = scan("failed", 4, "failed")
        self.assertRegex(r.stderr, r"\d+ rows have no hash \(FAILED_\*\), and --fail-on names failed \(see .*\); exit 4")
        scan("errors", 4, "errors")
        clean = self.start_hub("--models", "8")
        r, files = self.scan(clean, "--download-threshold", "1", "--no-token", "--fail-on", "mismatch",
                             output="clean", expect=0)
        r = run_hfscan(["--fail-on", "mismatch,bogus", "--endpoint", hub.endpoint])
        self.assertEqual((r.returncode, r.stderr.splitlines()[0]),
                         (2, "hfscan: --fail-on: 'mismatch,bogus' is not mismatch, failed, errors "
                          "(comma-separated) or none"))

    def test_repo_that_cannot_be_listed_is_left_for_the_restart(self):
        """A repo whose tree and model info answer 500, and whose file names no
        listing gives (so paths-info has nothing to look up), cannot be listed:
        that is a fact about the Hub's day, not the repo. It gets an error row,
        is not marked finished, the scan exits 1 as incomplete, and a restart
        against a healthy Hub gives every row."""
        repo = "hfscan-test/sharded-safetensors"
        hub = self.start_hub("--models", "6", "--broken-blobs", repo, "--broken-tree", repo,
                             "--siblings-empty", repo)
        r, files = self.scan(hub, "--download-threshold", "1", "--retry-budget", "0", expect=1)
        self.assertIn("1 repos hit temporary failures (listed in the errors file) and are not "
                      "finished; redo them with: hfscan --restart --output-dir ", r.stderr)
        _, _, errors = read_csv(files["errors"])
        repo_errors = [(e["repo_id"], e["filename"], e["error_type"]) for e in errors]
        self.assertEqual(repo_errors, [(repo, "", "server_error")])
        _, _, rows = read_csv(files["extended"])
        self.assertFalse(any(row["repo_id"] == repo for row in rows))
        with open(files["metadata"]) as f:
            meta = json.load(f)
        self.assertEqual((meta["status"], meta["unfinished_repos"], meta["total_models_scanned"]),
                         ("incomplete", 1, 5))
        progress = files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
        with open(progress) as f:
            self.assertNotIn(repo, f.read())
        # The repo's error block lies among finished repos' blocks: each progress
        # line after it counts it, so a restart reads every row instead of cutting.
        with open(files["errors"], "rb") as f:
            errors_data = f.read()
        with open(progress, newline="") as f:
            lines = list(csv.reader(f))[1:]
        at = errors_data.index(repo.encode())
        for line in lines:
            self.assertEqual(line[5], "1" if int(line[2]) > at else "0", line)

        self.restart_on_a_healthy_hub(hub, files, "--models", "6")
        with open(progress, newline="") as f:
            lines = list(csv.reader(f))
        self.assertEqual(len(lines), 7, "every repo finished")
        self.assertEqual(lines[-1][2:], [str(os.path.getsize(files[k])) for k in ("errors", "basic", "extended")]
                         + ["0"], "the repair wrote the progress file again with the sizes")

    def test_cut_downloads_resume(self):
        hub = self.start_hub("--models", "8", "--cut-downloads")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)
        self.assertGreater(hub.stats()["downloads_cut"], 0)

    def test_transient_server_errors_are_retried(self):
        hub = self.start_hub("--models", "8", "--fault-rate", "0.15", "--fault-seed", "3")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)
        self.assertGreater(hub.stats()["api_faults_injected"], 0)

    def test_max_file_size_limits_only_downloads(self):
        hub = self.start_hub("--models", "8")
        truth = hub.truth()
        limit_bytes = 1500
        r, files = self.scan(hub, "--download-threshold", "1", "--max-file-size",
                             str(limit_bytes / (1024 ** 3)))
        rows, _ = self.assert_rows(files, truth, hub.endpoint, max_size=limit_bytes)
        big_lfs = [f for f in truth if f["storage"] != "git" and f["size"] > limit_bytes and is_target(f["path"])
                   and not f["private"]]
        self.assertTrue(big_lfs, "the world has LFS files over the limit")
        self.assertTrue(any(row["hash_method"] == "FAILED_TOO_LARGE" for row in rows))

    def test_listing_repeats_are_deduplicated(self):
        hub = self.start_hub("--models", "12", "--listing-repeat")
        # Pages of 3 make the listing repeat items often.
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)

    def test_rate_limit_window_is_respected(self):
        hub = self.start_hub("--models", "8", "--quota-api", "5", "--quota-resolvers", "20",
                             "--window", "1")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)
        stats = hub.stats()
        self.assertEqual(sum(stats["status_429"].values()) if isinstance(stats["status_429"], dict)
                         else stats["status_429"], 0, stats)
        # With the api window spent, some repos went through the resolvers bucket
        # alone: rows, and no tree request for them.
        _, _, rows = read_csv(files["extended"])
        listed = {q["path"].split("?")[0].split("/tree/")[0][len("/api/models/"):]
                  for q in hub.requests() if "/tree/" in q["path"]}
        self.assertTrue({r["repo_id"] for r in rows} - listed, "repos done through /resolve/")

    def test_a_token_revoked_mid_scan_stops_the_scan_and_a_restart_completes_it(self):
        hub = self.start_hub("--models", "10", "--revoke-token-after", "8")
        r, files = self.scan(hub, "--download-threshold", "1", "--token", GRANTED, expect=1)
        self.assertIn("the Hub refused the token (invalid credentials); the repos left are not "
                      "scanned", r.stderr)
        _, _, errors = read_csv(files["errors"])
        self.assertEqual([e for e in errors if e["error_type"] == "invalid_token"], [],
                         "no repo or file is recorded as failed for the token")
        with open(files["metadata"]) as f:
            self.assertEqual(json.load(f)["status"], "failed")

        self.restart_on_a_healthy_hub(hub, files, "--models", "10", token=GRANTED)

    def test_a_token_refused_in_the_pointer_tier_stops_the_scan_too(self):
        policy = os.path.join(self.dir, "pointers.lua")
        with open(policy, "w") as f:
            f.write('return { select_model = function(m) return m.id == "hfscan-test/xet-gguf" end,\n'
                    '  select_file = function(file) return file.lfs end,\n'
                    '  tiers = function() return { "lfs_pointer", "downloaded" } end }\n')
        hub = self.start_hub("--models", "10", "--revoke-token-after", "3")
        r, files = self.scan(hub, "--download-threshold", "1", "--token", GRANTED,
                             "--policy", policy, expect=1)
        self.assertIn("the Hub refused the token (invalid credentials)", r.stderr)
        _, _, errors = read_csv(files["errors"])
        self.assertEqual(errors, [], "no file is recorded as failed for the token")

    def test_429_from_another_quota_does_not_hold_the_bucket_for_the_window(self):
        """A 429 while RateLimit shows r>0 comes from another quota: it is retried
        after a short pause, not after the 300 s window's reset."""
        hub = self.start_hub("--models", "8", "--other-quota-429", "0.2", "--fault-seed", "5")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)
        self.assertGreater(hub.stats()["other_quota_429s"], 0)
        with open(files["metadata"]) as f:
            meta = json.load(f)
        self.assertGreater(meta["rate_limited_responses"], 0)
        self.assertLess(meta["rate_limit_wait_seconds"], 60, meta)

    def test_resolve_cache_hops_are_booked_in_the_api_bucket(self):
        """Regular files of public repos answer /resolve/ with a relative 307 to
        /api/resolve-cache/, an api request: each hop is paced in its own bucket,
        so the tight api window sees no 429."""
        hub = self.start_hub("--models", "12", "--quota-api", "6", "--quota-resolvers", "30",
                             "--window", "1", "--resolve-cache-307")
        r, files = self.scan(hub, "--download-threshold", "1")
        self.assert_rows(files, hub.truth(), hub.endpoint)
        stats = hub.stats()
        self.assertEqual(sum(stats["status_429"].values()), 0, stats)
        self.assertEqual(sum(stats["requests_into_exhausted_window"].values()), 0, stats)
        cache_hops = [q for q in hub.requests() if q["path"].startswith("/api/resolve-cache/")]
        self.assertTrue(cache_hops, "the 307s were followed")


class CommandLineTest(ScanCase):
    def test_usage_errors_name_the_flag_and_write_nothing(self):
        out = os.path.join(self.dir, "never")
        cases = [
            (["--download-threshold", "-5"],
             "--download-threshold: '-5' is not a whole number of downloads, 0 or more"),
            (["--download-threshold", "lots"],
             "--download-threshold: 'lots' is not a whole number of downloads, 0 or more"),
            (["--max-workers", "0"], "--max-workers: '0' is not a whole number from 1 to 256"),
            (["--rate-limit", "-1"], "--rate-limit: '-1' is not a number of seconds, 0 or more"),
            (["--max-file-size", "-2"], "--max-file-size: '-2' is not a number of GB above 0"),
            (["--limit=0"], "--limit: '0' is not a whole number of models, 1 or more"),
            (["--restart", "--restart-from", "x.csv"],
             "--restart and --restart-from cannot be used together"),
            (["--endpoint", "ftp://x"], "--endpoint: 'ftp://x' is not an http:// or https:// URL"),
            (["--max-workers"], "--max-workers needs N, not the option '--output-dir' "
             "(write --max-workers=VALUE for a value that starts with -)"),
            (["--token", "--quiet"], "--token needs TOKEN, not the option '--quiet' "
             "(write --token=VALUE for a value that starts with -)"),
            (["--bogus"], "unknown option '--bogus'"),
            (["--quiet=yes"], "--quiet takes no value"),
            (["stray"], "unexpected argument 'stray'"),
        ]
        for args, message in cases:
            r = run_hfscan(args + ["--output-dir", out])
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stderr, f"hfscan: {message}\nTry 'hfscan --help' for more information.\n")
            self.assertFalse(os.path.exists(out), args)
        r = run_hfscan(["--output-dir", out, "--limit"])
        self.assertEqual((r.returncode, r.stderr.splitlines()[0]), (2, "hfscan: --limit needs N"))
        afile = os.path.join(self.dir, "a-file")
        open(afile, "w").close()
        r = run_hfscan(["--output-dir", afile, "--endpoint", "http://127.0.0.1:1"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--output-dir", r.stderr)
        # A path that names nothing: one message shape, one status, for each flag.
        for flag in ("--since", "--restart-from"):
            r = run_hfscan([flag, "/missing.csv", "--output-dir", out, "--no-token"])
            self.assertEqual((r.returncode, r.stderr),
                             (2, f"hfscan: {flag}: /missing.csv: No such file or directory\n"))
        # A forgotten value is not the next flag: no folder named "--quiet".
        r = run_hfscan(["--output-dir", "--quiet"], cwd=self.dir)
        self.assertEqual(r.returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "--quiet")))

    def test_help_shows_the_flag_table(self):
        r = run_hfscan(["--help"])
        self.assertEqual(r.returncode, 0)
        for line in ("| `--download-threshold N` | 10000 |", "| `--output-dir DIR` | ./output |",
                     "| `--max-workers N` | 4 |", "| `--rate-limit S` | 1.5 |",
                     "| `--max-file-size GB` | 5.0 |", "| `--limit N` |", "| `--token TOKEN` |",
                     "| `--endpoint URL` | https://huggingface.co |"):
            self.assertIn(line, r.stdout)

    def test_ctrl_c_keeps_files_valid_and_exits_130(self):
        hub = self.start_hub("--models", "30", "--latency-ms", "40")
        out = os.path.join(self.dir, "o")
        proc = start_hfscan(["--endpoint", hub.endpoint, "--output-dir", out,
                             "--rate-limit", "0", "--download-threshold", "1", "--quiet",
                             "--max-workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        files = {}
        while time.time() < deadline:
            files = scan_files(out)
            if files["extended"] and len(open(files["extended"]).read().splitlines()) > 20:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 130, stderr)
        self.assertIn("hfscan --restart --output-dir", stderr)
        files = scan_files(out)
        meta = json.load(open(files["metadata"]))
        self.assertEqual(meta["status"], "interrupted")
        _, _, rows = read_csv(files["extended"])
        truth = {file_key(f): f for f in hub.truth()}
        for row in rows:
            if not row["hash"].startswith("FAILED"):
                self.assertEqual(row["hash"], truth[(row["repo_id"], row["filename"])]["sha256"])
        with open(files["extended"], "rb") as f:
            self.assertTrue(f.read().endswith(b"\r\n"), "no torn row")
        self.assertLess(meta["total_models_scanned"], 30)


class TerminalTest(ScanCase):
    """What a person at a terminal sees: the live progress line."""

    def test_progress_line_on_a_terminal(self):
        hub = self.start_hub("--models", "10", "--latency-ms", "20")
        out = os.path.join(self.dir, "tty")
        status, text = run_in_terminal(["--endpoint", hub.endpoint, "--output-dir", out,
                                        "--rate-limit", "0", "--download-threshold", "1"])
        self.assertEqual(status, 0)
        self.assertRegex(text, r"\r\x1b\[Kmodels \d+/\d+\+?  \d+\.\d/s  ETA [\d:?]+  "
                               r"files \d+ \(meta \d+, ptr \d+, dl \d+\)")
        self.assertIn("Scan completed", text)
        # The first line says as whom the scan runs.
        self.assertTrue(text.startswith(f"hfscan: scanning {hub.endpoint} anonymously (no token found)"),
                        text[:200])
        # Per-repo log lines go to the log file only, not over the live line.
        self.assertNotIn("INFO  hfscan-test/", text)
