"""Running the Hub stand-in and hfscan for end-to-end tests, and reading what
they wrote: the stand-in's truth and request log, and the database files."""
import csv
import glob
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "../.."))
HUB = os.path.join(SOURCE_DIR, "tests/hub/hub")
HFSCAN = os.environ.get("HFSCAN_BIN", os.path.join(SOURCE_DIR, "build/hfscan"))

GRANTED = "hf_testuser_granted"
NOT_GRANTED = "hf_other_nogated"

TARGET_EXTENSIONS = {".bin", ".caffemodel", ".coreml", ".dlc", ".ggmf", ".ggml", ".gguf", ".ggjt",
                     ".h5", ".keras", ".llamafile", ".mar", ".mlmodel", ".onnx", ".pb", ".pkl",
                     ".pt", ".pt2", ".pth", ".ptl", ".safetensors", ".tflite"}

EXTENDED = ["hash", "filename", "repo_id", "file_size", "file_type", "last_modified",
            "download_url", "hash_method", "commit_hash"]


def extension(path):
    name = path.rsplit("/", 1)[-1]
    if "." not in name.lstrip("."):
        return ""
    return "." + name.rsplit(".", 1)[1].lower() if "." in name[1:] else ""


def is_target(path):
    return extension(path) in TARGET_EXTENSIONS


class Hub:
    """The stand-in as a subprocess on free loopback ports."""
    started = 0

    def __init__(self, workdir, *args):
        self.workdir = workdir
        Hub.started += 1  # each hub of a test has files of its own
        self.ready = os.path.join(workdir, f"hub{Hub.started}-ready.json")
        self.log = os.path.join(workdir, f"hub{Hub.started}-requests.jsonl")
        self.args = list(args)
        with open(os.path.join(workdir, "hub.err"), "w") as err:
            self.proc = subprocess.Popen([HUB, "--ready-file", self.ready, "--request-log",
                                          self.log] + self.args, stdout=subprocess.DEVNULL,
                                         stderr=err)
        deadline = time.time() + 60
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the hub did not start: " + open(os.path.join(workdir, "hub.err")).read())
            time.sleep(0.05)
        with open(self.ready) as f:
            info = json.load(f)
        self.endpoint = info["endpoint"]
        self.cdn = info["cdn"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def truth(self):
        """Records with paths as str, bytes that are not UTF-8 as lone surrogates
        (the stand-in's names.py); split on "\n" only, as a name may hold U+0085."""
        import urllib.request
        with urllib.request.urlopen(self.endpoint + "/_hub/truth") as r:
            text = r.read().decode("utf-8", "surrogateescape")
        return [json.loads(line) for line in text.split("\n") if line.strip()]

    def stats(self):
        import urllib.request
        with urllib.request.urlopen(self.endpoint + "/_hub/stats") as r:
            return json.loads(r.read())

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def clear_log(self):
        open(self.log, "w").close()


def hfscan_env(env=None):
    """The environment for hfscan in a test: none of the caller's Hub settings, no
    token file unless a test sets one, then env."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("HF_TOKEN", "HF_ENDPOINT", "HF_HOME", "HFSCAN_SCRIPTS_DIR")}
    full_env["HF_HOME"] = "/nonexistent-hf-home"
    full_env.update(env or {})
    return full_env


def run_hfscan(args, env=None, timeout=300, **kwargs):
    return subprocess.run([HFSCAN] + list(args), env=hfscan_env(env), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def start_hfscan(args, env=None, **kwargs):
    """hfscan in the background (for a test that signals it while it runs)."""
    return subprocess.Popen([HFSCAN] + list(args), env=hfscan_env(env), **kwargs)


def run_in_terminal(args, env=None, columns=None, timeout=120):
    """hfscan with stdin, stdout and stderr on a pseudo-terminal (of `columns`
    columns when given, set with TIOCSWINSZ); returns (exit status, what it wrote)."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = start_hfscan(args, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal closed it
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout)
    os.close(master)
    return proc.returncode, seen.decode("utf-8", "replace")


def read_csv(path):
    """(comment lines, header, rows as dicts) of a database CSV."""
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\r\n")
    comments = []
    while lines and lines[0].startswith("#"):
        comments.append(lines.pop(0))
    reader = csv.reader("\r\n".join(lines).splitlines(keepends=True))
    header = next(reader)
    return comments, header, [dict(zip(header, row)) for row in reader]


def scan_files(output_dir):
    """The paths of the (single) scan in output_dir."""
    found = {}
    for kind, pattern in (("basic", "hf_model_hashes_basic_*.csv"),
                          ("extended", "hf_model_hashes_extended_*.csv"),
                          ("errors", "hf_scan_errors_*.csv"), ("metadata", "scan_metadata_*.json"),
                          ("log", "hfscan_*.log")):
        matches = sorted(glob.glob(os.path.join(output_dir, pattern)))
        found[kind] = matches[-1] if matches else None
    return found


def download_url(endpoint, repo, commit, path):
    return f"{endpoint}/{repo}/resolve/{commit}/{quote(path, errors='surrogateescape')}"


def file_key(record):
    """A truth record's (repo, file name) as the CSVs write them."""
    return record["repo_id"], name_text(record["path"])


def raw_name(path):
    """A truth path's bytes (undecodable ones are lone surrogates in the truth)."""
    return path.encode("utf-8", "surrogateescape")


def name_text(path):
    """The text form the README documents for a file name, written here again
    from the README (not from hfscan's code) to check hfscan against it."""
    raw, pieces, at = raw_name(path), [], 0
    while at < len(raw):
        char = next((raw[at:at + n] for n in (1, 2, 3, 4) if _is_character(raw[at:at + n])), None)
        if char is None:
            pieces.append("\\x%02X" % raw[at])
            at += 1
        else:
            pieces.append(char.decode())
            at += len(char)
    for i, piece in enumerate(pieces[:-1]):
        if piece == "\\" and pieces[i + 1][0] in "\\x":
            pieces[i] = "\\\\"
    text = "".join(pieces)
    return "'" + text if text.lstrip("'")[:1] in ("=", "+", "-", "@") else text


def _is_character(data):
    """One valid UTF-8 character that is not a control character."""
    try:
        char = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(char) == 1 and not (ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F)


class ScanCase(unittest.TestCase):
    """A temporary folder, a hub started per test class or per test."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hfscan-scan-")
        self.dir = self._tmp.name
        self.hubs = []

    def tearDown(self):
        for hub in self.hubs:
            hub.stop()
        self._tmp.cleanup()

    def start_hub(self, *args):
        hub = Hub(self.dir, *args)
        self.hubs.append(hub)
        return hub

    def scan(self, hub, *args, env=None, output="out", expect=0):
        out = os.path.join(self.dir, output)
        r = run_hfscan(["--endpoint", hub.endpoint, "--output-dir", out, "--rate-limit", "0",
                        "--quiet"] + list(args), env=env)
        if expect is not None:
            self.assertEqual(r.returncode, expect, r.stderr[-3000:])
        return r, scan_files(out)
