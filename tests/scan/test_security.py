"""--security-status: the Hub's own verdict of each file (issue 17), recorded
from the stand-in's securityFileStatus, kept by restarts, updates and merges,
and shown by lookup, verify and diff."""
import collections
import json
import os
import sqlite3

from hubfixture import EXTENDED, GRANTED, name_text, read_csv, run_hfscan, scan_files
from test_database import WorldCase, fetch
from test_hub_failures import api_requests_by_repo, query_of

SECURITY = ["security_status", "av_virus", "pickle_safety", "pickle_imports"]
FLAGGED = ("unsafe", "suspicious", "caution")
SAFETY = ("innocuous", "suspicious", "dangerous")

# Verdicts given to files of the generated world: (repo, path) -> fixture spec.
VERDICTS = {
    ("hfscan-test/mobile-misc", "shared/weights.pkl"): {
        "virus": "Pickle.Malware.SysAccess.sys.STACK_GLOBAL",
        "imports": [["builtins", "exec", "dangerous"], ["collections", "OrderedDict", "innocuous"]]},
    ("hfscan-test/nested-folders", "a/b/c/d/deep.pt"): {
        "imports": [["numpy.core.multiarray", "_reconstruct", "suspicious"]]},
    ("hfscan-test/nested-folders", "onnx/model.onnx"): {"status": "unscanned"},
}


def with_verdicts(world):
    """world, its files of VERDICTS given those verdicts."""
    for repo in world["repos"]:
        for f in repo["files"]:
            spec = VERDICTS.get((repo["id"], f["path"]))
            if spec:
                f["security"] = spec
    return world


def expected_columns(security):
    """The four columns for a truth record's securityFileStatus, worked out
    here from the shape the stand-in documents (not by hfscan's code)."""
    av = security["avScan"]
    virus = av.get("message", av["status"]) if av["status"] in FLAGGED else ""
    imports = security["pickleImportScan"].get("pickleImports", [])
    worst = max((SAFETY.index(i["safety"]) for i in imports), default=None)
    return {"security_status": security["status"], "av_virus": virus,
            "pickle_safety": SAFETY[worst] if worst is not None else "",
            "pickle_imports": ";".join("%s.%s:%s" % (i["module"], i["name"], i["safety"])
                                       for i in imports)}


class SecurityStatusTest(WorldCase):
    def flagged_world(self):
        return with_verdicts(self.world())

    def expected(self, hub):
        return {(t["repo_id"], name_text(t["path"])): expected_columns(t["security"]) for t in hub.truth()}

    def verdict_scan(self, hub, *args, output="sec", expect=0):
        return self.scan(hub, "--download-threshold", "0", "--security-status", *args,
                         output=output, expect=expect)

    def assert_verdicts(self, rows, expected):
        self.assertTrue(rows)
        for r in rows:
            self.assertEqual({c: r[c] for c in SECURITY}, expected[(r["repo_id"], r["filename"])],
                             (r["repo_id"], r["filename"]))

    def test_verdicts_are_recorded_exactly_for_one_request_more_per_repo_at_most(self):
        hub = self.hub_for(self.flagged_world(), "flagged")
        _, plain = self.scan(hub, "--download-threshold", "0", output="plain")
        _, header, _ = read_csv(plain["extended"])
        self.assertEqual(header, EXTENDED)
        plain_requests = hub.requests()
        self.assertFalse([q for q in plain_requests if query_of(q).get("expand") == ["true"]])
        hub.clear_log()
        _, files = self.verdict_scan(hub)
        comments, header, rows = read_csv(files["extended"])
        self.assertEqual(header, EXTENDED + SECURITY)
        self.assertIn("# security_status: true", comments)
        expected = self.expected(hub)
        self.assert_verdicts(rows, expected)
        statuses = collections.Counter(r["security_status"] for r in rows)
        self.assertEqual((statuses["unsafe"], statuses["suspicious"], statuses["unscanned"]), (1, 1, 1))
        self.assertEqual(statuses["safe"], len(rows) - 3)
        # The hashes are those of the plain scan: the verdicts only add columns.
        _, _, plain_rows = read_csv(plain["extended"])
        self.assertEqual(sorted((r["repo_id"], r["filename"], r["hash"]) for r in rows),
                         sorted((r["repo_id"], r["filename"], r["hash"]) for r in plain_rows))
        before, after = api_requests_by_repo(plain_requests), api_requests_by_repo(hub.requests())
        for repo in set(before) | set(after):
            self.assertLessEqual(after[repo], before[repo] + 1, repo)
        expanded = [q for q in hub.requests() if query_of(q).get("expand") == ["true"]
                    or "expand=true" in (q.get("body") or "")]
        self.assertTrue(expanded or sum(after.values()) > sum(before.values()))
        # The database holds the same verdicts.
        db = sqlite3.connect(os.path.join(self.dir, "sec", "hfscan.sqlite"))
        stored = {(r, f): dict(zip(SECURITY, v)) for r, f, *v in db.execute(
            "SELECT repo_id, filename, %s FROM verdicts" % ", ".join(SECURITY))}
        db.close()
        self.assertEqual(stored, {(r["repo_id"], r["filename"]): {c: r[c] for c in SECURITY} for r in rows})
        self.check_readers(hub, rows)

    def test_a_big_repo_or_one_listed_without_names_costs_one_paths_info(self):
        world = self.flagged_world()
        files = [{"path": "shards/part-%03d.safetensors" % i, "storage": "lfs", "size": 64}
                 for i in range(120)]
        files[7]["security"] = {"virus": "Eicar-Test-Signature"}
        world["repos"].append({"id": "big/many-files", "commit": "5" * 40, "downloads": 10 ** 7,
                               "files": files})
        path = os.path.join(self.dir, "big.json")
        with open(path, "w") as f:
            json.dump(world, f)
        hub = self.start_hub("--world", path, "--siblings-empty", "hfscan-test/mobile-misc")
        _, plain = self.scan(hub, "--download-threshold", "0", output="plain")
        before = api_requests_by_repo(hub.requests())
        hub.clear_log()
        _, got = self.verdict_scan(hub)
        after = api_requests_by_repo(hub.requests())
        for repo in ("big/many-files", "hfscan-test/mobile-misc"):
            self.assertEqual(after[repo], before[repo] + 1, repo)
            mine = [q for q in hub.requests() if q["path"].startswith("/api/models/%s/" % repo)]
            self.assertEqual([(q["method"], q["path"].split("?")[0].split("/")[5]) for q in mine],
                             [("GET", "tree"), ("POST", "paths-info")], repo)
        _, _, rows = read_csv(got["extended"])
        self.assert_verdicts(rows, self.expected(hub))
        self.assertEqual(sum(r["repo_id"] == "big/many-files" for r in rows), 120)
        self.assertEqual(sorted(r["filename"] for r in rows if r["av_virus"]),
                         ["shards/part-007.safetensors", "shared/weights.pkl"])

    def check_readers(self, hub, rows):
        out = os.path.join(self.dir, "sec")
        flagged = run_hfscan(["lookup", "--flagged", "--output-dir", out])
        self.assertEqual(flagged.returncode, 0, flagged.stderr)
        listed = list(__import__("csv").DictReader(flagged.stdout.splitlines()))
        want = sorted(((r["hash"], r["repo_id"], r["filename"], r["security_status"], r["av_virus"],
                        r["pickle_imports"]) for r in rows if r["security_status"] in FLAGGED))
        self.assertEqual(len(want), 2)
        self.assertEqual(sorted((x["hash"], x["repo_id"], x["filename"], x["security_status"],
                                 x["av_virus"], x["pickle_imports"]) for x in listed), want)
        as_json = json.loads(run_hfscan(["lookup", "--flagged", "--json", "--output-dir", out]).stdout)
        self.assertEqual(sorted(x["hash"] for x in as_json), sorted(w[0] for w in want))
        bad = next(r for r in rows if r["security_status"] == "unsafe")
        one = run_hfscan(["lookup", "--output-dir", out, bad["hash"]])
        self.assertIn("verdict unsafe, virus %s, pickle dangerous" % bad["av_virus"], one.stdout)
        found = json.loads(run_hfscan(["lookup", "--json", "--output-dir", out, bad["hash"]]).stdout)
        self.assertEqual({c: found[0]["occurrences"][0][c] for c in SECURITY}, {c: bad[c] for c in SECURITY})
        # verify: a local copy of the file is known, and flagged.
        copy = os.path.join(self.dir, "weights.pkl")
        with open(copy, "wb") as f:
            f.write(fetch(hub.endpoint, bad["repo_id"], bad["commit_hash"], bad["filename"]))
        verified = run_hfscan(["verify", "--output-dir", out, copy])
        self.assertEqual(verified.returncode, 0, verified.stderr)
        self.assertIn("verdict unsafe, virus %s" % bad["av_virus"], verified.stdout)
        # A folder whose scans recorded no verdict has no blocklist to give.
        none = run_hfscan(["lookup", "--flagged", "--output-dir", os.path.join(self.dir, "plain")])
        self.assertEqual(none.returncode, 2)
        self.assertIn("no scan in this folder recorded the Hub's verdicts", none.stderr)

    def test_a_restart_and_an_update_keep_the_columns(self):
        hub = self.hub_for(self.flagged_world(), "flagged")
        _, reference = self.verdict_scan(hub, "--no-token", output="reference")
        out = os.path.join(self.dir, "killed")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0", "--quiet",
                        "--download-threshold", "0", "--security-status", "--no-token"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:5"})
        self.assertEqual(r.returncode, -9, r.stderr[-2000:])
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token", "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        files = scan_files(out)
        _, header, rows = read_csv(files["extended"])
        self.assertEqual(header, EXTENDED + SECURITY)
        _, _, reference_rows = read_csv(reference["extended"])
        key = lambda r: (r["repo_id"], r["filename"])
        self.assertEqual(sorted(rows, key=key), sorted(reference_rows, key=key))
        # The gated repos' rows failed without a token; the update hashes them
        # and gives them their verdicts.
        failed = [r for r in rows if r["hash"].startswith("FAILED")]
        self.assertTrue(failed)
        r = run_hfscan(["--update-failed-hashes", "--yes", "--token", GRANTED, "--output-dir", out, "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        _, header, updated = read_csv(files["extended"])
        self.assertEqual(header, EXTENDED + SECURITY)
        self.assert_verdicts(updated, self.expected(hub))
        self.assertLess(sum(r["hash"].startswith("FAILED") for r in updated), len(failed))

    def test_a_restart_cannot_add_or_drop_the_columns(self):
        hub = self.hub_for(self.flagged_world(), "flagged")
        out = os.path.join(self.dir, "killed")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0", "--quiet",
                        "--download-threshold", "0", "--no-token"], env={"HFSCAN_TEST_CRASH": "after_extended:3"})
        self.assertEqual(r.returncode, -9)
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token", "--security-status"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("extra columns ''", r.stderr)

    def test_since_needs_verdicts_in_the_scan_it_carries_from(self):
        hub = self.hub_for(self.flagged_world(), "flagged")
        self.scan(hub, "--download-threshold", "0", output="plain")
        r, _ = self.verdict_scan(hub, "--since", os.path.join(self.dir, "plain"), expect=2)
        self.assertIn("was made without --security-status", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "sec")))

    def test_since_carries_the_verdicts_over(self):
        hub = self.hub_for(self.flagged_world(), "flagged")
        _, first = self.verdict_scan(hub, output="first")
        hub.clear_log()
        _, again = self.verdict_scan(hub, "--since", os.path.join(self.dir, "first"), output="again")
        # Only the repos with an error (gated, disabled) are asked again.
        _, _, errors = read_csv(first["errors"])
        rescanned = {q["path"].split("/")[3] + "/" + q["path"].split("/")[4] for q in hub.requests()
                     if "/tree/" in q["path"]}
        self.assertTrue(rescanned <= {e["repo_id"] for e in errors}, rescanned)
        _, header, rows = read_csv(again["extended"])
        self.assertEqual(header, EXTENDED + ["carried_over_from"] + SECURITY)
        carried = [r for r in rows if r["carried_over_from"]]
        self.assertGreater(len(carried), len(rows) // 2)
        self.assertIn("unsafe", {r["security_status"] for r in carried})
        self.assert_verdicts(rows, self.expected(hub))

    def test_diff_reports_a_file_that_became_unsafe_and_merge_keeps_verdicts(self):
        world = self.flagged_world()
        hub = self.hub_for(world, "before")
        _, old = self.verdict_scan(hub, output="old")
        repo = next(r for r in world["repos"] if r["id"] == "hfscan-test/sharded-safetensors")
        target = next(f for f in repo["files"] if f["path"] == "model-00001-of-00002.safetensors")
        target["security"] = {"virus": "Win.Trojan.Agent", "status": "unsafe"}
        hub = self.hub_for(world, "after", replacing=hub)
        _, new = self.verdict_scan(hub, output="new")
        r = run_hfscan(["diff", old["extended"], new["extended"]])
        self.assertEqual(r.returncode, 1, r.stderr)
        changes = list(__import__("csv").DictReader(r.stdout.splitlines()))
        self.assertEqual([(c["change"], c["repo_id"], c["filename"], c["old_verdict"], c["new_verdict"])
                          for c in changes],
                         [("verdict_changed", repo["id"], target["path"], "safe", "unsafe")])
        # The same from the folders' databases.
        r = run_hfscan(["diff", "--json", os.path.join(self.dir, "old"), os.path.join(self.dir, "new")])
        self.assertEqual([(c["filename"], c["new_verdict"]) for c in json.loads(r.stdout)["verdict_changed"]],
                         [(target["path"], "unsafe")])
        # Shards merged: the merged database has every shard's verdicts.
        for k in range(2):
            self.verdict_scan(hub, "--shard", "%d/2" % k, output="shard%d" % k)
        merged = os.path.join(self.dir, "merged")
        r = run_hfscan(["merge", "--output-dir", merged, os.path.join(self.dir, "shard0"),
                        os.path.join(self.dir, "shard1")])
        self.assertEqual(r.returncode, 0, r.stderr)
        _, header, rows = read_csv(scan_files(merged)["extended"])
        self.assertEqual(header, EXTENDED + SECURITY)
        self.assert_verdicts(rows, self.expected(hub))
        db = sqlite3.connect(os.path.join(merged, "hfscan.sqlite"))
        self.assertEqual(db.execute("SELECT count(*) FROM verdicts").fetchone()[0], len(rows))
        self.assertEqual(db.execute("SELECT count(*) FROM verdicts WHERE security_status = 'unsafe'")
                         .fetchone()[0], 2)
        db.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
