"""Lua scripting: policies, broken policies, custom scripts, the examples, the
REPL's hub client, and overriding a bundled module by directory."""
import csv
import io
import os
import subprocess

from hubfixture import (GRANTED, HFSCAN, SOURCE_DIR, ScanCase, file_key, is_target, read_csv,
                        run_hfscan, scan_files)

EXAMPLES = os.path.join(SOURCE_DIR, "examples")


def sha256sum(paths):
    return subprocess.run(["sha256sum"] + paths, capture_output=True, text=True).stdout


class PolicyTest(ScanCase):
    def test_gguf_of_given_authors(self):
        hub = self.start_hub("--models", "16")
        r, files = self.scan(hub, "--download-threshold", "1", "--policy",
                             os.path.join(EXAMPLES, "gguf_by_author.lua"),
                             env={"GGUF_AUTHORS": "hfscan-test, gated-org"})
        _, _, rows = read_csv(files["extended"])
        want = {file_key(f): f["sha256"] for f in hub.truth()
                if f["repo_id"].split("/")[0] in ("hfscan-test", "gated-org")
                and f["path"].lower().endswith(".gguf") and not f["private"]}
        self.assertTrue(want)
        self.assertEqual({(r["repo_id"], r["filename"]): r["hash"] for r in rows}, want)

    def test_added_column_and_resume_with_it(self):
        hub = self.start_hub("--models", "14")
        policy = os.path.join(EXAMPLES, "gated_column.lua")
        out = os.path.join(self.dir, "gated")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1", "--policy", policy],
                       env={"HFSCAN_TEST_CRASH": "after_extended:5"})
        self.assertEqual(r.returncode, -9, r.stderr)
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr)
        comments, header, rows = read_csv(scan_files(out)["extended"])
        self.assertEqual(header[-1], "gated")
        self.assertIn("# extra_columns: gated", comments)
        gated = {f["repo_id"]: str(f["gated"]).lower() for f in hub.truth()}
        self.assertEqual(len({(r["repo_id"], r["filename"]) for r in rows}), len(rows))
        for row in rows:
            self.assertEqual(row["gated"], gated[row["repo_id"]], row["repo_id"])
        self.assertIn("manual", {row["gated"] for row in rows})
        # An update's new rows get the column as the scan's did: its hooks see
        # the listing's fields (gated) at the row's commit.
        failed = [(r["repo_id"], r["filename"]) for r in rows if r["hash"].startswith("FAILED")]
        self.assertTrue(failed)
        r = run_hfscan(["--update-failed-hashes", "--yes", "--token", GRANTED, "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        _, _, after = read_csv(scan_files(out)["extended"])
        by_key = {(x["repo_id"], x["filename"]): x for x in after}
        for key in failed:
            self.assertEqual(by_key[key]["gated"], gated[key[0]], key)

    def test_tiers_hook_forces_downloads(self):
        hub = self.start_hub("--models", "6")
        policy = self.write_policy("download_all.lua",
                                   'return { tiers = function(file, model) return {"downloaded"} end }')
        r, files = self.scan(hub, "--download-threshold", "1", "--policy", policy)
        _, _, rows = read_csv(files["extended"])
        truth = {file_key(f): f for f in hub.truth()}
        self.assertGreater(len(rows), 20)
        for row in rows:
            t = truth[(row["repo_id"], row["filename"])]
            if t["gated"]:  # nothing of a gated repo downloads without a token
                self.assertEqual((row["hash"], row["hash_method"]), ("FAILED_NO_HASH",) * 2, row)
            else:
                self.assertEqual((row["hash"], row["hash_method"]), (t["sha256"], "downloaded"), row)

    def test_the_pointer_tier_hashes_lfs_files_and_a_broken_raw_falls_back_to_downloads(self):
        policy = self.write_policy("pointers.lua", """
return {
  select_file = function(file) return file.lfs and file.path:lower():match("%.gg[a-z]+$") ~= nil end,
  tiers = function(file) return { "lfs_pointer", "downloaded" } end,
}""")
        repo = "hfscan-test/xet-gguf"
        for broken, method in (((), "lfs_pointer"), (("--broken-raw", repo), "downloaded")):
            hub = self.start_hub("--models", "6", *broken)
            r, files = self.scan(hub, "--download-threshold", "1", "--policy", policy,
                                 output="out" + method)
            _, _, rows = read_csv(files["extended"])
            truth = {file_key(f): f for f in hub.truth()}
            mine = [row for row in rows if row["repo_id"] == repo]
            self.assertEqual(len(mine), 5, "the .gguf, .GGUF, .ggml, .ggmf and .ggjt files")
            for row in mine:
                self.assertEqual((row["hash"], row["hash_method"]),
                                 (truth[(repo, row["filename"])]["sha256"], method), row)

    def test_on_row_can_drop_and_on_error_can_stop(self):
        hub = self.start_hub("--models", "10")
        policy = self.write_policy("drop.lua", '''
return {
  on_row = function(row) if row.file_type == "pkl" then return false end return row end,
}''')
        r, files = self.scan(hub, "--download-threshold", "1", "--policy", policy)
        _, _, rows = read_csv(files["extended"])
        self.assertTrue(rows)
        self.assertFalse(any(row["file_type"] == "pkl" for row in rows))
        stop = self.write_policy("stop.lua",
                                 'return { on_error = function(err) return "stop" end }')
        r, files = self.scan(hub, "--download-threshold", "1", "--policy", stop, "--max-workers", "1",
                             output="stopped", expect=1)
        self.assertIn("stopped by the policy's on_error", r.stderr)
        # The repo whose error stopped the scan is not recorded (a restart redoes it).
        _, _, errors = read_csv(files["errors"])
        self.assertEqual(errors, [])
        with open(files["metadata"]) as f:
            self.assertIn('"status":"failed"', f.read())

    def write_policy(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class BrokenPolicyTest(ScanCase):
    def run_policy(self, text, *extra):
        hub = self.start_hub("--models", "10")
        path = os.path.join(self.dir, "broken.lua")
        with open(path, "w") as f:
            f.write(text)
        r, files = self.scan(hub, "--download-threshold", "1", "--policy", path, *extra, expect=1)
        return path, r, files

    def test_syntax_error(self):
        path, r, files = self.run_policy("return {\n  select_file = function(file) return end end\n}\n")
        self.assertIn(f"{path}:2:", r.stderr)
        self.assertIsNone(files["extended"], "nothing written for a policy that does not load")

    def test_hook_that_raises(self):
        path, r, files = self.run_policy('''return {
  select_file = function(file, model)
    if model.id == "hfscan-test/tricky-names" then error("boom") end
    return file.path:match("%.safetensors$") ~= nil
  end,
}
''', "--max-workers", "1")
        self.assertIn("policy hook 'select_file'", r.stderr)
        self.assertIn(f"{path}:2", r.stderr)  # where the hook is defined
        self.assertIn(f"{path}:3: boom", r.stderr)  # where it raised
        # What was written before the stop is valid and complete per repo.
        _, _, rows = read_csv(files["extended"])
        truth = {file_key(f): f["sha256"] for f in self.hubs[0].truth()}
        for row in rows:
            self.assertEqual(row["hash"], truth[(row["repo_id"], row["filename"])])
        with open(files["metadata"]) as f:
            self.assertIn('"status":"failed"', f.read())
        # The way on is a new scan: a restart runs only the policy the scan began with.
        self.assertIn("stopped by the policy: the rows written so far are valid; fix the policy and "
                      "start a new scan", r.stderr)

    def test_an_edited_policy_makes_another_selection(self):
        hub = self.start_hub("--models", "12")
        policy = os.path.join(self.dir, "selection.lua")
        def write(suffix):
            with open(policy, "w") as f:
                f.write('return { select_file = function(file) return file.path:match("%%.%s$") ~= nil end }\n'
                        % suffix)
        write("safetensors")
        self.scan(hub, "--download-threshold", "1", "--policy", policy, "--no-token", output="a")
        write("bin")
        self.scan(hub, "--download-threshold", "1", "--policy", policy, "--no-token", output="b")
        a, b = os.path.join(self.dir, "a"), os.path.join(self.dir, "b")
        r = run_hfscan(["diff", a, b])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("the two scans select different repos (policy_sha256: '", r.stderr)
        r = run_hfscan(["--since", a, "--policy", policy, "--no-token", "--endpoint", hub.endpoint,
                        "--download-threshold", "1", "--output-dir", os.path.join(self.dir, "c")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"--since: {scan_files(a)['extended']} was made with policy {os.path.realpath(policy)} "
                      "as it was then, and the file has been edited since", r.stderr)

    def test_hook_returning_the_wrong_type(self):
        path, r, files = self.run_policy('return { select_model = function(model) return "yes" end }\n')
        self.assertIn("policy hook 'select_model' (defined at", r.stderr)
        self.assertIn("returned a string; it must return a boolean", r.stderr)

    def test_on_row_cannot_write_a_malformed_hash(self):
        path, r, files = self.run_policy(
            'return { on_row = function(row) row.hash = "NOTAHASH"; return row end }\n')
        self.assertIn("policy hook 'on_row' (defined at", r.stderr)
        self.assertIn("a row table with a valid hash", r.stderr)
        _, _, rows = read_csv(files["extended"])
        self.assertEqual([r for r in rows if r["hash"] == "NOTAHASH"], [])

    def test_unknown_hook(self):
        path, r, files = self.run_policy('return { select_modle = function() return true end }\n')
        self.assertIn("unknown hook 'select_modle'", r.stderr)


class ScriptsAndExamplesTest(ScanCase):
    def test_scan_a_list_of_repos_whatever_their_downloads(self):
        hub = self.start_hub("--models", "30")
        truth = hub.truth()
        by_downloads = sorted({(f["downloads"], f["repo_id"]) for f in truth if not f["private"]})
        chosen = [by_downloads[0][1], by_downloads[1][1], "hfscan-test/plain-git-weights"]
        listing = os.path.join(self.dir, "repos.txt")
        with open(listing, "w") as f:
            f.write("# repos to scan\n" + "\n".join(chosen) + "\n")
        out = os.path.join(self.dir, "list-out")
        r = run_hfscan(["--script", os.path.join(EXAMPLES, "scan_repo_list.lua"), listing,
                        "--endpoint", hub.endpoint, "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        _, _, rows = read_csv(scan_files(out)["extended"])
        want = {file_key(f): f["sha256"] for f in truth
                if f["repo_id"] in chosen and is_target(f["path"])}
        self.assertEqual({(x["repo_id"], x["filename"]): x["hash"] for x in rows}, want)

    def test_audit_reports_mismatches(self):
        bad = "hfscan-test/sharded-safetensors"
        hub = self.start_hub("--models", "6", "--cdn-mismatch", bad)
        report = os.path.join(self.dir, "audit.csv")
        good = "hfscan-test/plain-git-weights"
        r = run_hfscan(["--script", os.path.join(EXAMPLES, "audit.lua"), "--endpoint", hub.endpoint,
                        "--report", report, bad, good])
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(report, newline="") as f:
            rows = list(csv.DictReader(f))
        truth = {file_key(f): f for f in hub.truth()}
        statuses = {(x["repo_id"], x["filename"]): x["status"] for x in rows}
        want = {k: ("mismatch" if k[0] == bad else "match") for k, f in truth.items()
                if k[0] in (bad, good) and is_target(k[1])}
        self.assertEqual(statuses, want)
        for x in rows:
            if x["status"] == "match":
                self.assertEqual(x["computed_sha256"], truth[(x["repo_id"], x["filename"])]["sha256"])
        r = run_hfscan(["--script", os.path.join(EXAMPLES, "audit.lua"), "--endpoint", hub.endpoint,
                        "--report", report, good])
        self.assertEqual(r.returncode, 0, r.stderr)
        # A repo that cannot be read was not audited: exit 2, counted apart.
        r = run_hfscan(["--script", os.path.join(EXAMPLES, "audit.lua"), "--endpoint", hub.endpoint,
                        "--report", report, good, "nobody/no-such-repo"])
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("0 not matching, 1 repos or files could not be read", r.stdout)

    def test_hash_local_files_in_host_and_stock_lua(self):
        names = []
        for i, size in enumerate([0, 1, 5000, 3 << 20]):
            path = os.path.join(self.dir, f"f{i}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            names.append(path)
        script = os.path.join(EXAMPLES, "hash_local.lua")
        r = run_hfscan(["--script", script] + names)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, sha256sum(names))
        module_dir = os.environ.get("HFSCAN_MODULE_DIR")
        if module_dir and os.environ.get("HFSCAN_SANITIZED") != "1":
            env = dict(os.environ, LUA_CPATH=f"{module_dir}/?.so;;",
                       LUA_PATH=f"{SOURCE_DIR}/lua/?.lua;{SOURCE_DIR}/lua/?/init.lua;;")
            r = subprocess.run(["lua5.4", script] + names, capture_output=True, text=True, env=env)
            self.assertEqual(r.stdout, sha256sum(names), r.stderr)

    def test_repl_hub_client(self):
        hub = self.start_hub("--models", "6")
        r = run_hfscan(["repl"], env={"HF_ENDPOINT": hub.endpoint},
                       input='info = hub.model_info("hfscan-test/xet-gguf")\nprint(info.id, info.sha)\n'
                             'print(#hf.sha256_files({"/dev/null"}))\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        commit = next(f["commit"] for f in hub.truth() if f["repo_id"] == "hfscan-test/xet-gguf")
        self.assertEqual(r.stdout.splitlines(), [f"hfscan-test/xet-gguf\t{commit}", "1"])
        # A failed call raises a readable error at the prompt, not table: 0x...
        r = run_hfscan(["repl"], env={"HF_ENDPOINT": hub.endpoint},
                       input='print(hub.model_info("nobody/no-such-repo").sha)\nprint("after")\n')
        self.assertIn("repository_not_found: HTTP 401", r.stderr)
        self.assertNotIn("table: 0x", r.stdout + r.stderr)
        self.assertIn("after", r.stdout, "the prompt goes on")

    def test_client_calls_inside_tasks_wait_in_the_task(self):
        hub = self.start_hub("--models", "6")
        script = os.path.join(self.dir, "tasks.lua")
        with open(script, "w") as f:
            f.write('''local c = require("hfscan.hub.client").connect()
local ids = { "hfscan-test/xet-gguf", "hfscan-test/tricky-names" }
local shas = {}
c.run(function(cc)
  for i, id in ipairs(ids) do cc.spawn(function() shas[i] = cc.model_info(id).sha end) end
  shas[3] = cc.model_info(ids[1]).sha -- a plain call in the run task itself
end)
print(shas[1], shas[2], shas[3])
local ok, err = pcall(c.loop.run, c.loop)
print(ok)
c.run(function() print(pcall(c.loop.run, c.loop)) end)
c.close()
''')
        r = run_hfscan(["--script", script], env={"HF_ENDPOINT": hub.endpoint}, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        commit = {f["repo_id"]: f["commit"] for f in hub.truth()}
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "\t".join([commit["hfscan-test/xet-gguf"],
                                              commit["hfscan-test/tricky-names"],
                                              commit["hfscan-test/xet-gguf"]]))
        self.assertEqual(lines[1], "true", "an idle loop runs and returns")
        self.assertRegex(lines[2], r"^false\t.*loop:run\(\) called from inside a task of the same loop$")

    def test_override_a_bundled_module_by_directory(self):
        hub = self.start_hub("--models", "8")
        override = os.path.join(self.dir, "mine", "hfscan", "scan")
        os.makedirs(override)
        with open(os.path.join(override, "targets.lua"), "w") as f:
            f.write('''-- only .gguf files are targets
local M = { EXTENSIONS = { ".gguf" } }
function M.extension(path) return (path:match("%.[^./]+$") or ""):lower() end
function M.is_target(path) return M.extension(path) == ".gguf" end
function M.file_type(path) return M.extension(path):sub(2) end
return M
''')
        r, files = self.scan(hub, "--download-threshold", "1",
                             env={"HFSCAN_SCRIPTS_DIR": os.path.join(self.dir, "mine")})
        _, _, rows = read_csv(files["extended"])
        self.assertTrue(rows)
        self.assertEqual({row["file_type"] for row in rows}, {"gguf"})
