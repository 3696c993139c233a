"""The database readers (lookup, verify) never write a database in place: they
open it read-only, and a missing or stale one is built afresh under the
folder's lock and renamed into place, or read around (the CSVs) where the
folder cannot be written. The exit statuses of the database commands."""
import fcntl
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile

from hubfixture import HFSCAN, ScanCase, hfscan_env, read_csv, run_hfscan

NOBODY = 65534
UNKNOWN = "ab" * 32
DB = "hfscan.sqlite"


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def run_as_nobody(args):
    return subprocess.run([HFSCAN] + args, env=hfscan_env(), capture_output=True, text=True,
                          timeout=120, cwd="/", preexec_fn=as_nobody)


def file_state(path):
    """A file's mode, size, modification time and contents."""
    st = os.lstat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_mode, st.st_size, st.st_mtime_ns, digest)


def snapshot(folder):
    """Every file of a folder, as file_state."""
    return {name: file_state(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


def make_read_only(folder):
    for name in os.listdir(folder):
        os.chmod(os.path.join(folder, name), 0o444)
    os.chmod(folder, 0o555)


def database_rows(folder):
    db = sqlite3.connect(f"file:{os.path.join(folder, DB)}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(db.execute("SELECT repo_id, filename, hash FROM files"))
    finally:
        db.close()


def csv_rows(extended):
    _, _, rows = read_csv(extended)
    return sorted((r["repo_id"], r["filename"], r["hash"]) for r in rows)


class ReaderCase(ScanCase):
    def folder_for_nobody(self, prefix):
        """A folder user nobody can reach, removed after the test; skips the
        test where hfscan cannot be run as nobody."""
        if os.geteuid() != 0:
            self.skipTest("runs hfscan as user nobody, which needs root")
        base = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, base)
        os.chmod(base, 0o755)
        return base

    def scanned(self):
        """A scan of the stand-in: its folder, extended CSV, a known hash and the
        line lookup prints for it."""
        hub = self.start_hub("--models", "12")
        _, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        truth = next(f for f in hub.truth()
                     if f["path"] == "tiny.pkl" and f["repo_id"] == "hfscan-test/plain-git-weights")
        ts = files["extended"][-19:-4]
        line = (f"{truth['sha256']}  hfscan-test/plain-git-weights  tiny.pkl  "
                f"commit {truth['commit']}  scan {ts}\n")
        return out, files["extended"], truth["sha256"], line

    def assert_lookups(self, run, out, known, line, note=""):
        r = run(["lookup", "--output-dir", out, known])
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, line, note))
        r = run(["lookup", "--output-dir", out, UNKNOWN])
        self.assertEqual((r.returncode, r.stdout), (1, f"{UNKNOWN}  unknown\n"), r.stderr)


class ReadOnlyTest(ReaderCase):
    def test_lookup_as_another_user_on_a_read_only_copy(self):
        base = self.folder_for_nobody("hfscan-readonly-")
        out, extended, known, line = self.scanned()
        name = os.path.basename(extended)
        cases = {
            "as-the-scan-left-it": "",
            # An older hfscan left its database in WAL mode, which needs a -shm.
            "in-wal-mode": "",
            "empty": (f"hfscan lookup: {base}/empty/{DB} is empty (0 bytes) (cannot build it: "
                      f"cannot lock {base}/empty: Permission denied); reading the CSVs "
                      "instead\n"),
            "stale": (f"hfscan lookup: {base}/stale/{DB} is older than {name} (cannot build it: "
                      f"cannot lock {base}/stale: Permission denied); reading the CSVs "
                      "instead\n"),
        }
        for case, note in cases.items():
            with self.subTest(case):
                copy = os.path.join(base, case)
                shutil.copytree(out, copy)
                db = os.path.join(copy, DB)
                with open(db, "rb") as f:
                    # A scan leaves its database out of WAL mode: one file, readable anywhere.
                    self.assertEqual(f.read(20)[18], 1)
                if case == "in-wal-mode":
                    c = sqlite3.connect(db)
                    c.execute("PRAGMA journal_mode=WAL")
                    c.close()
                    with open(db, "rb") as f:
                        self.assertEqual(f.read(20)[18], 2)  # the header says WAL
                if case == "empty":
                    open(db, "wb").close()
                if case == "stale":
                    os.utime(db, ns=(0, os.stat(os.path.join(copy, name)).st_mtime_ns - 10**9))
                make_read_only(copy)
                before = snapshot(copy)
                self.assert_lookups(run_as_nobody, copy, known, line, note)
                self.assertEqual(snapshot(copy), before)


class RebuildTest(ReaderCase):
    def test_a_stale_database_is_replaced_not_written_in_place(self):
        out, extended, known, _ = self.scanned()
        with open(extended, "rb") as f:
            data = f.read()
        fresh = "cd" * 32
        self.assertEqual(data.count(known.encode()), 1)
        with open(extended, "wb") as f:
            f.write(data.replace(known.encode(), fresh.encode()))
        db = os.path.join(out, DB)
        os.utime(db, ns=(0, os.stat(extended).st_mtime_ns - 10**9))
        old = os.path.join(self.dir, "old.sqlite")
        os.link(db, old)  # the old file, whatever its name comes to mean
        old_state = file_state(old)
        r = run_hfscan(["lookup", "--output-dir", out, fresh])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(f"{fresh}  hfscan-test/plain-git-weights  tiny.pkl  "),
                        r.stdout)
        self.assertEqual(r.stderr, f"hfscan lookup: {db} is older than "
                                   f"{os.path.basename(extended)}; built it from the CSVs\n")
        self.assertEqual(file_state(old), old_state)
        self.assertNotEqual(os.stat(db).st_ino, os.stat(old).st_ino)
        self.assertEqual(database_rows(out), csv_rows(extended))
        r = run_hfscan(["lookup", "--output-dir", out, known])
        self.assertEqual((r.returncode, r.stderr), (1, ""))

    def test_an_empty_database_is_built_again(self):
        out, extended, known, line = self.scanned()
        db = os.path.join(out, DB)
        open(db, "wb").close()
        self.assert_lookups(run_hfscan, out, known, line,
                            f"hfscan lookup: {db} is empty (0 bytes); built it from the CSVs\n")
        self.assertEqual(database_rows(out), csv_rows(extended))

    def test_concurrent_lookups_on_a_folder_without_a_database(self):
        out, extended, known, line = self.scanned()
        os.remove(os.path.join(out, DB))
        procs = [subprocess.Popen([HFSCAN, "lookup", "--output-dir", out, known], env=hfscan_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        for p in procs:
            stdout, stderr = p.communicate(timeout=120)
            self.assertEqual((p.returncode, stdout), (0, line), stderr)
        self.assertEqual(database_rows(out), csv_rows(extended))
        self.assertEqual(sorted(n for n in os.listdir(out) if DB in n), [DB])

    def test_a_reader_builds_only_under_the_folder_lock(self):
        out, extended, known, line = self.scanned()
        os.remove(os.path.join(out, DB))
        before = snapshot(out)
        # As another lookup building the database (or a scan) would hold it.
        with open(os.path.join(out, ".hfscan.lock"), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            r = run_hfscan(["lookup", "--output-dir", out, known])
        self.assertEqual((r.returncode, r.stdout), (0, line), r.stderr)
        self.assertRegex(r.stderr, r"^hfscan lookup: .*/hfscan\.sqlite is missing \(cannot build "
                                   r"it: another hfscan \(pid \d+\) is writing to .*; wait "
                                   r"for it to end\); reading the CSVs instead\n$")
        self.assertEqual(snapshot(out), before)


class ExitStatusTest(ReaderCase):
    """0: all found or matching; 1: some unknown or different; 2: trouble."""

    def test_db_build(self):
        out, extended, _, _ = self.scanned()
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(database_rows(out), csv_rows(extended))
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        missing = os.path.join(self.dir, "missing")
        cases = [
            (missing, f"hfscan db: {missing}: no such folder\n"),
            (empty, f"hfscan db: no scan in {empty} (no hf_model_hashes_extended_*.csv)\n"),
        ]
        for folder, message in cases:
            r = run_hfscan(["db", "build", "--output-dir", folder])
            self.assertEqual((r.returncode, r.stderr), (2, message))
        self.assertEqual(os.listdir(empty), [])
        self.assertFalse(os.path.exists(missing))
        with open(os.path.join(out, ".hfscan.lock"), "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"^hfscan db: another hfscan \(pid \d+\) is writing to ")

    def test_verify_of_an_unreadable_file_is_trouble(self):
        base = self.folder_for_nobody("hfscan-unreadable-")
        out, _, _, _ = self.scanned()
        os.chmod(self.dir, 0o755)  # so that nobody reaches the scan
        secret = os.path.join(base, "secret.bin")
        with open(secret, "wb") as f:
            f.write(b"weights")
        os.chmod(secret, 0o600)
        r = run_as_nobody(["verify", "--output-dir", out, secret])
        self.assertEqual((r.returncode, r.stderr), (2, ""))
        self.assertEqual(r.stdout, f"error    {secret}  {secret}: Permission denied\n")
        # A repo's file that cannot be read: neither "changed" nor a match.
        folder = os.path.join(base, "repo")
        os.makedirs(folder)
        shutil.copy(secret, os.path.join(folder, "tiny.pkl"))
        r = run_as_nobody(["verify", "--output-dir", out, "--repo",
                           "hfscan-test/plain-git-weights", folder])
        self.assertEqual((r.returncode, r.stderr), (2, ""))
        self.assertIn(f"error    tiny.pkl  {folder}/tiny.pkl: Permission denied\n", r.stdout)
        self.assertNotIn("changed", r.stdout)
