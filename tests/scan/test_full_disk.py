"""A full disk at every stage (issue 14): the output folder is a small tmpfs, so
writes fail with a real ENOSPC wherever the space runs out (the files' creation,
rows mid-scan, the metadata, the SQLite database). Each run must end with a
clear message, never leave an empty metadata file, and, once the disk has room
again, --restart must reach the same rows as an uninterrupted scan. Needs root
to mount a tmpfs; skipped with a message elsewhere. Also: the order of syncs and
progress lines that makes a power loss safe."""
import glob
import os
import subprocess
import unittest

from hubfixture import ScanCase, read_csv, run_hfscan, scan_files


def try_mount(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0


def resize(path, size):
    subprocess.run(["mount", "-o", "remount,size=%s" % size, path], check=True)


def rows_by_file(files):
    _, _, rows = read_csv(files["extended"])
    return {(r["repo_id"], r["filename"]): (r["hash"], r["hash_method"]) for r in rows}


class FullDisk(ScanCase):
    # Sizes at which the space runs out at different stages of this small scan.
    SIZES = ("8k", "16k", "24k", "40k", "64k", "96k", "160k")

    def setUp(self):
        super().setUp()
        probe = os.path.join(self.dir, "probe")
        if not try_mount(probe, "8k"):
            self.skipTest("cannot mount a tmpfs here (needs root): the full-disk cases are skipped")
        subprocess.run(["umount", probe], check=True)
        self.hub = self.start_hub("--models", "6")
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            subprocess.run(["umount", "-l", m])
        super().tearDown()

    def scan_into(self, out, *extra):
        return run_hfscan(["--endpoint", self.hub.endpoint, "--output-dir", out, "--rate-limit",
                           "0", "--quiet", "--download-threshold", "1", "--no-token", "--yes"]
                          + list(extra))

    def metadata_never_empty(self, out):
        for path in glob.glob(os.path.join(out, "scan_metadata_*.json")):
            self.assertGreater(os.path.getsize(path), 0, path)

    def test_every_stage_resumes_to_the_uninterrupted_rows(self):
        reference = os.path.join(self.dir, "reference")
        r = self.scan_into(reference)
        self.assertEqual(r.returncode, 0, r.stderr)
        want = rows_by_file(scan_files(reference))
        self.assertTrue(want)
        failed_somewhere = 0
        for size in self.SIZES:
            with self.subTest(size=size):
                out = os.path.join(self.dir, "disk-" + size)
                self.assertTrue(try_mount(out, size))
                self.mounts.append(out)
                r = self.scan_into(out)
                self.metadata_never_empty(out)
                if r.returncode != 0:
                    failed_somewhere += 1
                    self.assertRegex(r.stderr, r"No space left on device|cannot write|cannot create",
                                     r.stderr[-2000:])
                    self.assertNotIn("Traceback", r.stderr)
                    resize(out, "64m")
                    files = scan_files(out)
                    args = ["--restart"] if files["extended"] else []
                    r = self.scan_into(out, *args)
                    self.assertEqual(r.returncode, 0, "%s: %s" % (size, r.stderr[-2000:]))
                self.metadata_never_empty(out)
                self.assertEqual(rows_by_file(scan_files(out)), want, size)
        self.assertGreater(failed_somewhere, 2, "the sizes no longer make the disk run out")


class DurabilityOrder(ScanCase):
    def test_rows_are_synced_before_their_repo_is_marked_finished(self):
        hub = self.start_hub("--models", "6")
        trace = os.path.join(self.dir, "io-trace")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token", "--yes",
                             env={"HFSCAN_TEST_IO_TRACE": trace})
        with open(trace) as f:
            events = f.read().split("\n")[:-1]
        appends = [i for i, e in enumerate(events) if e == "append progress"]
        self.assertEqual(len(appends), 6, events)
        start, synced_any = 0, 0
        for i in appends:
            segment = events[start:i]
            written = {e.split(" ", 1)[1] for e in segment if e.startswith("write ")}
            synced = {e.split(" ", 1)[1] for e in segment if e.startswith("sync ")}
            # Whatever a repo wrote is on disk before the line that says it is finished.
            self.assertEqual(written, synced, events[start:i + 1])
            synced_any += len(synced)
            start = i + 1
        self.assertGreater(synced_any, 0)


if __name__ == "__main__":
    unittest.main()
