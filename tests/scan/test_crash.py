"""Crash tests beyond the named hooks (issue 14): an LD_PRELOAD shim
(tests/crash/kill_shim.c) kills the scan with SIGKILL at a random one of its
writes, renames and fsyncs in the output folder, half of the killing writes torn;
every killed scan must resume, by --restart, to exactly the rows of a scan that
was never killed. The instants are drawn from a seed that a failure prints."""
import os
import random
import unittest

from hubfixture import ScanCase, read_csv, run_hfscan, scan_files

SHIM = os.environ.get("HFSCAN_KILL_SHIM")
SANITIZED = os.environ.get("HFSCAN_SANITIZED", "").upper() in ("1", "ON", "TRUE", "YES")
KILLS_PER_RUN = 6


def rows_by_file(files):
    _, _, rows = read_csv(files["extended"])
    return {(r["repo_id"], r["filename"]): (r["hash"], r["hash_method"]) for r in rows}


@unittest.skipIf(not SHIM or SANITIZED, "needs the kill shim of a build without sanitizers "
                 "(an ASan runtime must come first in LD_PRELOAD)")
class KilledAtRandomCalls(ScanCase):
    def scan_into(self, out, *extra, shim_env=None):
        env = None
        if shim_env:
            env = dict(shim_env, LD_PRELOAD=SHIM, HFSCAN_CRASH_DIR=os.path.realpath(out))
        return run_hfscan(["--endpoint", self.hub.endpoint, "--output-dir", out, "--rate-limit",
                           "0", "--quiet", "--download-threshold", "1", "--no-token", "--yes"]
                          + list(extra), env=env)

    def test_every_killed_scan_resumes_exactly(self):
        self.hub = self.start_hub("--models", "8")
        reference = os.path.join(self.dir, "reference")
        os.makedirs(reference)
        counted = os.path.join(self.dir, "calls")
        r = self.scan_into(reference, shim_env={"HFSCAN_CRASH_AT": "0",
                                                "HFSCAN_CRASH_COUNT": counted})
        self.assertEqual(r.returncode, 0, r.stderr)
        want = rows_by_file(scan_files(reference))
        with open(counted) as f:
            calls = int(f.read())
        self.assertGreater(calls, 20)
        seed = int(os.environ.get("HFSCAN_CRASH_SEED") or random.randrange(1 << 30))
        rng = random.Random(seed)
        for n in range(KILLS_PER_RUN):
            at, torn = rng.randint(1, calls), n % 2
            with self.subTest(at=at, torn=torn, seed=seed):
                out = os.path.join(self.dir, "killed-%d" % n)
                os.makedirs(out)
                r = self.scan_into(out, shim_env={"HFSCAN_CRASH_AT": str(at),
                                                  "HFSCAN_CRASH_TORN": str(torn)})
                self.assertIn(r.returncode, (-9, 0), r.stderr[-2000:])
                if r.returncode == -9:
                    files = scan_files(out)
                    args = ["--restart"] if files["extended"] else []
                    r = self.scan_into(out, *args)
                self.assertEqual(r.returncode, 0, "seed %d, call %d: %s" % (seed, at, r.stderr[-2000:]))
                self.assertEqual(rows_by_file(scan_files(out)), want, "seed %d, call %d" % (seed, at))

    def test_a_restart_killed_at_every_step_of_its_repair_resumes_exactly(self):
        """The repair a restart makes first (the database brought to the resume
        point, the files cut there) killed at each of its writes, renames,
        cuts and fsyncs in turn, half torn: the next restart still ends with
        the rows of a scan never killed (issue 16)."""
        import shutil
        self.hub = self.start_hub("--models", "8")
        reference = os.path.join(self.dir, "reference")
        os.makedirs(reference)
        r = self.scan_into(reference)
        self.assertEqual(r.returncode, 0, r.stderr)
        want = rows_by_file(scan_files(reference))
        cut = os.path.join(self.dir, "cut")
        r = run_hfscan(["--endpoint", self.hub.endpoint, "--output-dir", cut, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1", "--no-token"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:3"})
        self.assertEqual(r.returncode, -9, r.stderr[-2000:])
        counted = os.path.join(self.dir, "calls")
        first = os.path.join(self.dir, "first")
        shutil.copytree(cut, first)
        r = self.scan_into(first, "--restart", shim_env={"HFSCAN_CRASH_AT": "0",
                                                         "HFSCAN_CRASH_COUNT": counted})
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(counted) as f:
            calls = int(f.read())
        # The repair's calls come before the first repo's: the lock, the log's
        # first lines, the database's (its -shm, its catch-up), the cuts of the
        # basic and extended files and their fsyncs: about 28 here.
        for at in range(1, min(calls, 32) + 1):
            with self.subTest(at=at):
                out = os.path.join(self.dir, "killed-%d" % at)
                shutil.copytree(cut, out)
                r = self.scan_into(out, "--restart", shim_env={"HFSCAN_CRASH_AT": str(at),
                                                               "HFSCAN_CRASH_TORN": str(at % 2)})
                self.assertIn(r.returncode, (-9, 0), r.stderr[-2000:])
                r = self.scan_into(out, "--restart")
                self.assertIn(r.returncode, (0,), "call %d: %s" % (at, r.stderr[-2000:]))
                self.assertEqual(rows_by_file(scan_files(out)), want, "call %d" % at)


if __name__ == "__main__":
    unittest.main()
