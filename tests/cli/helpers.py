"""Shared helpers for the command-line tests: where the binary is, running it."""
import os
import subprocess
import tempfile
import unittest

HFSCAN = os.environ.get("HFSCAN_BIN", os.path.join(os.path.dirname(__file__), "../../build/hfscan"))
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def run(args, stdin=None, cwd=None, env=None, binary=None):
    """Runs hfscan with args; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    full_env.pop("HFSCAN_SCRIPTS_DIR", None)
    full_env.update(env or {})
    return subprocess.run([binary or HFSCAN] + list(args), input=stdin, cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


class TempDirCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hfscan-cli-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, data):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return p
