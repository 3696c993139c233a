"""`hfscan hash` against coreutils' sha256sum: same output, same checks, same exits."""
import os
import subprocess

from helpers import TempDirCase, run

BLOCK = 1 << 20  # HF_SHA256_FILE_BLOCK


def sha256sum(args, cwd, stdin=None):
    return subprocess.run(["sha256sum"] + args, cwd=cwd, input=stdin, capture_output=True,
                          text=True)


class HashTest(TempDirCase):
    def make_files(self):
        sizes = {"empty": 0, "one": 1, "below": BLOCK - 1, "exact": BLOCK, "above": BLOCK + 1,
                 "several": 3 * BLOCK + 17}
        names = []
        for name, size in sizes.items():
            self.write(name, os.urandom(size))
            names.append(name)
        for odd in ["with space.bin", "back\\slash.pt", "new\nline.gguf", "ünïcödé.onnx"]:
            self.write(odd, os.urandom(1000))
            names.append(odd)
        return names

    def test_output_matches_sha256sum(self):
        names = self.make_files()
        for jobs in ["1", "4"]:
            ours = run(["hash", "-j", jobs] + names, cwd=self.dir)
            theirs = sha256sum(names, cwd=self.dir)
            self.assertEqual(ours.returncode, 0, ours.stderr)
            self.assertEqual(ours.stdout, theirs.stdout)

    def test_sha256sum_accepts_our_output_and_we_accept_theirs(self):
        names = self.make_files()
        ours = run(["hash"] + names, cwd=self.dir)
        self.write("SUMS", ours.stdout)
        check = sha256sum(["-c", "SUMS"], cwd=self.dir)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        theirs = sha256sum(names, cwd=self.dir)
        self.write("THEIRS", theirs.stdout)
        ours_check = run(["hash", "-c", "THEIRS"], cwd=self.dir)
        self.assertEqual(ours_check.returncode, 0, ours_check.stderr)
        self.assertEqual(ours_check.stdout, check.stdout)

    def test_check_reports_like_sha256sum(self):
        self.write("good", b"abc")
        self.write("bad", b"abc")
        sums = sha256sum(["good", "bad"], cwd=self.dir).stdout
        self.write("bad", b"abd")
        self.write("SUMS", sums + "garbage line\n" +
                   "0" * 64 + "  missing\n")
        ours = run(["hash", "-c", "SUMS"], cwd=self.dir)
        theirs = sha256sum(["-c", "SUMS"], cwd=self.dir)
        self.assertEqual(ours.returncode, theirs.returncode)
        self.assertEqual(ours.returncode, 1)
        self.assertEqual(ours.stdout, theirs.stdout)
        self.assertEqual(ours.stdout, "good: OK\nbad: FAILED\nmissing: FAILED open or read\n")
        for warning in ["WARNING: 1 line is improperly formatted",
                        "WARNING: 1 listed file could not be read",
                        "WARNING: 1 computed checksum did NOT match",
                        "missing: No such file or directory"]:
            self.assertIn(warning, ours.stderr)
        quiet = run(["hash", "-c", "--quiet", "SUMS"], cwd=self.dir)
        self.assertNotIn("good: OK", quiet.stdout)
        status = run(["hash", "-c", "--status", "SUMS"], cwd=self.dir)
        self.assertEqual((status.stdout, status.returncode), ("", 1))

    def test_check_with_no_valid_lines(self):
        self.write("SUMS", "nothing here\n")
        r = run(["hash", "-c", "SUMS"], cwd=self.dir)
        self.assertEqual(r.returncode, sha256sum(["-c", "SUMS"], cwd=self.dir).returncode)
        self.assertIn("no properly formatted SHA256 checksum lines found", r.stderr)

    def test_missing_file_named_and_others_still_hashed(self):
        self.write("a", b"abc")
        r = run(["hash", "missing", "a", "/etc"], cwd=self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, sha256sum(["a"], cwd=self.dir).stdout)
        self.assertIn("hfscan hash: missing: No such file or directory", r.stderr)
        self.assertIn("hfscan hash: /etc: Is a directory", r.stderr)

    def test_stdin(self):
        r = run(["hash"], stdin="abc")
        self.assertEqual(r.stdout, sha256sum([], cwd=self.dir, stdin="abc").stdout)

    def test_bad_options(self):
        for args in (["-j", "0", "x"], ["-j", "many", "x"], ["--nope"]):
            r = run(["hash"] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("hfscan: hash: "), r.stderr)
