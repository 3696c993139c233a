"""File names no CSV can hold as they are (the stand-in's --odd-names repo:
bytes that are not UTF-8, NUL, CR, LF, C1 controls, backslashes, formula
starts): the CSVs stay UTF-8 that Python's csv and pandas read strictly, the
names are in their documented text form, the hashes are the stand-in's truth,
and lookup, verify, db build, --since and the failed-hash update work with
the bytes of each name."""
import csv
import io
import json
import os
import sqlite3
import unittest
import urllib.request
from urllib.parse import quote

from hubfixture import GRANTED, file_key, is_target, name_text, raw_name, read_csv, run_hfscan
from test_scan import ScanTestBase

REPO = "hfscan-test/odd-names"
MODELS = "6"

# The README's examples of the text form, as the files must show them.
TEXT_FORMS = {
    "bad-\udcff-byte.bin": "bad-\\xFF-byte.bin",
    "latin1-caf\udce9.pt": "latin1-caf\\xE9.pt",
    "dir-\udcfe/inner.safetensors": "dir-\\xFE/inner.safetensors",
    "nul\x00byte.safetensors": "nul\\x00byte.safetensors",
    "line\nbreak.pth": "line\\x0Abreak.pth",
    "carriage\rreturn.onnx": "carriage\\x0Dreturn.onnx",
    "tab\tand-del\x7f.h5": "tab\\x09and-del\\x7F.h5",
    "c1-\u0085next.ptl": "c1-\\xC2\\x85next.ptl",
    "literal\\x41.pkl": "literal\\\\x41.pkl",
    "back\\slash.bin": "back\\slash.bin",
    "+plus.gguf": "'+plus.gguf",
    "-minus.bin": "'-minus.bin",
    "@at.pt": "'@at.pt",
    "'=quoted.pth": "''=quoted.pth",
    "emoji-\U0001f917.safetensors": "emoji-\U0001f917.safetensors",
}


def fetch(endpoint, repo, commit, path):
    url = f"{endpoint}/{repo}/resolve/{commit}/{quote(path, errors='surrogateescape')}"
    with urllib.request.urlopen(url) as r:
        return r.read()


class OddNamesTest(ScanTestBase):
    def setUp(self):
        super().setUp()
        self.hub = self.start_hub("--models", MODELS, "--odd-names")
        self.truth = self.hub.truth()
        self.odd = [f for f in self.truth if f["repo_id"] == REPO and is_target(f["path"])]

    def odd_rows(self, files):
        return [r for r in read_csv(files["extended"])[2] if r["repo_id"] == REPO]

    def assert_text_files(self, files):
        """Each CSV is UTF-8 with no control character but its CRLF line ends,
        read whole by Python's csv; no field starts a spreadsheet formula."""
        for kind in ("basic", "extended", "errors"):
            with open(files[kind], "rb") as f:
                data = f.read()
            text = data.decode("utf-8")  # strict: raises on any invalid byte
            controls = [c for c in text.replace("\r\n", "") if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
            self.assertEqual(controls, [], kind)
            rows = list(csv.reader(io.StringIO(text, newline="")))
            fields = [x for row in rows if row and not row[0].startswith("#") for x in row]
            self.assertFalse([x for x in fields if x[:1] in ("=", "+", "-", "@")], kind)

    def test_the_files_are_text_and_every_row_is_the_truth(self):
        self.assertEqual({f["path"] for f in self.odd}, set(TEXT_FORMS), "the stand-in's repo")
        r, files = self.scan(self.hub, "--download-threshold", "1")
        rows, _ = self.assert_rows(files, self.truth, self.hub.endpoint)
        self.assert_text_files(files)
        self.assertEqual(sorted(r["filename"] for r in rows if r["repo_id"] == REPO),
                         sorted(TEXT_FORMS.values()))
        self.assertEqual({p: name_text(p) for p in TEXT_FORMS}, TEXT_FORMS, "the README's rule")
        try:
            import pandas
        except ImportError:
            return
        for kind in ("basic", "extended"):
            frame = pandas.read_csv(files[kind], comment="#", keep_default_na=False, dtype=str,
                                    encoding="utf-8", encoding_errors="strict")
            self.assertEqual(sorted(frame[frame["repo_id"] == REPO]["filename"]),
                             sorted(TEXT_FORMS.values()), kind)

    def test_sqlite_lookup_verify_and_db_build_use_the_bytes(self):
        r, files = self.scan(self.hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        database = os.path.join(out, "hfscan.sqlite")
        want = sorted((name_text(f["path"]), raw_name(f["path"])) for f in self.odd)

        def names_in_sqlite():
            db = sqlite3.connect(database)
            got = db.execute("SELECT filename, raw_filename, typeof(raw_filename) FROM files "
                             "WHERE repo_id = ? ORDER BY filename", (REPO,)).fetchall()
            db.close()
            self.assertEqual({kind for _, _, kind in got}, {"blob"})
            return sorted((text, raw) for text, raw, _ in got)

        self.assertEqual(names_in_sqlite(), want, "kept current by the scan")
        os.remove(database)
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(names_in_sqlite(), want, "rebuilt from the CSVs")

        nul = next(f for f in self.odd if f["path"] == "nul\x00byte.safetensors")
        r = run_hfscan(["lookup", "--output-dir", out, "--json", nul["sha256"]])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([o["filename"] for o in json.loads(r.stdout)[0]["occurrences"]],
                         ["nul\\x00byte.safetensors"])

        local = os.path.join(self.dir, "local")
        for f in self.odd:
            if "\x00" in f["path"]:
                continue  # no local file can have this name: it is missing
            target = os.path.join(local, f["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(fetch(self.hub.endpoint, REPO, f["commit"], f["path"]))
        with open(os.path.join(local, "extra-\udcfa.bin"), "wb") as fh:
            fh.write(b"not published")
        r = run_hfscan(["verify", "--output-dir", out, "--json", "--repo", REPO, local])
        self.assertEqual(r.returncode, 1, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(report["missing"], ["nul\\x00byte.safetensors"])
        self.assertEqual(report["extra"], ["extra-\\xFA.bin"])
        self.assertEqual(report["changed"], [])
        self.assertEqual(sorted(report["matching"]),
                         sorted(t for p, t in TEXT_FORMS.items() if "\x00" not in p))
        r = run_hfscan(["verify", "--output-dir", out, os.path.join(local, "line\nbreak.pth")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{REPO}/line\\x0Abreak.pth@", r.stdout)
        self.assertNotIn("\n", r.stdout[:-1], "one line: the name is in its text form")

    def test_since_carries_the_names_over_as_they_were(self):
        r, old = self.scan(self.hub, "--download-threshold", "1", output="old")
        r, new = self.scan(self.hub, "--download-threshold", "1", "--since",
                           os.path.dirname(old["extended"]), output="new")
        carried = self.odd_rows(new)
        self.assertTrue(carried and all(r["carried_over_from"] for r in carried))
        drop = ("carried_over_from",)
        self.assertEqual(sorted(tuple(v for k, v in r.items() if k not in drop) for r in carried),
                         sorted(tuple(r.values()) for r in self.odd_rows(old)))
        self.assert_text_files(new)
        db = sqlite3.connect(os.path.join(os.path.dirname(new["extended"]), "hfscan.sqlite"))
        got = sorted(db.execute("SELECT filename, raw_filename FROM files WHERE repo_id = ?",
                                (REPO,)).fetchall())
        db.close()
        self.assertEqual(got, sorted((name_text(f["path"]), raw_name(f["path"])) for f in self.odd))
        r = run_hfscan(["diff", old["extended"], new["extended"]])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_the_update_of_failed_hashes_finds_files_by_their_names(self):
        # Plain git files above 1000 bytes fail as too large, then the update hashes them.
        r, files = self.scan(self.hub, "--download-threshold", "1", "--token", GRANTED,
                             "--max-file-size", "0.000001")
        failed = {r["filename"] for r in self.odd_rows(files) if r["hash"] == "FAILED_TOO_LARGE"}
        self.assertTrue({"line\\x0Abreak.pth", "literal\\\\x41.pkl", "'@at.pt"} <= failed, failed)
        r = run_hfscan(["--update-failed-hashes", "--yes", "--quiet", "--token", GRANTED,
                        "--output-dir", os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 0, r.stderr)
        truth = {file_key(f): f["sha256"] for f in self.odd}
        after = {r["filename"]: r["hash"] for r in self.odd_rows(files)}
        self.assertEqual({name: after[name] for name in failed},
                         {name: truth[(REPO, name)] for name in failed})
        _, _, errors = read_csv(files["errors"])
        self.assertEqual([e for e in errors if e["error_type"] == "file_not_found"], [],
                         "every file found by its name")
        self.assert_text_files(files)


if __name__ == "__main__":
    unittest.main()
