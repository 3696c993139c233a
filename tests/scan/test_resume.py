"""Resuming after kill -9 at every point, --update-failed-hashes, and damaged files."""
import collections
import glob
import os
import resource
import shutil
import signal
import subprocess
import time

from hubfixture import (GRANTED, NOT_GRANTED, ScanCase, file_key, read_csv, run_hfscan, scan_files,
                        start_hfscan)


def rows_of(files):
    """The rows of a scan's three files, as multisets (error timestamps and
    reasons aside, which differ from run to run)."""
    _, _, ext = read_csv(files["extended"])
    _, _, basic = read_csv(files["basic"])
    _, _, errors = read_csv(files["errors"])
    return (collections.Counter(tuple(sorted(r.items())) for r in ext),
            collections.Counter(tuple(sorted(r.items())) for r in basic),
            collections.Counter((e["repo_id"], e["filename"], e["error_type"]) for e in errors))


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class ResumeTest(ScanCase):
    WORLD = ("--models", "20", "--latency-ms", "5")

    def baseline(self, hub, *args):
        r, files = self.scan(hub, "--download-threshold", "1", *args, output="baseline")
        return rows_of(files)

    def crashed_scan(self, hub, point, output, *args):
        out = os.path.join(self.dir, output)
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet", "--download-threshold", "1"] + list(args),
                       env={"HFSCAN_TEST_CRASH": point})
        self.assertEqual(r.returncode, -signal.SIGKILL, f"{point}: {r.stderr[-2000:]}")
        return out

    def resume(self, out, *args):
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"] + list(args))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        return scan_files(out)

    def test_kill_at_every_point_then_restart_gives_the_uninterrupted_rows(self):
        hub = self.start_hub(*self.WORLD)
        want = self.baseline(hub)
        points = ["start:0", "after_errors:1", "after_errors:6", "after_basic:3", "after_basic:9",
                  "after_extended:4", "after_extended:12", "before_metadata:0"]
        for i, point in enumerate(points):
            out = self.crashed_scan(hub, point, f"crash{i}")
            with open(scan_files(out)["extended"], "rb") as f:
                self.assertTrue(f.read().endswith(b"\r\n"), point)
            hub.clear_log()
            files = self.resume(out)
            got = rows_of(files)
            self.assertEqual(got[0], want[0], f"extended rows after {point}")
            self.assertEqual(got[1], want[1], f"basic rows after {point}")
            self.assertEqual(got[2], want[2], f"error rows after {point}")

    def test_finished_repos_get_no_request_on_restart(self):
        hub = self.start_hub(*self.WORLD)
        out = self.crashed_scan(hub, "after_extended:10", "c")
        _, _, progress = read_csv_plain(scan_files(out)["extended"].replace(
            "hf_model_hashes_extended_", "hf_scan_progress_"))
        finished = {row[0] for row in progress}
        self.assertEqual(len(finished), 9, "the 10th repo wrote its rows but not its progress line")
        # The stand-in logs a request before answering it: the log is whole.
        hub.clear_log()
        self.resume(out)
        for req in hub.requests():
            for repo in finished:
                self.assertNotIn(f"/{repo}/", req["path"] + "/", f"request for finished {repo}")
        with open(scan_files(out)["metadata"]) as f:
            meta = __import__("json").load(f)
        self.assertEqual(meta["resumed"], 1)
        _, _, rows = read_csv(scan_files(out)["extended"])
        self.assertEqual(meta["total_files_processed"], len(rows), "totals cover the whole scan")

    def test_restart_of_a_completed_scan_does_nothing(self):
        hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token")
        before = {p: open(p, "rb").read() for p in glob.glob(os.path.join(self.dir, "out", "*"))}
        hub.clear_log()
        r = run_hfscan(["--restart", "--output-dir", os.path.join(self.dir, "out"), "--no-token"])
        self.assertEqual((r.returncode, r.stderr),
                         (0, f"hfscan: {files['extended']} is already completed; nothing to do\n"))
        self.assertEqual(hub.requests(), [], "the Hub is not listed again")
        after = {p: open(p, "rb").read() for p in glob.glob(os.path.join(self.dir, "out", "*"))}
        self.assertEqual(after, before, "nothing written")

    def test_a_resumed_scans_metadata_covers_every_run(self):
        hub = self.start_hub("--models", "6")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token")
        with open(files["metadata"]) as f:
            meta = __import__("json").load(f)
        # As if the first run had been interrupted after these costs.
        meta.update(status="interrupted", duration_seconds=100.25, rate_limit_wait_seconds=7.5,
                    rate_limited_responses=3, requests_by_bucket={"api": 1000, "pages": 2})
        with open(files["metadata"], "w") as f:
            __import__("json").dump(meta, f)
        r = run_hfscan(["--restart", "--output-dir", os.path.dirname(files["extended"]),
                        "--no-token", "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        with open(files["metadata"]) as f:
            after = __import__("json").load(f)
        self.assertEqual(after["status"], "completed")
        self.assertGreaterEqual(after["duration_seconds"], 100.25)
        self.assertGreaterEqual(after["rate_limit_wait_seconds"], 7.5)
        self.assertGreaterEqual(after["rate_limited_responses"], 3)
        self.assertGreaterEqual(after["requests_by_bucket"]["api"], 1000)
        self.assertGreaterEqual(after["requests_by_bucket"]["pages"], 2)
        self.assertEqual(after["resumed"], 1)

    def test_sigkill_from_outside_mid_download(self):
        hub = self.start_hub("--models", "4", "--large-file-size", "300000000")
        want = self.baseline(hub)
        repos = {f["repo_id"] for f in hub.truth() if not f["private"]}
        for extra_delay in (0.0, 0.3):
            out = os.path.join(self.dir, f"ext{extra_delay}")
            proc = start_hfscan(["--endpoint", hub.endpoint, "--output-dir", out,
                                 "--rate-limit", "0", "--quiet", "--download-threshold", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Every repo but the one with the 300 MB plain-git file is done: that
            # download is what the scan is doing now.
            while proc.poll() is None and finished_count(out) < len(repos) - 1:
                time.sleep(0.005)
            time.sleep(extra_delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.assertEqual(proc.returncode, -signal.SIGKILL, "the scan was still running")
            self.assertEqual(finished_count(out), len(repos) - 1)
            files = self.resume(out)
            self.assertEqual(rows_of(files), want, f"after a kill {extra_delay} s into the download")

    def test_disk_full_stops_with_whole_rows_and_restart_completes(self):
        """A write refused half-way (a full disk; here the file-size limit, which
        gives the same partial write and then EFBIG) stops the scan with a message
        naming the file, leaves only whole rows, and a restart completes it."""
        hub = self.start_hub(*self.WORLD)
        want = self.baseline(hub)
        for limit in (3000, 7000):
            out = os.path.join(self.dir, f"full{limit}")
            cap = lambda limit=limit: resource.setrlimit(  # noqa: E731
                resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                            "--quiet", "--download-threshold", "1"], preexec_fn=cap)
            self.assertEqual(r.returncode, 1, r.stderr[-2000:])
            self.assertRegex(r.stderr, r"cannot write the database: cannot write .*"
                             r"hf_model_hashes_\w+\.csv: File too large")
            self.assertIn("resume with: hfscan --restart --output-dir " + out, r.stderr)
            files = scan_files(out)
            for kind in ("extended", "basic", "errors"):
                data = file_bytes(files[kind])
                self.assertLessEqual(len(data), limit)
                self.assertTrue(data.endswith(b"\r\n"), f"{kind} ends on a whole row")
            self.assertLess(finished_count(out), 20, "the limit stopped the scan early")
            self.assertEqual(rows_of(self.resume(out)), want, f"restart after a limit of {limit}")

    def test_one_writer_per_output_folder(self):
        hub = self.start_hub("--models", "12", "--latency-ms", "40")
        out = os.path.join(self.dir, "busy")
        first = start_hfscan(["--endpoint", hub.endpoint, "--output-dir", out,
                              "--rate-limit", "0", "--quiet", "--download-threshold", "1",
                              "--max-workers", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while first.poll() is None and finished_count(out) < 1:
                time.sleep(0.01)
            self.assertIsNone(first.poll(), "the first scan is still running")
            before = sorted(os.listdir(out))
            message = f"another hfscan (pid {first.pid}) is writing to {out}; wait for it to end\n"
            # db build's trouble is exit 2, as for every database command.
            for args, prefix, status in (
                    (["--endpoint", hub.endpoint, "--output-dir", out], "hfscan: ", 1),
                    (["--restart", "--output-dir", out], "hfscan: ", 1),
                    (["db", "build", "--output-dir", out], "hfscan db: ", 2)):
                r = run_hfscan(args)
                self.assertEqual((r.returncode, r.stderr), (status, prefix + message), args)
            self.assertEqual(sorted(os.listdir(out)), before, "nothing was added")
        finally:
            self.assertEqual(first.wait(300), 0)
        self.assertEqual(finished_count(out), 12 - 1, "the first scan finished alone")
        r = run_hfscan(["db", "build", "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_restart_of_an_authenticated_scan_needs_the_token(self):
        hub = self.start_hub("--models", "10")
        r, want = self.scan(hub, "--download-threshold", "1", "--token", GRANTED, output="want")
        out = self.crashed_scan(hub, "after_extended:2", "c", "--token", GRANTED)
        before = {k: file_bytes(p) for k, p in scan_files(out).items() if p and os.path.exists(p)}
        r = run_hfscan(["--restart", "--output-dir", out])
        self.assertEqual(r.returncode, 1)
        self.assertIn("this scan was made with a token: give it again (--token, HF_TOKEN or the "
                      "token file) to resume it", r.stderr)
        after = {k: file_bytes(p) for k, p in scan_files(out).items() if p and os.path.exists(p)}
        self.assertEqual({k: v for k, v in after.items() if k != "log"},
                         {k: v for k, v in before.items() if k != "log"}, "files untouched")
        files = self.resume(out, "--token", GRANTED)
        self.assertEqual(rows_of(files), rows_of(want))

    def test_restart_of_an_anonymous_scan_stays_anonymous(self):
        hub = self.start_hub("--models", "10")
        want = self.baseline(hub)
        out = self.crashed_scan(hub, "after_extended:2", "anon")
        r = run_hfscan(["--restart", "--output-dir", out, "--token", GRANTED])
        self.assertEqual(r.returncode, 1)
        self.assertIn("this scan was made without a token: resume it without --token", r.stderr)
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"], env={"HF_TOKEN": GRANTED})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the one from HF_TOKEN or the token file is not used", r.stderr)
        self.assertEqual(rows_of(scan_files(out)), want)

    def test_parameters_come_from_the_files_unless_given(self):
        hub = self.start_hub(*self.WORLD)
        out = self.crashed_scan(hub, "after_extended:3", "p", "--max-workers", "3",
                                "--max-file-size", "0.5")
        r = run_hfscan(["--restart", "--output-dir", out, "--max-workers", "2"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("download_threshold = 1 (from the scan's files)", r.stderr)
        self.assertIn("max_file_size_gb = 0.5 (from the scan's files)", r.stderr)
        self.assertIn(f"endpoint = {hub.endpoint} (from the scan's files)", r.stderr)
        self.assertIn("max_workers = 2 (from the command line)", r.stderr)

    def test_restart_from_names_the_extended_csv(self):
        hub = self.start_hub(*self.WORLD)
        want = self.baseline(hub)
        out = self.crashed_scan(hub, "after_basic:5", "named")
        r = run_hfscan(["--restart-from", scan_files(out)["extended"], "--quiet"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(rows_of(scan_files(out)), want)


def finished_count(out):
    files = scan_files(out)
    if not files["extended"]:
        return 0
    progress = files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
    try:
        with open(progress, "rb") as f:
            return max(0, f.read().count(b"\r\n") - 1)
    except OSError:
        return 0


def read_csv_plain(path):
    import csv
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return None, rows[0], rows[1:]


class DamagedFilesTest(ScanCase):
    def make_scan(self):
        hub = self.start_hub("--models", "10")
        r, files = self.scan(hub, "--download-threshold", "1")
        return hub, files

    def assert_refused(self, args, message, files, status=1):
        before = {p: file_bytes(p) for p in files.values()}
        r = run_hfscan(args)
        self.assertEqual(r.returncode, status, r.stderr)
        self.assertIn(message, r.stderr)
        for p, data in before.items():
            self.assertEqual(file_bytes(p), data, f"{p} was modified")

    def test_missing_unreadable_or_foreign_files(self):
        hub, files = self.make_scan()
        out = os.path.dirname(files["extended"])
        # A file that is not there is a usage error, as for --since (issue 15).
        self.assert_refused(["--restart-from", os.path.join(out, "nope.csv")],
                            "nope.csv: No such file or directory", files, status=2)
        missing = files["extended"].replace("20", "19", 1)
        self.assert_refused(["--restart-from", missing], "No such file or directory", files, status=2)
        foreign = os.path.join(out, "foreign.csv")
        open(foreign, "w").close()
        self.assert_refused(["--restart-from", foreign], "is not an hfscan extended CSV", files)
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        r = run_hfscan(["--restart", "--output-dir", empty])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"cannot resume: no scan in {empty} (no hf_model_hashes_extended_*.csv)",
                      r.stderr)
        os.rename(files["errors"], files["errors"] + ".away")
        self.assert_refused(["--restart", "--output-dir", out], "the scan's errors file is missing",
                            {k: v for k, v in files.items() if k != "errors"})
        os.rename(files["errors"] + ".away", files["errors"])

    def test_missing_header_block(self):
        hub, files = self.make_scan()
        text = file_bytes(files["basic"]).split(b"\r\n")
        body = b"\r\n".join(l for l in text if not l.startswith(b"#"))
        with open(files["basic"], "wb") as f:
            f.write(body)
        self.assert_refused(["--restart-from", files["extended"]],
                            "does not begin with the # SCAN_PARAMETERS block", files)

    def test_edited_column_header(self):
        hub, files = self.make_scan()
        data = file_bytes(files["extended"]).replace(b"hash,filename,repo_id,file_size",
                                                     b"sha,filename,repo_id,file_size", 1)
        with open(files["extended"], "wb") as f:
            f.write(data)
        self.assert_refused(["--restart-from", files["extended"]],
                            "the column header is 'sha,filename", files)

    def test_truncated_last_line_is_repaired_and_redone(self):
        hub = self.start_hub("--models", "10")
        r, base = self.scan(hub, "--download-threshold", "1", output="base")
        want = rows_of(base)
        r, files = self.scan(hub, "--download-threshold", "1", output="cut")
        # Cut the extended file inside its last row, as a full disk might.
        data = file_bytes(files["extended"])
        with open(files["extended"], "wb") as f:
            f.write(data[:-25])
        last_repo = data[:-2].rsplit(b"\r\n", 1)[1].split(b",")[2].decode()
        # That repo is no longer finished: drop its progress line as well.
        progress = files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
        lines = file_bytes(progress).split(b"\r\n")
        with open(progress, "wb") as f:
            f.write(b"\r\n".join(l for l in lines if not l.startswith(last_repo.encode() + b",")))
        r = run_hfscan(["--restart", "--output-dir", os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removing the torn last line", r.stderr)
        self.assertEqual(rows_of(scan_files(os.path.dirname(files["extended"]))), want)


class UpdateFailedTest(ScanCase):
    def test_needs_a_token(self):
        hub = self.start_hub("--models", "8")
        r, files = self.scan(hub, "--download-threshold", "1")
        r = run_hfscan(["--update-failed-hashes", "--output-dir", os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--update-failed-hashes needs a token", r.stderr)

    def test_granted_token_fixes_gated_and_too_large_rows_in_place(self):
        hub = self.start_hub("--models", "12")
        truth = {file_key(f): f for f in hub.truth()}
        r, files = self.scan(hub, "--download-threshold", "1", "--max-file-size", str(1500 / 1024 ** 3))
        _, _, before = read_csv(files["extended"])
        failed = [(b["repo_id"], b["filename"]) for b in before if b["hash"].startswith("FAILED")]
        self.assertTrue(any(b["hash"] == "FAILED_TOO_LARGE" for b in before))
        self.assertTrue(any(b["hash"] == "FAILED_NO_HASH" for b in before))
        r = run_hfscan(["--update-failed-hashes", "--output-dir", os.path.dirname(files["extended"]),
                        "--token", GRANTED])
        self.assertEqual(r.returncode, 0, r.stderr)
        comments, _, after = read_csv(files["extended"])
        self.assertTrue(any(c.startswith("# failed_hashes_updated: ") for c in comments))
        self.assertIn("# failed_hashes_updates: 1", comments)
        self.assertEqual(len(after), len(before), "rows updated in place")
        by_key = {(a["repo_id"], a["filename"]): a for a in after}
        for key in failed:
            row = by_key[key]
            t = truth[key]
            if t["disabled"]:
                self.assertEqual(row["hash"], "FAILED_NO_HASH")
                continue
            self.assertEqual(row["hash"], t["sha256"], key)
            self.assertEqual(row["hash_method"], "downloaded")
            self.assertEqual(row["commit_hash"], t["commit"])
            self.assertIn(f"/resolve/{t['commit']}/", row["download_url"])
        for b, a in zip(before, after):
            if not b["hash"].startswith("FAILED"):
                self.assertEqual(a, b, "untouched rows stay as they were")
        _, _, basic = read_csv(files["basic"])
        self.assertEqual([(x["hash"], x["filename"], x["repo_id"]) for x in basic],
                         [(x["hash"], x["filename"], x["repo_id"]) for x in after])
        for path in (files["extended"], files["log"]):
            with open(path) as f:
                self.assertNotIn(GRANTED, f.read())

    def test_a_torn_errors_file_is_refused(self):
        hub = self.start_hub("--models", "12")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        data = file_bytes(files["errors"])
        with open(files["errors"], "wb") as f:
            f.write(data[:-7])
        r = run_hfscan(["--update-failed-hashes", "--output-dir", out, "--token", GRANTED])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"cannot update: {files['errors']} ends in a torn line; resume the scan "
                      "first", r.stderr)
        self.assertEqual(file_bytes(files["errors"]), data[:-7], "untouched")

    def test_rows_that_still_fail_keep_their_failure_and_get_a_new_error(self):
        hub = self.start_hub("--models", "10")
        r, files = self.scan(hub, "--download-threshold", "1")
        _, _, errors_before = read_csv(files["errors"])
        _, _, ext_before = read_csv(files["extended"])
        r = run_hfscan(["--update-failed-hashes", "--output-dir", os.path.dirname(files["extended"]),
                        "--token", NOT_GRANTED])
        self.assertEqual(r.returncode, 0, r.stderr)
        _, _, ext_after = read_csv(files["extended"])
        self.assertEqual([(a["hash"], a["filename"]) for a in ext_after],
                         [(b["hash"], b["filename"]) for b in ext_before])
        _, _, errors_after = read_csv(files["errors"])
        gated = [e for e in errors_after[len(errors_before):] if e["error_type"] == "gated_repository"]
        self.assertTrue(gated and all("HTTP 403" in e["reason"] for e in gated))

    def test_killed_mid_rewrite_leaves_old_or_new_files_and_a_rerun_completes(self):
        hub = self.start_hub("--models", "10")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        reference = os.path.join(self.dir, "reference")
        shutil.copytree(out, reference)
        old = {k: file_bytes(files[k]) for k in ("basic", "extended")}
        r = run_hfscan(["--update-failed-hashes", "--output-dir", reference, "--token", GRANTED])
        self.assertEqual(r.returncode, 0, r.stderr)
        new_files = scan_files(reference)
        r = run_hfscan(["--update-failed-hashes", "--output-dir", out, "--token", GRANTED],
                       env={"HFSCAN_TEST_CRASH": "update_after_extended:0"})
        self.assertEqual(r.returncode, -signal.SIGKILL)
        for kind in ("basic", "extended"):
            _, _, rows_now = read_csv(files[kind])
            _, _, rows_old = read_csv_bytes(old[kind])
            _, _, rows_new = read_csv(new_files[kind])
            self.assertIn(rows_now, (rows_old, rows_new), f"{kind} is the old or the new version")
        r = run_hfscan(["--update-failed-hashes", "--output-dir", out, "--token", GRANTED])
        self.assertEqual(r.returncode, 0, r.stderr)
        for kind in ("basic", "extended"):
            self.assertEqual(read_csv(files[kind])[2], read_csv(new_files[kind])[2], kind)
        self.assertEqual([n for n in os.listdir(out) if ".tmp" in n], [], "no temporary left")


def read_csv_bytes(data):
    import tempfile
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
    try:
        return read_csv(f.name)
    finally:
        os.unlink(f.name)


class ConfirmationTest(ScanCase):
    """--update-failed-hashes asks only when stdin is a terminal."""

    def run_on_terminal(self, out, answer, *extra):
        import pty
        master, slave = pty.openpty()
        proc = start_hfscan(["--update-failed-hashes", "--output-dir", out,
                             "--token", GRANTED] + list(extra),
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        if answer is not None:
            os.write(master, answer)
        stdout, stderr = proc.communicate(timeout=120)
        os.close(master)
        return proc.returncode, stdout.decode(), stderr.decode()

    def test_asks_on_a_terminal_and_yes_skips_the_question(self):
        hub = self.start_hub("--models", "10")
        r, files = self.scan(hub, "--download-threshold", "1")
        out = os.path.dirname(files["extended"])
        before = file_bytes(files["extended"])
        code, stdout, stderr = self.run_on_terminal(out, b"n\n")
        self.assertEqual(code, 1)
        self.assertIn("with your token? [y/N]", stderr)
        self.assertIn("cancelled; nothing was changed", stderr)
        self.assertEqual(file_bytes(files["extended"]), before)
        code, stdout, stderr = self.run_on_terminal(out, None, "--yes")
        self.assertEqual(code, 0, stderr)
        self.assertNotIn("[y/N]", stderr)
        self.assertNotEqual(file_bytes(files["extended"]), before)
