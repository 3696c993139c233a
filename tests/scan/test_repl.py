"""The REPL against the stand-in: --endpoint and --token choose the Hub and the
token of its `hub` object, the banner names it, and the token is never shown."""
import os
import pty
import subprocess

from hubfixture import GRANTED, HFSCAN, ScanCase, hfscan_env, run_hfscan

WHOAMI = 'print(hub.whoami().name, hub.endpoint)\n'


class ReplTest(ScanCase):
    def test_endpoint_and_token(self):
        hub = self.start_hub("--models", "3")
        r = run_hfscan(["repl", "--endpoint", hub.endpoint, "--token", GRANTED], input=WHOAMI)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, f"testuser\t{hub.endpoint}\n", ""))
        self.assertEqual([q.get("path") for q in hub.requests()], ["/api/whoami-v2"])
        # Without a token the Hub refuses, and the prompt says so readably.
        r = run_hfscan(["repl", "--endpoint", hub.endpoint, "--no-token"], input=WHOAMI,
                       env={"HF_TOKEN": GRANTED})
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^hfscan: \w+: HTTP 401: ")
        self.assertNotIn(GRANTED, r.stdout + r.stderr)

    def test_banner_names_hub_and_never_the_token(self):
        hub = self.start_hub("--models", "3")
        pid, fd = pty.fork()
        if pid == 0:
            env = hfscan_env()
            os.execve(HFSCAN, [HFSCAN, "repl", "--endpoint", hub.endpoint, "--token", GRANTED], env)
        text = b""
        while b"hfscan> " not in text:
            text += os.read(fd, 4096)
        os.write(fd, b"\x04")  # Ctrl-D
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            text += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        banner = text.decode().split("\r\n")[0]
        self.assertEqual(banner, f"hfscan REPL (Lua 5.4). `hf` is the native module; `hub` is a "
                                 f"client of {hub.endpoint} (token from --token),")
        self.assertNotIn(GRANTED.encode(), text)

    def test_usage(self):
        cases = [
            (["repl", "--bogus"], "hfscan: repl: unknown option '--bogus'\n"),
            (["repl", "--token"], "hfscan: repl: --token needs TOKEN\n"),
            (["repl", "--endpoint", "ftp://x"],
             "hfscan: repl: --endpoint: 'ftp://x' is not an http:// or https:// URL\n"),
            (["repl", "--token", "t", "--no-token"],
             "hfscan: repl: --token and --no-token cannot be used together\n"),
        ]
        for args, message in cases:
            r = run_hfscan(args, input="print(1)\n")
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (2, "", message + "Try 'hfscan repl --help' for more information.\n"))
