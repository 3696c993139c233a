"""Using the database: SQLite beside the CSVs, lookup, verify, diff,
incremental rescans (--since), shards and merge."""
import collections
import copy
import csv
import io
import json
import os
import signal
import sqlite3
import urllib.request
from urllib.parse import quote

from hubfixture import GRANTED, HUB, SOURCE_DIR, ScanCase, is_target, read_csv, run_hfscan, scan_files


def fetch(endpoint, repo, commit, path):
    """The bytes of a file, as a user would download them."""
    url = f"{endpoint}/{repo}/resolve/{commit}/{quote(path)}"
    with urllib.request.urlopen(url) as r:
        return r.read()


def row_set(files, drop=("carried_over_from",)):
    _, _, rows = read_csv(files["extended"])
    return collections.Counter(tuple(sorted((k, v) for k, v in r.items() if k not in drop))
                               for r in rows)


class WorldCase(ScanCase):
    def world(self, models="14"):
        path = os.path.join(self.dir, "world.json")
        import subprocess
        subprocess.run([HUB, "--models", models, "--dump-world", path], check=True)
        with open(path) as f:
            w = json.load(f)
        # The same bytes published in two places make a hash that "moves".
        misc = next(r for r in w["repos"] if r["id"] == "hfscan-test/mobile-misc")
        misc["files"].append({"path": "shared/weights.pkl", "storage": "git",
                              "text": "the same pickled weights\n"})
        return w

    def hub_for(self, world, name, replacing=None):
        """A hub serving world; with replacing, on that hub's port after stopping
        it (the same endpoint, as the real Hub between two scans)."""
        path = os.path.join(self.dir, name + ".json")
        with open(path, "w") as f:
            json.dump(world, f)
        args = ["--world", path]
        if replacing:
            replacing.stop()
            args += ["--port", replacing.endpoint.rsplit(":", 1)[1]]
        return self.start_hub(*args)

    @staticmethod
    def changed_world(world):
        """A few repos changed: a new commit with a changed file, a removed file,
        a new repo, and a file copied from one repo to another."""
        w = copy.deepcopy(world)
        repos = {r["id"]: r for r in w["repos"]}
        sharded = repos["hfscan-test/sharded-safetensors"]
        shard = next(f for f in sharded["files"] if f["path"] == "model-00001-of-00002.safetensors")
        shard["version"] = shard.get("version", 0) + 1
        sharded["commit"] = "1" * 40
        nested = repos["hfscan-test/nested-folders"]
        nested["files"] = [f for f in nested["files"] if f["path"] != "keras/model.keras"]
        nested["commit"] = "2" * 40
        new_repo = copy.deepcopy(repos["hfscan-test/mobile-misc"])
        new_repo["id"] = "newcomer/fresh-model"
        new_repo["_id"] = "f" * 24
        new_repo["commit"] = "3" * 40
        new_repo["downloads"] = 5_000_000
        new_repo["files"] = [f for f in new_repo["files"] if f["path"] == "shared/weights.pkl"]
        new_repo["files"][0]["path"] = "copied/weights.pkl"
        w["repos"].append(new_repo)
        return w


class LookupVerifyTest(WorldCase):
    def test_sqlite_is_kept_current_and_can_be_rebuilt(self):
        hub = self.start_hub("--models", "12")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        _, _, rows = read_csv(files["extended"])
        db = sqlite3.connect(os.path.join(out, "hfscan.sqlite"))
        count = db.execute("SELECT count(*) FROM files").fetchone()[0]
        self.assertEqual(count, len(rows))
        by_hash = db.execute("SELECT repo_id, filename FROM files WHERE hash = ?", (rows[0]["hash"],)).fetchall()
        self.assertIn((rows[0]["repo_id"], rows[0]["filename"]), by_hash)
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        self.assertTrue({"files_by_hash", "files_by_repo_path"} <= indexes)
        db.close()
        os.remove(os.path.join(out, "hfscan.sqlite"))
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{len(rows)} rows from 1 scans", r.stdout)
        db = sqlite3.connect(os.path.join(out, "hfscan.sqlite"))
        self.assertEqual(db.execute("SELECT count(*) FROM files").fetchone()[0], len(rows))
        db.close()

    def test_lookup_known_and_unknown_hashes(self):
        hub = self.start_hub("--models", "12")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        truth = [f for f in hub.truth() if f["path"] == "tiny.pkl" and f["repo_id"] == "hfscan-test/plain-git-weights"][0]
        ts = files["extended"][-19:-4]
        r = run_hfscan(["lookup", "--output-dir", out, truth["sha256"].upper()])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, f"{truth['sha256']}  hfscan-test/plain-git-weights  tiny.pkl  "
                                   f"commit {truth['commit']}  scan {ts}\n")
        unknown = "ab" * 32
        r = run_hfscan(["lookup", "--output-dir", out, "--json", truth["sha256"], unknown])
        self.assertEqual(r.returncode, 1)
        result = json.loads(r.stdout)
        self.assertEqual([x["known"] for x in result], [True, False])
        self.assertEqual(result[1]["occurrences"], [])
        self.assertEqual(result[0]["occurrences"][0]["commit_hash"], truth["commit"])
        r = run_hfscan(["lookup", "--output-dir", out, "not-a-hash"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("'not-a-hash' is not a SHA-256", r.stderr)

    def test_verify_of_a_model_folder_judges_its_weight_files(self):
        hub = self.start_hub("--models", "12")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        weight = next(f for f in hub.truth() if is_target(f["path"]) and f["sha256"])
        folder = os.path.join(self.dir, "model")
        os.makedirs(folder)
        name = weight["path"].rsplit("/", 1)[-1]
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(fetch(hub.endpoint, weight["repo_id"], weight["commit"], weight["path"]))
        for text in ("README.md", "config.json"):
            with open(os.path.join(folder, text), "w") as fh:
                fh.write("{}\n")
        os.symlink(os.path.join(self.dir, "gone.bin"), os.path.join(folder, "dangling.bin"))
        os.mkfifo(os.path.join(folder, "pipe.bin"))
        r = run_hfscan(["verify", "--output-dir", out, "--json", folder])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        status = {os.path.basename(f["path"]): f["status"] for f in json.loads(r.stdout)["files"]}
        self.assertEqual(status, {name: "known", "README.md": "not covered",
                                  "config.json": "not covered", "dangling.bin": "skipped",
                                  "pipe.bin": "skipped"})
        # --all judges every file: the README is then unknown.
        r = run_hfscan(["verify", "--output-dir", out, "--all", folder])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"unknown  .*README\.md")
        self.assertRegex(r.stdout, r"skipped  .*pipe\.bin  \(not a regular file\)")

    def test_verify_files_and_a_repo_folder(self):
        hub = self.start_hub("--models", "12")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        repo = "hfscan-test/nested-folders"
        repo_files = [f for f in hub.truth() if f["repo_id"] == repo and is_target(f["path"])]
        local = os.path.join(self.dir, "local")
        for f in repo_files:
            target = os.path.join(local, f["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(fetch(hub.endpoint, repo, f["commit"], f["path"]))
        known = os.path.join(local, repo_files[0]["path"])
        stranger = os.path.join(self.dir, "stranger.bin")
        with open(stranger, "wb") as fh:
            fh.write(b"not published anywhere")
        r = run_hfscan(["verify", "--output-dir", out, known])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"known    {known}  {repo}/{repo_files[0]['path']}@{repo_files[0]['commit']}", r.stdout)
        r = run_hfscan(["verify", "--output-dir", out, "-j", "1", "--json", known, stranger])
        self.assertEqual(r.returncode, 1)
        report = json.loads(r.stdout)
        self.assertEqual([f["status"] for f in report["files"]], ["known", "unknown"])
        self.assertFalse(report["all_known"])
        # The whole folder against the repo: everything matches...
        r = run_hfscan(["verify", "--output-dir", out, "--repo", repo, local])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # ...then one changed, one missing, one extra.
        changed, missing = repo_files[0]["path"], repo_files[1]["path"]
        with open(os.path.join(local, changed), "ab") as fh:
            fh.write(b"tampered")
        os.remove(os.path.join(local, missing))
        with open(os.path.join(local, "extra.safetensors"), "wb") as fh:
            fh.write(b"x")
        with open(os.path.join(local, "notes.txt"), "wb") as fh:
            fh.write(b"not a weight file: ignored")
        r = run_hfscan(["verify", "--output-dir", out, "--json", "--repo", repo, local])
        self.assertEqual(r.returncode, 1)
        report = json.loads(r.stdout)
        self.assertEqual([c["path"] for c in report["changed"]], [changed])
        self.assertEqual(report["missing"], [missing])
        self.assertEqual(report["extra"], ["extra.safetensors"])
        self.assertEqual(report["commit"], repo_files[0]["commit"])
        self.assertEqual(len(report["matching"]), len(repo_files) - 2)


class DiffIncrementalTest(WorldCase):
    def test_since_carries_the_same_rows_from_the_database_and_from_the_csv(self):
        world = self.world()
        old_hub = self.hub_for(world, "old")
        r, old = self.scan(old_hub, "--download-threshold", "1", output="old")
        new_hub = self.hub_for(self.changed_world(world), "new", replacing=old_hub)
        old_dir = os.path.dirname(old["extended"])
        r, through_db = self.scan(new_hub, "--download-threshold", "1", "--since", old_dir, output="via-db")
        database_path = os.path.join(old_dir, "hfscan.sqlite")
        os.rename(database_path, database_path + ".away")  # the CSV is read instead
        r, from_csv = self.scan(new_hub, "--download-threshold", "1", "--since", old_dir, output="via-csv")
        self.assertFalse(os.path.exists(database_path), "--since built no database")
        _, header, rows = read_csv(through_db["extended"])
        self.assertIn("carried_over_from", header)
        self.assertTrue(any(x["carried_over_from"] for x in rows))
        in_order = lambda rs: sorted(rs, key=lambda x: (x["repo_id"], x["filename"]))
        self.assertEqual(in_order(rows), in_order(read_csv(from_csv["extended"])[2]))

    def test_two_scans_of_one_folder_diff_through_its_database(self):
        world = self.world()
        old_hub = self.hub_for(world, "old")
        r, old = self.scan(old_hub, "--download-threshold", "1", output="both")
        new_hub = self.hub_for(self.changed_world(world), "new", replacing=old_hub)
        # The second scan into the same folder: hfscan.sqlite holds both.
        r = run_hfscan(["--endpoint", new_hub.endpoint, "--output-dir", os.path.dirname(old["extended"]),
                        "--rate-limit", "0", "--quiet", "--download-threshold", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        new = scan_files(os.path.dirname(old["extended"]))
        self.assertNotEqual(new["extended"], old["extended"])
        through_db = run_hfscan(["diff", old["extended"], new["extended"]])
        self.assertEqual(through_db.returncode, 1, through_db.stderr)
        database_path = os.path.join(os.path.dirname(old["extended"]), "hfscan.sqlite")
        # The same answer streamed from the CSVs (the database set aside).
        os.rename(database_path, database_path + ".away")
        from_csv = run_hfscan(["diff", old["extended"], new["extended"]])
        self.assertEqual((from_csv.returncode, from_csv.stdout), (1, through_db.stdout))
        self.assertFalse(os.path.exists(database_path), "diff built no database")
        os.rename(database_path + ".away", database_path)
        # And it was the database that answered: a row taken out of it (its
        # mtime stays newer than the CSVs) goes missing from the diff.
        changed = [l for l in through_db.stdout.splitlines() if l.startswith("changed,")]
        repo, filename = changed[0].split(",")[1:3]
        with sqlite3.connect(database_path) as db:
            db.execute("DELETE FROM files WHERE repo_id = ? AND filename = ? AND scan_id = "
                       "(SELECT max(scan_id) FROM scans)", (repo, filename))
        tampered = run_hfscan(["diff", old["extended"], new["extended"]])
        self.assertIn(f"removed,{repo},{filename},", tampered.stdout)

    def test_diff_between_scans_of_a_changed_world(self):
        world = self.world()
        old_hub = self.hub_for(world, "old")
        r, old = self.scan(old_hub, "--download-threshold", "1", output="old")
        new_hub = self.hub_for(self.changed_world(world), "new", replacing=old_hub)
        r, new = self.scan(new_hub, "--download-threshold", "1", output="new")
        r = run_hfscan(["diff", os.path.dirname(old["extended"]), new["extended"]])
        self.assertEqual(r.returncode, 1, r.stderr)
        changes = list(csv.DictReader(io.StringIO(r.stdout)))
        kinds = collections.Counter(c["change"] for c in changes)
        self.assertEqual(kinds["changed"], 1)
        changed = next(c for c in changes if c["change"] == "changed")
        self.assertEqual((changed["repo_id"], changed["filename"]),
                         ("hfscan-test/sharded-safetensors", "model-00001-of-00002.safetensors"))
        self.assertNotEqual(changed["old_hash"], changed["new_hash"])
        self.assertEqual(changed["new_commit"], "1" * 40)
        removed = [(c["repo_id"], c["filename"]) for c in changes if c["change"] == "removed"]
        self.assertEqual(removed, [("hfscan-test/nested-folders", "keras/model.keras")])
        added = {c["repo_id"] for c in changes if c["change"] == "added"}
        self.assertEqual(added, {"newcomer/fresh-model"})
        commits = {c["repo_id"] for c in changes if c["change"] == "commit_changed"}
        self.assertEqual(commits, {"hfscan-test/sharded-safetensors", "hfscan-test/nested-folders"})
        # The newcomer publishes mobile-misc's shared weights again.
        moved = [(c["repo_id"], c["filename"], c["moved_from"]) for c in changes if c["change"] == "moved"]
        self.assertEqual(moved, [("newcomer/fresh-model", "copied/weights.pkl",
                                  "hfscan-test/mobile-misc/shared/weights.pkl")])
        r = run_hfscan(["diff", "--json", old["extended"], old["extended"]])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(json.loads(r.stdout)["added"], [])

    def test_diff_of_a_partial_scan_compares_only_what_both_finished(self):
        hub = self.start_hub("--models", "12")
        r, full = self.scan(hub, "--download-threshold", "1", output="full")
        out = os.path.join(self.dir, "cut")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:4"})
        self.assertEqual(r.returncode, -9, r.stderr[-2000:])
        # Interrupted after 3 finished repos (the 4th wrote rows, not its progress line).
        r = run_hfscan(["diff", "--json", full["extended"], out])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["removed"], [], "an unfinished scan removed nothing")
        with open(full["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")) as f:
            finished_in_full = len(f.read().splitlines()) - 1
        self.assertEqual(len(report["not_compared"]), finished_in_full - 3, report["not_compared"])
        self.assertIn("%d repos are not compared" % (finished_in_full - 3), r.stderr)
        # Scans of different selections are refused unless --force.
        r, other = self.scan(hub, "--download-threshold", "1", "--limit", "5", output="limited")
        r = run_hfscan(["diff", full["extended"], other["extended"]])
        self.assertEqual(r.returncode, 2)
        self.assertIn("the two scans select different repos (model_limit: '' vs '5')", r.stderr)
        r = run_hfscan(["diff", "--force", full["extended"], other["extended"]])
        self.assertIn(r.returncode, (0, 1), r.stderr)

    def test_diff_shows_failures_that_became_hashes_and_back(self):
        hub = self.start_hub("--models", "20")
        r, anonymous = self.scan(hub, "--download-threshold", "1", output="anonymous")
        r, granted = self.scan(hub, "--download-threshold", "1", "--token", GRANTED,
                               output="granted")
        _, _, before = read_csv(anonymous["extended"])
        _, _, after = read_csv(granted["extended"])
        after_by_key = {(a["repo_id"], a["filename"]): a["hash"] for a in after}
        want = sorted((b["repo_id"], b["filename"]) for b in before
                      if b["hash"].startswith("FAILED_")
                      and not after_by_key[(b["repo_id"], b["filename"])].startswith("FAILED_"))
        self.assertTrue(want, "the token hashes files that failed without it")
        r = run_hfscan(["diff", "--json", anonymous["extended"], granted["extended"]])
        self.assertEqual(r.returncode, 1, r.stderr)
        changes = json.loads(r.stdout)
        self.assertEqual(sorted((c["repo_id"], c["filename"]) for c in changes["hashed"]), want)
        self.assertTrue(all(c["old_hash"].startswith("FAILED_") for c in changes["hashed"]))
        r = run_hfscan(["diff", "--json", granted["extended"], anonymous["extended"]])
        reverse = json.loads(r.stdout)
        self.assertEqual(sorted((c["repo_id"], c["filename"]) for c in reverse["failed"]), want)
        self.assertEqual(reverse["hashed"], [])

    def test_incremental_scan_requests_only_changed_repos(self):
        world = self.world()
        old_hub = self.hub_for(world, "old")
        r, old = self.scan(old_hub, "--download-threshold", "1", output="old")
        new_hub = self.hub_for(self.changed_world(world), "new", replacing=old_hub)
        r, full = self.scan(new_hub, "--download-threshold", "1", output="full")
        new_hub.clear_log()
        r, inc = self.scan(new_hub, "--download-threshold", "1", "--since",
                           os.path.dirname(old["extended"]), output="inc")
        self.assertEqual(row_set(inc), row_set(full), "the same rows as a full scan")
        changed = {"hfscan-test/sharded-safetensors", "hfscan-test/nested-folders", "newcomer/fresh-model"}
        # Repos with a failed file are scanned again too: the failure may not last.
        _, _, old_rows = read_csv(old["extended"])
        failed = {r["repo_id"] for r in old_rows if r["hash"].startswith("FAILED_")}
        self.assertEqual(failed, {"gated-org/gated-auto", "gated-org/gated-manual"})
        # So are repos that failed as a whole (a disabled repo has no file list).
        _, _, old_errors = read_csv(old["errors"])
        whole = {e["repo_id"] for e in old_errors if e["filename"] == ""}
        self.assertEqual(whole, {"hfscan-test/disabled-model"})
        changed |= failed | whole
        touched = set()
        for req in new_hub.requests():
            path = req["path"].split("?")[0]
            if path == "/api/models":
                continue
            parts = path.split("/")
            repo = "/".join(parts[3:5]) if parts[1] == "api" else "/".join(parts[1:3])
            touched.add(repo)
        self.assertEqual(touched, changed, "requests only for changed and new repos")
        _, header, rows = read_csv(inc["extended"])
        self.assertIn("carried_over_from", header)
        old_ts = old["extended"][-19:-4]
        for row in rows:
            expected = "" if row["repo_id"] in changed else old_ts
            self.assertEqual(row["carried_over_from"], expected, row["repo_id"])


class SinceTest(ScanCase):
    def test_since_needs_the_policy_of_the_scan_it_carries_from(self):
        hub = self.start_hub("--models", "12")
        r, old = self.scan(hub, "--download-threshold", "1", output="old")
        policy = os.path.join(SOURCE_DIR, "examples", "gguf_by_author.lua")
        r, _ = self.scan(hub, "--download-threshold", "1", "--since", old["extended"],
                         "--policy", policy, output="new", expect=2)
        self.assertEqual(r.stderr, f"hfscan: --since: {old['extended']} was made with no policy and "
                                   f"this scan with policy {policy}; its rows would not follow this "
                                   "scan's choice of files: make a full scan with this policy first\n")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "new")), "nothing written")
        r, _ = self.scan(hub, "--since", os.path.join(self.dir, "nowhere"), output="new2",
                         expect=2)
        self.assertEqual(r.stderr, f"hfscan: --since: {self.dir}/nowhere: No such file or "
                                   "directory\n")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "new2")), "nothing written")

    def test_since_is_recorded_absolute_so_a_restart_elsewhere_finds_it(self):
        hub = self.start_hub("--models", "12")
        r, old = self.scan(hub, "--download-threshold", "1", output="old")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", "inc", "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1", "--since", "old"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:2"}, cwd=self.dir)
        self.assertLess(r.returncode, 0, "killed")
        inc = os.path.join(self.dir, "inc")
        comments, _, _ = read_csv(scan_files(inc)["extended"])
        self.assertIn("# since: " + os.path.realpath(old["extended"]), comments)
        r = run_hfscan(["--restart", "--output-dir", inc, "--quiet"], cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, full = self.scan(hub, "--download-threshold", "1", output="full")
        _, _, rows = read_csv(scan_files(inc)["extended"])
        self.assertEqual(collections.Counter((x["repo_id"], x["filename"], x["hash"]) for x in rows),
                         collections.Counter((x["repo_id"], x["filename"], x["hash"])
                                             for x in read_csv(full["extended"])[2]))


class ShardTest(ScanCase):
    def test_shards_merged_equal_one_scan(self):
        hub = self.start_hub("--models", "30")
        r, whole = self.scan(hub, "--download-threshold", "1", output="whole")
        outs = []
        for k in range(3):
            r, files = self.scan(hub, "--download-threshold", "1", "--shard", f"{k}/3", output=f"shard{k}")
            comments, _, rows = read_csv(files["extended"])
            self.assertIn(f"# shard: {k}/3", comments)
            outs.append(os.path.dirname(files["extended"]))
        repos = [set(r["repo_id"] for r in read_csv(scan_files(o)["extended"])[2]) for o in outs]
        self.assertFalse(repos[0] & repos[1] or repos[1] & repos[2] or repos[0] & repos[2])
        self.assertTrue(all(repos), "every shard has work")
        merged = os.path.join(self.dir, "merged")
        r = run_hfscan(["merge", "--output-dir", merged] + outs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("from 3 scans (3 copied by their bytes, 0 row by row)", r.stdout)
        self.assertEqual(row_set(scan_files(merged)), row_set(whole))
        # Row by row (--repair reads every row) gives the same rows and lines.
        by_rows = os.path.join(self.dir, "by-rows")
        r = run_hfscan(["merge", "--repair", "--output-dir", by_rows] + outs)
        self.assertIn("(0 copied by their bytes, 3 row by row)", r.stdout)
        for kind in ("extended", "basic"):
            self.assertEqual(read_csv(scan_files(by_rows)[kind])[2], read_csv(scan_files(merged)[kind])[2], kind)
        progress = {}
        for name, folder in (("bytes", merged), ("rows", by_rows)):
            path = scan_files(folder)["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
            with open(path, newline="") as f:
                progress[name] = sorted(tuple(line) for line in csv.reader(f))
        self.assertEqual(len(progress["bytes"]), len(progress["rows"]))
        self.assertEqual({p[:2] for p in progress["bytes"]}, {p[:2] for p in progress["rows"]})
        r = run_hfscan(["db", "check", "--output-dir", merged])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The sizes moved on: a restart of the merged scan finds it whole.
        r = run_hfscan(["--restart", "--output-dir", merged])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("already completed; nothing to do", r.stderr)
        _, _, werr = read_csv(whole["errors"])
        _, _, merr = read_csv(scan_files(merged)["errors"])
        self.assertEqual(sorted((e["repo_id"], e["filename"]) for e in merr),
                         sorted((e["repo_id"], e["filename"]) for e in werr))
        # The shards' own databases are current: the merged one is copied
        # from them, and holds exactly the merged CSV's rows.
        db = sqlite3.connect(os.path.join(merged, "hfscan.sqlite"))
        _, _, merged_rows = read_csv(scan_files(merged)["extended"])
        self.assertEqual(sorted(db.execute("SELECT repo_id, filename, hash, commit_hash FROM files")),
                         sorted((x["repo_id"], x["filename"], x["hash"], x["commit_hash"]) for x in merged_rows))
        db.close()
        some = next(x["hash"] for x in merged_rows if not x["hash"].startswith("FAILED"))
        r = run_hfscan(["lookup", "--output-dir", merged, some])
        self.assertEqual((r.returncode, r.stderr), (0, ""), "the copied database is current")
        with open(scan_files(merged)["metadata"]) as f:
            meta = json.load(f)
        self.assertEqual((meta["status"], meta["total_files_processed"]),
                         ("completed", sum(row_set(whole).values())))
        # A merged folder is a finished scan: it can be merged again.
        again = os.path.join(self.dir, "again")
        r = run_hfscan(["merge", "--output-dir", again, merged])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(row_set(scan_files(again)), row_set(whole))
        # Some shards, a shard twice, a shard beside a whole scan, another
        # threshold: none is one scan, and nothing is written.
        r, other = self.scan(hub, "--download-threshold", "2", "--shard", "1/3", output="other")
        for parts, message in (
                ([outs[0], outs[2]], "shards missing: 1/3 (a merge of some shards is not the whole scan)"),
                ([outs[0], outs[1], outs[1], outs[2]], "shard 1/3 is given twice"),
                ([outs[0], os.path.dirname(whole["extended"])], "is not a shard, but the others are"),
                ([merged, merged], "are whole scans, not shards of one: diff them, or keep the newer"),
                ([outs[0], os.path.dirname(other["extended"]), outs[2]],
                 "(download_threshold: '1' vs '2')")):
            refused = os.path.join(self.dir, "refused")
            r = run_hfscan(["merge", "--output-dir", refused] + parts)
            self.assertEqual(r.returncode, 2, parts)
            self.assertIn(message, r.stderr)
            self.assertFalse(os.path.exists(refused))

    def test_merge_refuses_a_shard_that_is_not_finished(self):
        hub = self.start_hub("--models", "12")
        r, done = self.scan(hub, "--download-threshold", "1", "--shard", "0/2", output="s0")
        out = os.path.join(self.dir, "s1")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1", "--shard", "1/2"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:2"})
        self.assertLess(r.returncode, 0, "killed")
        merged = os.path.join(self.dir, "merged")
        r = run_hfscan(["merge", "--output-dir", merged, os.path.dirname(done["extended"]), out])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"hfscan merge: {out}: the scan is unfinished (no metadata yet); "
                                   f"finish it first with: hfscan --restart --output-dir {out}\n")
        self.assertFalse(os.path.exists(merged), "nothing written")

    def test_bad_shard(self):
        for bad in ("3/3", "1", "a/b", "0/0"):
            r = run_hfscan(["--shard", bad, "--output-dir", os.path.join(self.dir, "x")])
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--shard", r.stderr)


class TamperedRowsTest(ScanCase):
    """Every row read back is checked: a hash that is neither 64 lowercase hex
    nor FAILED_*, or a malformed commit, is refused by diff, db build and
    --since, naming the file and the row (issue 15)."""

    def test_a_tampered_csv_is_refused_by_every_reader(self):
        hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        with open(files["extended"], newline="") as f:
            text = f.read()
        first = next(row["hash"] for row in read_csv(files["extended"])[2]
                     if not row["hash"].startswith("FAILED"))
        with open(files["extended"], "w", newline="") as f:
            f.write(text.replace(first, "NOTAHASH", 1))
        os.remove(os.path.join(out, "hfscan.sqlite"))
        message = ("%d: hash 'NOTAHASH' is neither 64 lowercase hex digits nor a FAILED_* marker "
                   "(--repair drops such rows, each reported)")
        with open(files["extended"], newline="") as f:
            line = next(i for i, text in enumerate(f.read().split("\r\n"), 1) if text.startswith("NOTAHASH,"))
        for args in (["diff", out, out], ["db", "build", "--output-dir", out],
                     ["--since", out, "--output-dir", os.path.join(self.dir, "next"),
                      "--endpoint", hub.endpoint, "--no-token", "--download-threshold", "1"]):
            r = run_hfscan(args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(files["extended"] + ":" + message % line, r.stderr, args)


    def test_restart_refuses_a_tampered_row_and_repair_rescans_its_repo(self):
        hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token")
        out = os.path.dirname(files["extended"])
        _, _, want = read_csv(files["extended"])
        victim = next(row for row in want if row["hash_method"] == "api_metadata")
        with open(files["extended"], newline="") as f:
            text = f.read()
        old = f"{victim['download_url']},api_metadata,"
        self.assertEqual(text.count(old), 1)
        with open(files["extended"], "w", newline="") as f:
            f.write(text.replace(old, f"{victim['download_url']},guessed,"))
        with open(files["extended"], newline="") as f:
            line = next(i for i, t in enumerate(f.read().split("\r\n"), 1) if ",guessed," in t)
        problem = (f"{files['extended']}:{line}: hash_method 'guessed' is none of api_metadata, "
                   "lfs_pointer, downloaded, FAILED_NO_HASH, FAILED_TOO_LARGE")
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual((r.returncode, r.stderr), (2, f"hfscan db: {problem} (--repair drops such "
                                                       "rows, each reported)\n"))
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token", "--quiet"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"cannot resume: {problem}", r.stderr)
        r = run_hfscan(["--restart", "--repair", "--output-dir", out, "--no-token", "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"hfscan: --repair: dropped {problem}\n", r.stderr)
        _, _, after = read_csv(files["extended"])
        key = lambda row: (row["repo_id"], row["filename"])
        self.assertEqual(sorted(after, key=key), sorted(want, key=key),
                         "the repo is scanned again: every row as the Hub has it")


class StoreAtomicityTest(ScanCase):
    """No committed state of hfscan.sqlite lacks rows the CSVs hold: a command
    that replaces a scan's rows deletes and re-inserts them in one transaction,
    so a kill right after the delete leaves the rows as they were (issue 16)."""

    @staticmethod
    def db_rows(out):
        with sqlite3.connect(os.path.join(out, "hfscan.sqlite")) as db:
            return sorted(db.execute("SELECT repo_id, filename, hash FROM files"))

    def killed_scan(self, name, repos):
        """A scan of the stand-in killed after writing its repos-th repo."""
        hub = self.start_hub("--models", "10")
        out = os.path.join(self.dir, name)
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1"],
                       env={"HFSCAN_TEST_CRASH": f"after_extended:{repos}"})
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr[-2000:])
        return out

    def killed_after_delete(self, args, out):
        before = self.db_rows(out)
        self.assertTrue(before)
        r = run_hfscan(args, env={"HFSCAN_TEST_CRASH": "store_after_delete:0"})
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr[-2000:])
        self.assertEqual(self.db_rows(out), before, f"{args[0]}: no row lost")

    def assert_database_matches_csv(self, out):
        _, _, rows = read_csv(scan_files(out)["extended"])
        self.assertEqual(self.db_rows(out), sorted((x["repo_id"], x["filename"], x["hash"]) for x in rows),
                         "the restart brought the database up to the CSV")

    def test_a_kill_between_delete_and_insert_loses_no_row(self):
        out = self.killed_scan("cut", 4)
        # A db build after the kill loads the rows of the repo in flight, which
        # the restart cuts off the CSVs: it deletes them from the database with
        # the cut's rows in one transaction.
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.killed_after_delete(["--restart", "--output-dir", out, "--quiet"], out)
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_database_matches_csv(out)
        self.killed_after_delete(["--update-failed-hashes", "--yes", "--output-dir", out,
                                  "--token", GRANTED, "--quiet"], out)
        # The update replaces only the repos it changed, and the database
        # still holds every row of the rewritten CSV.
        r = run_hfscan(["--update-failed-hashes", "--yes", "--output-dir", out, "--token", GRANTED,
                        "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_database_matches_csv(out)

    def test_a_restart_reading_every_row_reloads_only_what_differs(self):
        out = self.killed_scan("cut", 4)
        # The database lost one finished repo's row: a restart that reads every
        # row (--repair) reloads that repo alone, deleting what it held first.
        with sqlite3.connect(os.path.join(out, "hfscan.sqlite")) as db:
            repo = db.execute("SELECT repo_id FROM files LIMIT 1").fetchone()[0]
            db.execute("DELETE FROM files WHERE repo_id = ? AND rowid IN "
                       "(SELECT rowid FROM files WHERE repo_id = ? LIMIT 1)", (repo, repo))
        self.killed_after_delete(["--restart", "--repair", "--output-dir", out, "--quiet"], out)
        r = run_hfscan(["--restart", "--repair", "--output-dir", out, "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_database_matches_csv(out)

    def test_lookups_during_restart_update_and_build_never_answer_unknown(self):
        import threading
        out = self.killed_scan("busy", 6)
        # Hashes of finished repos: those the CSVs hold for good (the killed
        # repo's rows are removed by the restart, and come back when it is redone).
        extended = scan_files(out)["extended"]
        _, _, progress = read_csv(extended.replace("hf_model_hashes_extended_", "hf_scan_progress_"))
        finished = {p["repo_id"] for p in progress}
        known = sorted({x["hash"] for x in read_csv(extended)[2]
                        if not x["hash"].startswith("FAILED") and x["repo_id"] in finished})[:5]
        self.assertEqual(len(known), 5)
        answers, stop, phase = [], threading.Event(), ["start"]
        def ask():
            while not stop.is_set():
                q = run_hfscan(["lookup", "--output-dir", out] + known)
                answers.append((q.returncode, q.stdout.count("  unknown"), phase[0], q.stderr[-300:]))
        asker = threading.Thread(target=ask)
        asker.start()
        try:
            for args in (["--restart", "--output-dir", out, "--quiet"],
                         ["--update-failed-hashes", "--yes", "--token", GRANTED, "--output-dir", out, "--quiet"],
                         ["db", "build", "--output-dir", out]):
                phase[0] = args[0]
                r = run_hfscan(args)
                self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        finally:
            stop.set()
            asker.join()
        self.assertTrue(answers)
        self.assertEqual([a for a in answers if a[:2] != (0, 0)], [], "every lookup found every hash")


class NothingToAskTest(ScanCase):
    """No such folder, a folder without a scan, a missing file: trouble (exit 2),
    not the answer "unknown" (exit 1); and no empty database is left behind."""

    def test_missing_folder_or_scan_or_file_exits_2(self):
        h = "ab" * 32
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        missing = os.path.join(self.dir, "missing")
        cases = [
            (["lookup", "--output-dir", missing, h], "hfscan lookup: %s: no such folder\n" % missing),
            (["lookup", "--output-dir", empty, h],
             "hfscan lookup: no scan in %s (no hf_model_hashes_extended_*.csv)\n" % empty),
            (["verify", "--output-dir", empty, os.path.join(self.dir, "nofile")],
             "hfscan verify: %s: No such file or directory\n" % os.path.join(self.dir, "nofile")),
        ]
        for args, message in cases:
            r = run_hfscan(args)
            self.assertEqual((r.returncode, r.stderr), (2, message), args)
        self.assertEqual(os.listdir(empty), [])
        self.assertFalse(os.path.exists(missing))


class SubcommandUsageTest(ScanCase):
    def test_subcommand_usage_errors_name_the_argument(self):
        cases = [
            (["lookup", "--json=1"], "lookup: --json takes no value"),
            (["lookup", "--output-dir"], "lookup: --output-dir needs DIR"),
            (["lookup"], "lookup: give at least one SHA-256"),
            (["verify", "--bogus"], "verify: unknown option '--bogus'"),
            (["verify", "-j", "0", "f"], "verify: -j: '0' is not a whole number from 1 to 256"),
            (["verify", "-j=x", "f"], "verify: -j: 'x' is not a whole number from 1 to 256"),
            (["diff", "--json=x", "a", "b"], "diff: --json takes no value"),
            (["merge", "--output-dir="], "merge: --output-dir needs DIR"),
            (["db", "frob"], "db: expected 'hfscan db build' or 'hfscan db check'"),
            (["db", "build", "--all"], "db: --all is for 'hfscan db check'"),
        ]
        for args, message in cases:
            r = run_hfscan(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stderr, f"hfscan: {message}\nTry 'hfscan {args[0]} --help' "
                             "for more information.\n")
