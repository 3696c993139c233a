"""What a person at a terminal is told: the progress line during waits, on an
80-column terminal; a fatal error said once; the first line (endpoint, token
source and user, never the token)."""
import math
import os
import socket

from hubfixture import GRANTED, ScanCase, run_hfscan, run_in_terminal

REDRAW = "\r\x1b[K"


def redraws(text):
    """The progress lines drawn: each redraw starts with \\r ESC[K and lasts until
    the next one; a piece holding a newline is a log line or the summary."""
    return [piece for piece in text.split(REDRAW)[1:] if piece and "\n" not in piece]


def request_gaps(hub):
    """Seconds between consecutive requests the stand-in logged, longest first."""
    times = sorted(entry["ts"] for entry in hub.requests())
    return sorted((b - a for a, b in zip(times, times[1:])), reverse=True)


class ProgressLineTest(ScanCase):
    def scan_in_terminal(self, endpoint, *args):
        out = os.path.join(self.dir, "tty")
        return run_in_terminal(["--endpoint", endpoint, "--output-dir", out, "--rate-limit", "0",
                                "--download-threshold", "1"] + list(args),
                               env={"COLUMNS": "80"}, columns=80)

    def test_the_line_moves_names_the_wait_and_fits_80_columns_during_a_rate_limit_wait(self):
        # 4 api requests per 8 s window, the api route only: the listing and three
        # trees spend the first window, and the scan waits for the next.
        hub = self.start_hub("--models", "6", "--quota-api", "4", "--window", "8")
        status, text = self.scan_in_terminal(hub.endpoint, "--limit", "6", "--no-resolvers-route")
        self.assertEqual(status, 0, text[-2000:])
        drawn = redraws(text)
        self.assertTrue(drawn, text[:2000])
        too_wide = [line for line in drawn if len(line) > 79]
        self.assertEqual(too_wide, [], "a line as wide as the terminal wraps on each redraw")
        waiting = [line for line in drawn if "api window spent, resets in " in line]
        self.assertTrue(waiting, "the wait is named:\n" + "\n".join(drawn))
        # The wait, as the stand-in saw it: the longest pause between two requests.
        wait = request_gaps(hub)[0]
        self.assertGreater(wait, 4, "the scan waited for the window's reset")
        self.assertGreaterEqual(len(waiting), math.floor(wait),
                                f"redrawn at least once a second during the {wait:.1f} s wait:\n"
                                + "\n".join(drawn))
        # The countdown moved: the line was not the same drawing again and again.
        countdowns = {line.split("resets in ")[1].split()[0] for line in waiting}
        self.assertGreater(len(countdowns), 2, waiting)

    def test_a_host_that_cannot_be_reached_is_named_with_the_retry(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        endpoint = f"http://127.0.0.1:{port}"
        status, text = self.scan_in_terminal(endpoint, "--retry-budget", "3")
        self.assertEqual(status, 1, text[-2000:])
        drawn = redraws(text)
        self.assertTrue(any(f"cannot reach 127.0.0.1:{port}, retry 1 in 0:01" in line
                            for line in drawn), "\n".join(drawn))
        self.assertTrue(any(f"cannot reach 127.0.0.1:{port}, retry 2 in 0:0" in line
                            for line in drawn), "\n".join(drawn))
        self.assertEqual([line for line in drawn if len(line) > 79], [])


class FatalErrorOnceTest(ScanCase):
    def test_a_policy_hook_that_raises_is_said_once_with_many_repos_in_flight(self):
        hub = self.start_hub("--models", "40")
        path = os.path.join(self.dir, "broken.lua")
        with open(path, "w") as f:
            f.write('return { on_row = function(row, model) error("boom") end }\n')
        r, _ = self.scan(hub, "--download-threshold", "1", "--max-workers", "8", "--policy", path,
                         expect=1)
        self.assertEqual(r.stderr.count("policy hook 'on_row'"), 1, r.stderr)
        self.assertEqual(r.stderr.count(f"{path}:1: boom"), 1, r.stderr)
        self.assertEqual(r.stderr.count("stack traceback"), 1, r.stderr)

    def test_a_token_refused_mid_scan_is_said_once(self):
        hub = self.start_hub("--models", "40", "--revoke-token-after", "12")
        r, _ = self.scan(hub, "--download-threshold", "1", "--max-workers", "8", "--token", GRANTED,
                         expect=1)
        self.assertEqual(r.stderr.count("refused the token"), 1, r.stderr)
        self.assertNotIn(GRANTED, r.stderr + r.stdout)


class FirstLineTest(ScanCase):
    def first_line(self, hub, *args, env=None):
        self.scans = getattr(self, "scans", 0) + 1
        out = os.path.join(self.dir, f"first{self.scans}")
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--limit", "1", "--download-threshold", "1"] + list(args), env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertNotIn(GRANTED, r.stderr + r.stdout)
        return r.stderr.split("\n")[0]

    def test_the_first_line_says_endpoint_user_and_token_source(self):
        hub = self.start_hub("--models", "4")
        prefix = f"hfscan: scanning {hub.endpoint}"
        self.assertEqual(self.first_line(hub, env={"HF_TOKEN": GRANTED}),
                         prefix + " as testuser (token from HF_TOKEN)")
        self.assertEqual(self.first_line(hub, "--token", GRANTED),
                         prefix + " as testuser (token from --token)")
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(GRANTED + "\n")
        self.assertEqual(self.first_line(hub, env={"HF_TOKEN_PATH": token_file}),
                         prefix + f" as testuser (token from the token file {token_file})")
        self.assertEqual(self.first_line(hub), prefix + " anonymously (no token found)")
        self.assertEqual(self.first_line(hub, "--no-token", env={"HF_TOKEN": GRANTED}),
                         prefix + " anonymously (no token: --no-token)")
