"""A scan's manifest (the size and SHA-256 of each of its files), `hfscan db
check`, and --repair of rows that are not what hfscan writes (issue 15)."""
import glob
import hashlib
import json
import os
import shutil
import sqlite3

from hubfixture import GRANTED, ScanCase, read_csv, run_hfscan, scan_files

KINDS = ("errors", "basic", "extended", "progress", "metadata")
BAD_HASH = "hash 'NOTAHASH' is neither 64 lowercase hex digits nor a FAILED_* marker"


def paths_of(files):
    """The five files a manifest covers, and the manifest, of scan_files' answer."""
    extended = files["extended"]
    paths = {kind: extended.replace("hf_model_hashes_extended_", prefix)
             for kind, prefix in (("errors", "hf_scan_errors_"), ("basic", "hf_model_hashes_basic_"),
                                  ("progress", "hf_scan_progress_"))}
    paths["extended"] = extended
    ts = extended[-len("YYYYMMDD_HHMMSS.csv"):-len(".csv")]
    folder = os.path.dirname(extended)
    paths["metadata"] = os.path.join(folder, f"scan_metadata_{ts}.json")
    paths["manifest"] = os.path.join(folder, f"hf_scan_manifest_{ts}.json")
    return paths


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def check(folder, *args):
    return run_hfscan(["db", "check", "--output-dir", folder] + list(args))


def replace_once(path, old, new):
    data = file_bytes(path)
    assert old in data, (path, old)
    with open(path, "wb") as f:
        f.write(data.replace(old, new, 1))


def first_hash(path):
    return next(r["hash"] for r in read_csv(path)[2] if not r["hash"].startswith("FAILED"))


def line_of(path, prefix):
    """The 1-based line of a file that starts with prefix."""
    text = file_bytes(path).decode()
    return next(i for i, line in enumerate(text.split("\r\n"), 1) if line.startswith(prefix))


class ManifestTest(ScanCase):
    def scan6(self, *args, output="out", expect=0):
        self.hub = getattr(self, "hub", None) or self.start_hub("--models", "6")
        r, files = self.scan(self.hub, "--download-threshold", "1", "--no-token", *args,
                             output=output, expect=expect)
        return paths_of(files)

    def assert_clean(self, paths):
        r = check(os.path.dirname(paths["extended"]))
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, f"{paths['extended']}: all 5 files match the manifest; every row is "
                             "well-formed\n", ""))

    def test_a_scan_writes_a_manifest_of_its_files(self):
        paths = self.scan6()
        with open(paths["manifest"]) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["manifest_version"], 1)
        recorded = {(e["kind"], e["name"], e["size"], e["sha256"]) for e in manifest["files"]}
        actual = {(kind, os.path.basename(paths[kind]), len(file_bytes(paths[kind])),
                   hashlib.sha256(file_bytes(paths[kind])).hexdigest()) for kind in KINDS}
        self.assertEqual(recorded, actual)
        self.assert_clean(paths)

    def test_a_changed_a_truncated_and_a_grown_file_are_named(self):
        paths = self.scan6()
        out = os.path.dirname(paths["extended"])
        size = len(file_bytes(paths["extended"]))
        copies = {}
        for case in ("changed", "truncated", "grown", "bad_row"):
            copies[case] = os.path.join(self.dir, case)
            shutil.copytree(out, copies[case])
        ext = {case: os.path.join(folder, os.path.basename(paths["extended"]))
               for case, folder in copies.items()}
        # One hash changed for another well-formed one: only the manifest can tell.
        old = first_hash(paths["extended"])
        new = ("0" if old[0] != "0" else "1") + old[1:]
        replace_once(ext["changed"], old.encode(), new.encode())
        with open(ext["truncated"], "r+b") as f:
            f.truncate(size - 100)
        row = b"0" * 64 + b",extra.bin,someone/else,1,.bin,,,api_metadata," + b"a" * 40 + b"\r\n"
        with open(ext["grown"], "ab") as f:
            f.write(row)
        replace_once(ext["bad_row"], old.encode() + b",", b"NOTAHASH,")
        changed_sha = hashlib.sha256(file_bytes(ext["changed"])).hexdigest()
        recorded_sha = hashlib.sha256(file_bytes(paths["extended"])).hexdigest()
        expected = {
            "changed": f"changed: {size} bytes as recorded, but another SHA-256 ({changed_sha}, "
                       f"recorded {recorded_sha})",
            "truncated": f"truncated to {size - 100} of {size} bytes",
            "grown": f"grew by {len(row)} bytes after its first {size} bytes, which are unchanged: "
                     "a run in progress or killed after the manifest was written (hfscan --restart "
                     "finishes it)",
        }
        for case, how in expected.items():
            r = check(copies[case])
            self.assertEqual((r.returncode, r.stderr), (1, ""), case)
            self.assertEqual(r.stdout.splitlines()[0], f"{ext[case]}: {how}", case)
            self.assertEqual(r.stdout.splitlines()[-1],
                             f"{ext[case]}: 1 of 5 files differ from the manifest; 0 bad rows", case)
        r = check(copies["bad_row"])
        line = line_of(ext["bad_row"], "NOTAHASH,")
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{ext['bad_row']}:{line}: {BAD_HASH}\n", r.stdout)
        self.assertTrue(r.stdout.endswith(f"{ext['bad_row']}: 1 of 5 files differ from the manifest; "
                                          "1 bad row\n"), r.stdout)

    def test_a_killed_scan_shows_as_grown_and_its_restart_matches_again(self):
        hub = self.hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token",
                             env={"HFSCAN_TEST_CRASH": "after_extended:3"}, expect=None)
        self.assertEqual(r.returncode, -9, r.stderr[-2000:])
        paths = paths_of(files)
        out = os.path.dirname(paths["extended"])
        r = check(out)
        self.assertEqual(r.returncode, 1, r.stderr)
        grown = [line for line in r.stdout.splitlines() if "grew by" in line]
        self.assertIn(paths["extended"], [line.split(": ", 1)[0] for line in grown])
        for line in grown:
            self.assertTrue(line.endswith("which are unchanged: a run in progress or killed after "
                                          "the manifest was written (hfscan --restart finishes it)"))
        self.assertEqual(len(grown), len(r.stdout.splitlines()) - 1, "nothing but growth")
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token", "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assert_clean(paths)

    def test_a_restarts_repair_is_recorded_before_it_scans(self):
        """A restart killed after its repair leaves a manifest of the repaired files."""
        paths = self.scan6()
        with open(paths["metadata"]) as f:
            meta = json.load(f)
        meta["status"] = "interrupted"
        with open(paths["metadata"], "w") as f:
            json.dump(meta, f)
        with open(paths["extended"], "ab") as f:
            f.write(b"deadbeef,torn")  # a row cut short by a kill
        r = run_hfscan(["--restart", "--output-dir", os.path.dirname(paths["extended"]), "--no-token",
                        "--quiet"], env={"HFSCAN_TEST_CRASH": "before_metadata:1"})
        self.assertEqual(r.returncode, -9, r.stderr[-2000:])
        self.assertNotIn(b"deadbeef", file_bytes(paths["extended"]), "repaired")
        self.assert_clean(paths)

    def test_update_failed_hashes_leaves_a_matching_manifest(self):
        paths = self.scan6("--max-file-size", str(1500 / 1024 ** 3))
        before = file_bytes(paths["extended"])
        self.assertTrue(b"FAILED_TOO_LARGE" in before, "a row for the update to fix")
        r = run_hfscan(["--update-failed-hashes", "--yes", "--quiet", "--output-dir",
                        os.path.dirname(paths["extended"]), "--token", GRANTED])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertNotEqual(file_bytes(paths["extended"]), before, "the update rewrote the file")
        self.assert_clean(paths)

    def test_db_check_of_a_folder_without_scans_or_manifest_exits_2(self):
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        for args in ((), ("--all",)):
            r = check(empty, *args)
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (2, "", f"hfscan db: no scan in {empty} (no hf_model_hashes_extended_*.csv)\n"))
        paths = self.scan6()
        os.remove(paths["manifest"])  # as a scan made before manifests
        r = check(os.path.dirname(paths["extended"]))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", (
            f"hfscan db: {paths['extended']}: no manifest ({os.path.basename(paths['manifest'])}): a "
            f"scan made before manifests; hfscan --restart-from {paths['extended']} writes one (and "
            "finishes the scan if it is not)\n")))
        before = {p: file_bytes(p) for p in glob.glob(os.path.join(os.path.dirname(paths["extended"]), "*"))}
        r = run_hfscan(["--restart-from", paths["extended"], "--no-token"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"hfscan: wrote {paths['manifest']}: it records the scan's files as they are now\n",
                      r.stderr)
        after = {p: file_bytes(p) for p in before}
        self.assertEqual(after, before, "nothing else written")
        self.assert_clean(paths)

    def test_all_checks_every_scan_of_the_folder(self):
        older = self.scan6()
        newer = self.scan6()
        self.assertNotEqual(older["extended"], newer["extended"])
        with open(older["errors"], "ab") as f:
            f.write(b"x")
        self.assert_clean(newer)
        r = check(os.path.dirname(older["extended"]), "--all")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines(), [
            f"{older['errors']}: grew by 1 byte after its first {len(file_bytes(older['errors'])) - 1} "
            "bytes, which are unchanged: a run in progress or killed after the manifest was written "
            "(hfscan --restart finishes it)",
            f"{older['extended']}: 1 of 5 files differ from the manifest; 0 bad rows",
            f"{newer['extended']}: all 5 files match the manifest; every row is well-formed"])


class RepairTest(ScanCase):
    def test_repair_drops_a_bad_row_with_a_report_and_the_rest_builds(self):
        hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token")
        paths = paths_of(files)
        out = os.path.dirname(paths["extended"])
        rows = read_csv(paths["extended"])[2]
        bad = next(r for r in rows if not r["hash"].startswith("FAILED"))
        replace_once(paths["extended"], bad["hash"].encode() + b",", b"NOTAHASH,")
        line = line_of(paths["extended"], "NOTAHASH,")
        where = f"{paths['extended']}:{line}: {BAD_HASH}"
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual((r.returncode, r.stderr), (2, f"hfscan db: {where} (--repair drops such rows, "
                                                       "each reported)\n"))
        r = run_hfscan(["db", "build", "--output-dir", out, "--repair"])
        self.assertEqual((r.returncode, r.stderr), (0, f"hfscan db: --repair: dropped {where}\n"
                                                       "hfscan db: --repair: dropped 1 malformed row\n"))
        self.assertEqual(r.stdout, f"{out}/hfscan.sqlite: {len(rows) - 1} rows from 1 scans\n")
        db = sqlite3.connect(os.path.join(out, "hfscan.sqlite"))
        stored = {(repo, name, h) for repo, name, h in db.execute("SELECT repo_id, filename, hash FROM files")}
        db.close()
        self.assertEqual(stored, {(r["repo_id"], r["filename"], r["hash"]) for r in rows if r is not bad})
        # merge without --repair: refused as it streams, and nothing is left.
        merged = os.path.join(self.dir, "merged")
        r = run_hfscan(["merge", "--output-dir", merged, out])
        self.assertEqual((r.returncode, r.stderr), (2, f"hfscan merge: {where} (--repair drops such "
                                                       "rows, each reported)\n"))
        self.assertFalse(os.path.exists(merged), "a refused merge leaves no folder behind")
        # merge --repair: the rest merged, into a scan with a manifest of its own.
        r = run_hfscan(["merge", "--repair", "--output-dir", merged, out])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, f"hfscan merge: --repair: dropped {where}\n"
                                   "hfscan merge: --repair: dropped 1 malformed row\n")
        merged_rows = read_csv(scan_files(merged)["extended"])[2]
        self.assertEqual(len(merged_rows), len(rows) - 1)
        r = check(merged)
        self.assertEqual(r.returncode, 0, r.stdout)
        # --since --repair scans that repo again instead of carrying it over.
        r = run_hfscan(["--since", out, "--repair", "--output-dir", os.path.join(self.dir, "next"),
                        "--endpoint", hub.endpoint, "--no-token", "--download-threshold", "1",
                        "--rate-limit", "0", "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(f"hfscan: --repair: dropped {where}\n", r.stderr)
        again = {(x["repo_id"], x["filename"]): x
                 for x in read_csv(scan_files(os.path.join(self.dir, "next"))["extended"])[2]}
        row = again[(bad["repo_id"], bad["filename"])]
        self.assertEqual((row["hash"], row["carried_over_from"]), (bad["hash"], ""))
