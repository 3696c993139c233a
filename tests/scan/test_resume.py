"""Resuming after kill -9 at every point, --update-failed-hashes, and damaged files."""
import collections
import copy
import csv
import json
import glob
import os
import resource
import shutil
import signal
import subprocess
import time

from hubfixture import (GRANTED, NOT_GRANTED, ScanCase, file_key, is_target, read_csv, run_hfscan,
                        scan_files, start_hfscan)
from test_database import WorldCase


def rows_of(files):
    """The rows of a scan's three files, as multisets (error timestamps and
    reasons aside, which differ from run to run)."""
    _, _, ext = read_csv(files["extended"])
    _, _, basic = read_csv(files["basic"])
    _, _, errors = read_csv(files["errors"])
    return (collections.Counter(tuple(sorted(r.items())) for r in ext),
            collections.Counter(tuple(sorted(r.items())) for r in basic),
            collections.Counter((e["repo_id"], e["filename"], e["error_type"]) for e in errors))


def sha256_of(path):
    with open(path, "rb") as f:
        return __import__("hashlib").sha256(f.read()).hexdigest()


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


PROGRESS_COLUMNS = ["repo_id", "commit_hash", "errors_end", "basic_end", "extended_end",
                    "unfinished_blocks"]
END_COLUMN = {"errors": 2, "basic": 3, "extended": 4}
REPO_COLUMN = {"errors": 0, "basic": 2, "extended": 2}


def progress_lines(files):
    path = files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
    with open(path, newline="") as f:
        return list(csv.reader(f))


def repos_in(data, kind, header=True):
    """The repo of each row of a CSV's bytes (its header block and column line
    skipped, unless header is False: the bytes begin at a row)."""
    text = data.decode("utf-8")
    rows = list(csv.reader(l for l in text.splitlines(True)
                                         if not (header and l.startswith("#"))))
    return [row[REPO_COLUMN[kind]] for row in rows[1 if header else 0:]]


class ResumePointTest(ScanCase):
    """Each progress line records where its repo's rows end in each CSV; a
    restart cuts the files there instead of reading and rewriting them (issue 16)."""

    def reference_and_killed(self, models, point):
        """A scan of a world of models, and the folder of the same scan killed at point."""
        hub = self.start_hub("--models", models)
        r, reference = self.scan(hub, "--download-threshold", "1", "--no-token", output="reference")
        out = os.path.join(self.dir, "killed")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0", "--quiet",
                        "--download-threshold", "1", "--no-token"], env={"HFSCAN_TEST_CRASH": point})
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr[-2000:])
        return reference, out

    def test_each_progress_line_records_where_its_repos_rows_end(self):
        hub = self.start_hub("--models", "10")
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token")
        header, *lines = progress_lines(files)
        self.assertEqual(header, PROGRESS_COLUMNS)
        order = [line[0] for line in lines]
        for kind, column in END_COLUMN.items():
            data = file_bytes(files[kind])
            self.assertEqual(int(lines[-1][column]), len(data), kind)
            for i, line in enumerate(lines):
                end = int(line[column])
                self.assertTrue(set(repos_in(data[:end], kind)) <= set(order[:i + 1]), (kind, i))
                self.assertTrue(set(repos_in(data[end:], kind, header=False)) <= set(order[i + 1:]),
                                (kind, i))
        self.assertEqual({line[5] for line in lines}, {"0"}, "no repo was left unfinished")

    def test_a_restart_cuts_the_files_in_place_and_resumes_exactly(self):
        reference, out = self.reference_and_killed("12", "after_extended:6")
        files = scan_files(out)
        last = progress_lines(files)[-1]
        before = {kind: (os.stat(files[kind]).st_ino, file_bytes(files[kind])) for kind in END_COLUMN}
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token"])
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotIn("reading every row", r.stderr)
        for kind, column in END_COLUMN.items():
            inode, data = before[kind]
            end = int(last[column])
            self.assertEqual(os.stat(files[kind]).st_ino, inode, f"{kind}: appended to, not rewritten")
            self.assertEqual(file_bytes(files[kind])[:end], data[:end], f"{kind}: the finished rows stay")
            if len(data) > end:
                self.assertIn(f"{files[kind]}: removed the last {len(data) - end} bytes", r.stderr)
        files = scan_files(out)
        self.assertEqual(rows_of(files), rows_of(reference))
        with open(files["metadata"]) as f, open(reference["metadata"]) as g:
            got, want = json.load(f), json.load(g)
        for key in ("total_models_scanned", "total_files_processed", "files_by_method", "failed_files",
                    "total_errors", "errors_by_type", "status"):
            self.assertEqual(got[key], want[key], f"{key} covers the whole scan")

    def test_a_scan_whose_progress_records_no_sizes_is_read_row_by_row_once(self):
        reference, out = self.reference_and_killed("10", "after_basic:5")
        files = scan_files(out)
        # As an hfscan before the sizes wrote it.
        lines = progress_lines(files)
        with open(files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_"), "w",
                  newline="") as f:
            f.write("".join(",".join(line[:2]) + "\r\n" for line in lines))
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token"],
                       env={"HFSCAN_TEST_CRASH": "after_extended:1"})
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr[-2000:])
        self.assertIn("reading every row: its progress file records no file sizes", r.stderr)
        self.assertEqual(progress_lines(files)[0], PROGRESS_COLUMNS, "written again with the sizes")
        r = run_hfscan(["--restart", "--output-dir", out, "--no-token"])
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotIn("reading every row", r.stderr, "the next restart cuts")
        self.assertEqual(rows_of(files), rows_of(reference))


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
        before = {p: file_bytes(p) for p in glob.glob(os.path.join(self.dir, "out", "*"))}
        # The world changed since: two more repos are listed above the threshold.
        hub.stop()
        hub = self.start_hub("--models", "8", "--port", hub.endpoint.rsplit(":", 1)[1])
        r = run_hfscan(["--restart", "--output-dir", os.path.join(self.dir, "out"), "--no-token"])
        self.assertEqual((r.returncode, r.stderr),
                         (0, f"hfscan: {files['extended']} is already completed; nothing to do\n"))
        self.assertEqual(hub.requests(), [], "the Hub is not listed again")
        after = {p: file_bytes(p) for p in glob.glob(os.path.join(self.dir, "out", "*"))}
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
        self.assertEqual(r.returncode, 2)
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
        self.assertEqual(r.returncode, 2)
        self.assertIn("this scan was made without a token: resume it without --token", r.stderr)
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet"], env={"HF_TOKEN": GRANTED})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the one from HF_TOKEN or the token file is not used", r.stderr)
        self.assertEqual(rows_of(scan_files(out)), want)

    def test_restart_refuses_a_command_line_that_changes_the_selection(self):
        hub = self.start_hub("--models", "10")
        policy = os.path.join(self.dir, "policy.lua")
        with open(policy, "w") as f:
            f.write("return { select_model = function(m) return true end }\n")
        other_policy = os.path.join(self.dir, "other.lua")
        shutil.copy(policy, other_policy)
        scripts = os.path.join(self.dir, "scripts")
        os.makedirs(os.path.join(scripts, "hfscan"))
        out = self.crashed_scan(hub, "after_extended:2", "sel", "--token", GRANTED,
                                "--policy", policy)
        with open(scan_files(out)["extended"]) as f:
            header = f.read().split("END_PARAMETERS")[0]
        self.assertIn("# token_user: testuser\n", header)
        self.assertIn("# scripts: bundled\n", header)
        self.assertIn("# policy_sha256: " + sha256_of(policy) + "\n", header)
        self.assertNotIn(GRANTED, header)
        before = {k: file_bytes(p) for k, p in scan_files(out).items() if p and k != "log"}
        other_hub = self.start_hub("--models", "10")
        changes = [
            (["--endpoint", other_hub.endpoint], "the endpoint: the scan has '" + hub.endpoint),
            (["--download-threshold", "2"], "--download-threshold: the scan has '1', this command line '2'"),
            (["--limit", "5"], "--limit: the scan has 'none', this command line '5'"),
            (["--shard", "1/2"], "--shard: the scan has 'none', this command line '1/2'"),
            (["--policy", other_policy], "--policy: the scan has '" + os.path.realpath(policy)),
            (["--token", NOT_GRANTED], "the token's user: the scan has 'testuser', this command line '"),
        ]
        for extra, message in changes:
            args = ["--restart", "--output-dir", out, "--quiet"] + extra
            if "--token" not in extra:
                args += ["--token", GRANTED]
            r = run_hfscan(args)
            self.assertEqual(r.returncode, 2, f"{extra}: {r.stderr}")
            self.assertIn(message, r.stderr, extra)
        r = run_hfscan(["--scripts-dir", scripts, "--restart", "--output-dir", out, "--quiet",
                        "--token", GRANTED])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"--scripts-dir: the scan has 'bundled', this command line '{os.path.realpath(scripts)}'",
                      r.stderr)
        r = run_hfscan(["--scripts-dir", os.path.join(self.dir, "missing"), "--restart",
                        "--output-dir", out])
        self.assertEqual((r.returncode, r.stderr), (2, "hfscan: --scripts-dir: '%s' is not a directory\n"
                                                    % os.path.join(self.dir, "missing")))
        with open(policy, "a") as f:
            f.write("-- edited\n")
        r = run_hfscan(["--restart", "--output-dir", out, "--quiet", "--token", GRANTED])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("the policy file's SHA-256 (the file was edited)", r.stderr)
        after = {k: file_bytes(p) for k, p in scan_files(out).items() if p and k != "log"}
        self.assertEqual(after, before, "a refused restart writes nothing")
        with open(policy, "w") as f:
            f.write("return { select_model = function(m) return true end }\n")
        self.resume(out, "--token", GRANTED)

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
        self.assert_refused(["--restart-from", foreign], "is not an hfscan extended CSV", files, status=2)
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        r = run_hfscan(["--restart", "--output-dir", empty])
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"cannot resume: no scan in {empty} (no hf_model_hashes_extended_*.csv)",
                      r.stderr)
        self.assertEqual(os.listdir(empty), [], "nothing made where there is nothing to resume")
        r = run_hfscan(["--update-failed-hashes", "--output-dir", os.path.join(self.dir, "nowhere")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot update: ", r.stderr)
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
        self.assertIn("removed the last", r.stderr)
        self.assertIn("a line cut by a kill", r.stderr)
        self.assertEqual(rows_of(scan_files(os.path.dirname(files["extended"]))), want)


class UpdateFailedTest(ScanCase):
    def anonymous_scan_with_failures(self):
        """An anonymous scan whose rows fail for want of a token (gated repos)
        and for none (files over --max-file-size)."""
        hub = self.start_hub("--models", "12")
        truth = {file_key(f): f for f in hub.truth()}
        r, files = self.scan(hub, "--download-threshold", "1", "--no-token",
                             "--max-file-size", str(1500 / 1024 ** 3))
        return hub, truth, files

    def test_without_a_token_only_the_gated_rows_wait(self):
        hub, truth, files = self.anonymous_scan_with_failures()
        _, _, before = read_csv(files["extended"])
        too_large = [(b["repo_id"], b["filename"]) for b in before if b["hash"] == "FAILED_TOO_LARGE"]
        gated = [(b["repo_id"], b["filename"]) for b in before if b["hash"] == "FAILED_NO_HASH"
                 and truth[(b["repo_id"], b["filename"])]["gated"]]
        self.assertTrue(too_large and gated)
        hub.clear_log()
        r = run_hfscan(["--update-failed-hashes", "--no-token", "--yes", "--output-dir",
                        os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"; {len(gated)} need a token (not retried)", r.stdout)
        self.assertFalse(any(q["auth"] for q in hub.requests()), "no token was sent")
        by_key = {(a["repo_id"], a["filename"]): a for a in read_csv(files["extended"])[2]}
        for k in too_large:
            self.assertEqual(by_key[k]["hash"], truth[k]["sha256"], k)
        for k in gated:
            self.assertEqual(by_key[k]["hash"], "FAILED_NO_HASH", k)
        # What would choose other rows does not apply to an update.
        out = os.path.dirname(files["extended"])
        for extra, message in ((["--limit", "3"], "--limit does not apply to --update-failed-hashes"),
                               (["--policy", os.path.join(self.dir, "p.lua")],
                                "--policy: the scan has 'none', this command line '")):
            r = run_hfscan(["--update-failed-hashes", "--no-token", "--yes", "--output-dir", out] + extra)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(message, r.stderr)
        # Only gated rows left: without a token there is nothing to do.
        r = run_hfscan(["--update-failed-hashes", "--no-token", "--output-dir",
                        os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"the {len(gated)} failed rows of {files['extended']} are of gated repos and "
                      "need a token", r.stderr)

    def test_the_update_rewrites_what_describes_the_rows(self):
        hub, truth, files = self.anonymous_scan_with_failures()
        _, _, errors_before = read_csv(files["errors"])
        gated_repos = {f["repo_id"] for f in truth.values() if f["gated"]}
        hub.clear_log()
        r = run_hfscan(["--update-failed-hashes", "--yes", "--token", GRANTED, "--output-dir",
                        os.path.dirname(files["extended"])])
        self.assertEqual(r.returncode, 0, r.stderr)
        # The token went only to the gated repos; the rest was asked without one.
        for q in hub.requests():
            if q["host"] == "api" and q["auth"] and "whoami" not in q["path"]:
                self.assertTrue(any(repo in q["path"] for repo in gated_repos), q["path"])
        comments, _, rows = read_csv(files["extended"])
        self.assertIn("# authenticated: true", comments)
        self.assertIn("# failed_hashes_token_user: testuser", comments)
        self.assertFalse(any(GRANTED in c for c in comments))
        failed = [x for x in rows if x["hash"].startswith("FAILED")]
        with open(files["metadata"]) as f:
            meta = __import__("json").load(f)
        self.assertEqual(meta["failed_files"], len(failed))
        self.assertEqual(meta["total_files_processed"], len(rows))
        self.assertEqual(meta["files_by_method"],
                         dict(collections.Counter(x["hash_method"] for x in rows)))
        self.assertEqual((meta["authenticated"], meta["failed_hashes_token_user"]), (True, "testuser"))
        _, _, errors = read_csv(files["errors"])
        current = [e for e in errors if e["error_type"] != "superseded"]
        self.assertEqual(meta["total_errors"], len(current))
        self.assertEqual(meta["errors_by_type"], dict(collections.Counter(e["error_type"] for e in current)))
        # Every failure of this world is lifted: each old error is superseded, none is new.
        self.assertEqual(len(errors), len(errors_before))
        self.assertEqual((failed, current), ([], []))
        hashed = {(x["repo_id"], x["filename"]) for x in rows if not x["hash"].startswith("FAILED")}
        for old, new in zip(errors_before, errors):
            self.assertEqual((old["repo_id"], old["filename"], old["timestamp"]),
                             (new["repo_id"], new["filename"], new["timestamp"]))
            if (old["repo_id"], old["filename"]) in hashed:
                self.assertEqual(new["error_type"], "superseded")
                self.assertRegex(new["reason"], "^" + old["error_type"] + ": .*\\(superseded at "
                                 "\\d{4}-\\d\\d-\\d\\dT[0-9:]+Z by --update-failed-hashes\\)$")

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
        # What describes the rows is healed too: recomputed from them.
        errors = lambda path: [(e["repo_id"], e["filename"], e["error_type"]) for e in read_csv(path)[2]]
        self.assertEqual(errors(files["errors"]), errors(new_files["errors"]))
        counts = ("failed_files", "files_by_method", "total_errors", "errors_by_type", "authenticated")
        with open(files["metadata"]) as f, open(new_files["metadata"]) as g:
            got, want = json.load(f), json.load(g)
        self.assertEqual({k: got[k] for k in counts}, {k: want[k] for k in counts})
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
        self.assertIn(f"Retry 2 failed rows of {files['extended']} (those of gated repos with "
                      "your token)? [y/N]", stderr)
        self.assertIn("cancelled; nothing was changed", stderr)
        self.assertEqual(file_bytes(files["extended"]), before)
        code, stdout, stderr = self.run_on_terminal(out, None, "--yes")
        self.assertEqual(code, 0, stderr)
        self.assertNotIn("[y/N]", stderr)
        self.assertNotEqual(file_bytes(files["extended"]), before)


class UpdateAtTheRowsCommitTest(WorldCase):
    def test_a_repo_whose_commit_moved_is_scanned_again_whole(self):
        world = self.world("12")
        old_hub = self.hub_for(world, "old")
        r, files = self.scan(old_hub, "--download-threshold", "1", "--no-token",
                             "--max-file-size", str(1500 / 1024 ** 3))
        moved, still = "hfscan-test/plain-git-weights", "hfscan-test/tricky-names"
        w = copy.deepcopy(world)
        repo = next(x for x in w["repos"] if x["id"] == moved)
        repo["commit"] = "4" * 40
        changed = next(f for f in repo["files"] if is_target(f["path"]))
        changed["version"] = changed.get("version", 0) + 1
        hub = self.hub_for(w, "new", replacing=old_hub)
        truth = {file_key(f): f for f in hub.truth()}
        _, _, before = read_csv(files["extended"])
        out = os.path.dirname(files["extended"])
        r = run_hfscan(["--update-failed-hashes", "--no-token", "--yes", "--output-dir", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 repos scanned again at their new commit", r.stdout)
        _, _, after = read_csv(files["extended"])
        mine = [a for a in after if a["repo_id"] == moved]
        want = sorted((f["path"], f["sha256"]) for f in truth.values()
                      if f["repo_id"] == moved and is_target(f["path"]))
        self.assertEqual(sorted((a["filename"], a["hash"]) for a in mine), want)
        self.assertEqual({a["commit_hash"] for a in mine}, {"4" * 40}, "one repo, one commit")
        positions = [i for i, a in enumerate(after) if a["repo_id"] == moved]
        self.assertEqual(positions, list(range(positions[0], positions[0] + len(positions))),
                         "the repo stays one block")
        progress = files["extended"].replace("hf_model_hashes_extended_", "hf_scan_progress_")
        _, _, done = read_csv(progress)
        self.assertIn({"repo_id": moved, "commit_hash": "4" * 40}, done)
        # The repo whose commit stayed was fetched at that commit, in place.
        for b, a in zip([b for b in before if b["repo_id"] == still],
                        [a for a in after if a["repo_id"] == still]):
            self.assertEqual((a["filename"], a["commit_hash"]), (b["filename"], b["commit_hash"]))
            self.assertEqual(a["hash"], truth[(still, a["filename"])]["sha256"])
        others = lambda rows: [x for x in rows if x["repo_id"] not in (moved, still)]
        self.assertEqual(others(after), others(before), "the other repos are untouched")
        with open(files["metadata"]) as f:
            meta = json.load(f)
        self.assertEqual(meta["total_files_processed"], len(after))
