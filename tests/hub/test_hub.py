"""Tests of the stand-in Hub itself: they pin the facts of shared/hub-api.md
that it implements, so the scanner's tests rest on a faithful fake.

Run: python3 -m unittest discover -s tests/hub -v
"""
import hashlib
import http.client
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import parse_qs, quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
HUB = os.path.join(HERE, "hub.py")
GRANTED = {"Authorization": "Bearer hf_testuser_granted"}
OTHER = {"Authorization": "Bearer hf_other_nogated"}
BAD = {"Authorization": "Bearer hf_wrong_token"}

# hub-api.md section 8: huggingface_hub's parsing regexes.
RATELIMIT_RE = re.compile(
    r"\"(?P<resource_type>\w+)\"\s*;\s*r\s*=\s*(?P<r>\d+)\s*;\s*t\s*=\s*(?P<t>\d+)")
POLICY_RE = re.compile(r"q\s*=\s*(?P<q>\d+).*?w\s*=\s*(?P<w>\d+)")
# hub-api.md section 1: huggingface.js parseLinkHeader.
LINK_RE = re.compile(r'<(https?:[/][/][^>]+)>;\s+rel="([^"]+)"')
# hub-api.md section 12: what the stand-in says where the real Hub's wording is "like" this.
HF_WARNING = ("unauthenticated; Authenticate with a token to get higher rate limits and access "
              "to gated and private repos")
ANONYMOUS_429 = ("We had to rate limit your IP (127.0.0.1). To continue using our service, "
                 "create a HF account or login to your existing account, and note that you have "
                 "a higher rate limit when logged in.")
REGION = "This model is not available in your region."
DISABLED = "Access to this resource is disabled."
EXPIRED = b"AccessDenied: Request has expired"
GATEWAY_504 = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"
HTML_429 = b"<html><body><h1>429 Too Many Requests</h1></body></html>"
TARGET_EXTS = (".bin", ".caffemodel", ".coreml", ".dlc", ".ggmf", ".ggml", ".gguf", ".ggjt",
               ".h5", ".keras", ".llamafile", ".mar", ".mlmodel", ".onnx", ".pb", ".pkl", ".pt",
               ".pt2", ".pth", ".ptl", ".safetensors", ".tflite")


def lowest(salt, keys, fraction, seed=1):
    """The rate-selection rule of README.md, restated: the ceil(F x n) keys with the
    smallest sha256("<salt>:<seed>:<key>"), at least one."""
    keys = sorted(set(keys), key=lambda k: hashlib.sha256(
        ("%s:%s:%s" % (salt, seed, k)).encode()).hexdigest())
    return set(keys[:max(1, math.ceil(fraction * len(keys) - 1e-9))])


def repo_ids(truth):
    """Repo ids in download order (the truth's order)."""
    return list(dict.fromkeys(t["repo_id"] for t in truth))


def flagged(truth, field):
    return {t["repo_id"] for t in truth if t[field]}


def ratelimit_t(reply):
    return int(RATELIMIT_RE.search(reply.headers["ratelimit"]).group("t"))


def seconds_to_window_end(moment, window):
    return math.ceil(math.floor(moment / window) * window + window - moment - 1e-6)


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def pointer_text(sha, size):
    return "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha, size)


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def next_link(self):
        links = dict((rel, url) for url, rel in LINK_RE.findall(self.headers.get("link", "")))
        return links.get("next")


def fetch(method, url, headers=None, body=None, timeout=10):
    """One request, redirects not followed, header names lower-cased."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + ("?" + parts.query if parts.query else ""),
                     body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


class HubProcess:
    def __init__(self, args):
        self.tmp = tempfile.TemporaryDirectory(prefix="hubtest-")
        self.ready = os.path.join(self.tmp.name, "ready.json")
        self.log = os.path.join(self.tmp.name, "requests.jsonl")
        self.proc = subprocess.Popen(
            [sys.executable, "-B", HUB, "--ready-file", self.ready, "--request-log", self.log]
            + list(args), stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("hub did not start")
            time.sleep(0.02)
        with open(self.ready) as handle:
            self.info = json.load(handle)
        self.ready_line = self.proc.stdout.readline()
        self.url = self.info["endpoint"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.tmp.cleanup()


class HubCase(unittest.TestCase):
    ARGS = ["--models", "14"]
    LOADS_TRUTH = True      # a case that only asks the Hub need not hash every file first

    @classmethod
    def setUpClass(cls):
        cls.hub = HubProcess(cls.ARGS)
        cls.url = cls.hub.url
        if cls.LOADS_TRUTH:
            cls.truth = [json.loads(line) for line in
                         cls.get("/_hub/truth").body.decode().splitlines()]

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()

    @classmethod
    def get(cls, path, headers=None, method="GET", body=None):
        return fetch(method, cls.url + path, headers, body)

    def truth_of(self, repo_id):
        return [t for t in self.truth if t["repo_id"] == repo_id]

    def one(self, repo_id, path):
        return [t for t in self.truth if t["repo_id"] == repo_id and t["path"] == path][0]

    def download(self, repo_id, path, headers=None):
        """GET resolve, follow one redirect to the CDN without Authorization."""
        reply = self.get("/%s/resolve/main/%s" % (repo_id, quote(path)), headers)
        if reply.status == 302:
            reply = fetch("GET", reply.headers["location"])
        return reply

    def read_cut(self, url, headers=None):
        """A GET the Hub cuts part-way: its bytes, and the length it announced."""
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("GET", parts.path + "?" + parts.query, headers=headers or {})
            resp = conn.getresponse()
            with self.assertRaises(http.client.IncompleteRead) as cut:
                resp.read()
            return cut.exception.partial, int(resp.getheader("content-length"))
        finally:
            conn.close()

    def assertHubError(self, reply, status, code, message=None):
        self.assertEqual(reply.status, status, reply.body)
        self.assertEqual(reply.headers.get("x-error-code"), code)
        if message is not None:
            self.assertEqual(reply.headers.get("x-error-message"), message)


class TestStartup(HubCase):
    def test_ready_file_and_line(self):
        info = self.hub.info
        self.assertEqual(set(info), {"endpoint", "port", "cdn", "pid"})
        self.assertEqual(info["endpoint"], "http://127.0.0.1:%d" % info["port"])
        self.assertNotEqual(urlsplit(info["cdn"]).hostname, urlsplit(info["endpoint"]).hostname)
        self.assertEqual(self.hub.ready_line.strip(),
                         "hub ready endpoint=%s cdn=%s" % (info["endpoint"], info["cdn"]))


class TestListing(HubCase):
    def test_default_fields_lack_sha_lastmodified_gated(self):
        items = self.get("/api/models?sort=downloads&limit=5").json()
        for item in items:
            self.assertRegex(item["_id"], r"^[0-9a-f]{24}$")
            self.assertEqual(item["modelId"], item["id"])
            for field in ("likes", "trendingScore", "private", "downloads", "tags", "createdAt"):
                self.assertIn(field, item)
            for field in ("sha", "lastModified", "gated", "siblings"):
                self.assertNotIn(field, item)

    def test_full_adds_sha_lastmodified_gated_and_names_only_siblings(self):
        item = self.get("/api/models?limit=1&full=true").json()[0]
        for field in ("author", "gated", "lastModified", "sha", "siblings"):
            self.assertIn(field, item)
        self.assertEqual(set(item["siblings"][0]), {"rfilename"})

    def test_expand_with_and_without_brackets(self):
        wanted = ("downloads", "sha", "lastModified", "gated", "private")
        query = "&".join("expand=%s" % e for e in wanted[:3])
        query += "&" + "&".join("expand[]=%s" % e for e in wanted[3:])
        items = self.get("/api/models?sort=downloads&limit=100&" + query).json()
        for item in items:
            self.assertEqual(set(item), {"_id", "id"} | set(wanted))
            self.assertRegex(item["sha"], r"^[0-9a-f]{40}$")
            self.assertRegex(item["lastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")
            self.assertIn(item["gated"], (False, "auto", "manual"))
        self.assertEqual({i["gated"] for i in items}, {False, "auto", "manual"})

    def test_expand_alone_leaves_other_fields_out(self):
        item = self.get("/api/models?limit=1&expand=author").json()[0]
        self.assertEqual(set(item), {"_id", "id", "author"})

    def test_unknown_expand_is_400(self):
        self.assertEqual(self.get("/api/models?expand=bogus").status, 400)
        self.assertEqual(self.get("/api/models/hfscan-test/xet-gguf?expand=bogus").status, 400)

    def test_pagination_follows_link_until_absent(self):
        url = self.url + "/api/models?sort=downloads&limit=4&expand=downloads"
        pages, ids, downloads = 0, [], []
        while url:
            reply = fetch("GET", url)
            page = reply.json()
            self.assertLessEqual(len(page), 4)
            ids += [i["id"] for i in page]
            downloads += [i["downloads"] for i in page]
            url = reply.next_link()
            if url:
                self.assertEqual(len(page), 4)        # limit is the page size
                self.assertIn("limit=4", url)          # the next URL keeps every parameter
                self.assertIn("expand=downloads", url)
                self.assertIn("cursor=", url)
            pages += 1
        public = {t["repo_id"] for t in self.truth if not t["private"]}
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(set(ids), public)
        self.assertEqual(downloads, sorted(downloads, reverse=True))
        self.assertEqual(pages, (len(public) + 3) // 4)

    def test_private_repos_listed_for_owner_only(self):
        anon = {i["id"] for i in self.get("/api/models?limit=1000").json()}
        owner = {i["id"] for i in self.get("/api/models?limit=1000", GRANTED).json()}
        other = {i["id"] for i in self.get("/api/models?limit=1000", OTHER).json()}
        self.assertIn("testuser/private-weights", owner)
        self.assertNotIn("testuser/private-weights", anon | other)

    def test_search_and_author(self):
        found = [i["id"] for i in self.get("/api/models?search=GATED").json()]
        self.assertEqual(sorted(found), ["gated-org/gated-auto", "gated-org/gated-manual"])
        found = [i["id"] for i in self.get("/api/models?author=gated-org").json()]
        self.assertEqual(len(found), 2)


class TestModelInfo(HubCase):
    def test_fields_and_commit(self):
        info = self.get("/api/models/hfscan-test/plain-git-weights").json()
        truth = self.truth_of("hfscan-test/plain-git-weights")
        self.assertEqual(info["sha"], truth[0]["commit"])
        self.assertRegex(info["lastModified"], r"\.000Z$")
        self.assertEqual(sorted(s["rfilename"] for s in info["siblings"]),
                         sorted(t["path"] for t in truth))
        by_commit = self.get("/api/models/hfscan-test/plain-git-weights/revision/" + info["sha"])
        self.assertEqual(by_commit.json()["sha"], info["sha"])

    def test_blobs_true_siblings(self):
        info = self.get("/api/models/hfscan-test/plain-git-weights/revision/main?blobs=true").json()
        info.update(self.get("/api/models/hfscan-test/sharded-safetensors?blobs=true").json())
        for sibling in info["siblings"]:
            truth = self.one("hfscan-test/sharded-safetensors", sibling["rfilename"])
            self.assertEqual(sibling["size"], truth["size"])
            self.assertEqual(sibling["blobId"], truth["git_oid"])
            if truth["storage"] == "git":
                self.assertNotIn("lfs", sibling)
            else:
                pointer = pointer_text(truth["sha256"], truth["size"]).encode()
                self.assertEqual(sibling["lfs"], {"sha256": truth["sha256"], "size": truth["size"],
                                                  "pointerSize": len(pointer)})
                self.assertEqual(sibling["blobId"], git_oid(pointer))

    def test_empty_pkl_is_a_regular_file(self):
        info = self.get("/api/models/hfscan-test/plain-git-weights?blobs=true").json()
        empty = [s for s in info["siblings"] if s["rfilename"] == "empty.pkl"][0]
        self.assertEqual(empty, {"rfilename": "empty.pkl", "size": 0, "blobId": git_oid(b"")})

    def test_gated_metadata_and_tree_are_public(self):
        self.assertEqual(self.get("/api/models/gated-org/gated-manual").json()["gated"], "manual")
        tree = self.get("/api/models/gated-org/gated-manual/tree/main?recursive=true")
        self.assertEqual(tree.status, 200)
        self.assertTrue(any("lfs" in e for e in tree.json()))


class TestTreeAndPathsInfo(HubCase):
    def test_recursive_tree_entries(self):
        repo = "hfscan-test/nested-folders"
        commit = self.truth_of(repo)[0]["commit"]
        url = "/api/models/%s/tree/%s?recursive=true&expand=false" % (repo, commit)
        entries = self.get(url).json()
        files = {e["path"]: e for e in entries if e["type"] == "file"}
        dirs = [e for e in entries if e["type"] == "directory"]
        self.assertIn("a/b/c/d", {d["path"] for d in dirs})
        self.assertTrue(all(d["size"] == 0 and re.match(r"^[0-9a-f]{40}$", d["oid"]) for d in dirs))
        self.assertEqual(set(files), {t["path"] for t in self.truth_of(repo)})
        for path, entry in files.items():
            truth = self.one(repo, path)
            self.assertEqual(entry["oid"], truth["git_oid"])
            self.assertEqual(entry["size"], truth["size"])
            if truth["storage"] == "git":
                self.assertNotIn("lfs", entry)
            else:
                self.assertEqual(entry["lfs"]["oid"], truth["sha256"])
            self.assertEqual("xetHash" in entry, truth["storage"] == "xet")

    def test_sub_path_encoded_or_not(self):
        base = "/api/models/hfscan-test/nested-folders/tree/main/"
        encoded = self.get(base + "onnx%2Ffp16?recursive=true").json()
        plain = self.get(base + "onnx/fp16?recursive=true").json()
        self.assertEqual(encoded, plain)
        self.assertEqual([e["path"] for e in plain], ["onnx/fp16/model.ONNX"])
        shallow = self.get(base + "onnx?recursive=false").json()
        self.assertEqual({e["path"] for e in shallow}, {"onnx/fp16", "onnx/model.onnx"})

    def test_tree_errors(self):
        base = "/api/models/hfscan-test/nested-folders/tree/"
        self.assertHubError(self.get(base + "main/no-such-dir"), 404, "EntryNotFound")
        self.assertHubError(self.get(base + "nope"), 404, "RevisionNotFound",
                            "Invalid rev id: nope")

    def test_expand_adds_last_commit(self):
        entry = self.get("/api/models/hfscan-test/xet-gguf/tree/main?expand=true").json()[0]
        self.assertEqual(set(entry["lastCommit"]), {"id", "title", "date"})
        self.assertIn("securityFileStatus", entry)

    def test_paths_info_form_and_json(self):
        url = "/api/models/hfscan-test/nested-folders/paths-info/main"
        form = self.get(url, {"Content-Type": "application/x-www-form-urlencoded"}, "POST",
                        "paths=onnx%2Fmodel.onnx&paths=missing.bin&paths=tf&expand=false").json()
        self.assertEqual([e["path"] for e in form], ["onnx/model.onnx", "tf"])   # missing omitted
        self.assertEqual(form[0]["lfs"]["oid"], self.one("hfscan-test/nested-folders",
                                                         "onnx/model.onnx")["sha256"])
        body = json.dumps({"paths": ["a/b/c/d/deep.pt", "nope"], "expand": True})
        entries = self.get(url, {"Content-Type": "application/json"}, "POST", body).json()
        self.assertEqual([e["path"] for e in entries], ["a/b/c/d/deep.pt"])
        self.assertIn("lastCommit", entries[0])

    def test_paths_info_over_2000_is_413(self):
        url = "/api/models/hfscan-test/nested-folders/paths-info/main"
        body = "&".join("paths=f%d" % i for i in range(2001))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        refused = self.get(url, headers, "POST", body)
        self.assertEqual((refused.status, refused.json()), (413, {"error": "too many parameters"}))
        body = "&".join("paths=f%d" % i for i in range(1999)) + "&paths=config.json"
        accepted = self.get(url, headers, "POST", body)
        self.assertEqual(accepted.status, 200)
        self.assertEqual([e["path"] for e in accepted.json()], ["config.json"])


class TestDownloads(HubCase):
    def test_regular_file_head_and_get(self):
        repo, path = "hfscan-test/plain-git-weights", "tiny.pkl"
        truth = self.one(repo, path)
        head = self.get("/%s/resolve/%s/%s" % (repo, truth["commit"], path),
                        {"Accept-Encoding": "identity"}, "HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.headers["etag"], '"%s"' % truth["git_oid"])
        self.assertEqual(head.headers["x-repo-commit"], truth["commit"])
        self.assertEqual(int(head.headers["content-length"]), truth["size"])
        body = self.get("/%s/resolve/main/%s" % (repo, path)).body
        self.assertEqual(git_oid(body), truth["git_oid"])
        self.assertEqual(hashlib.sha256(body).hexdigest(), truth["sha256"])

    def test_lfs_redirect_headers(self):
        repo, path = "hfscan-test/xet-gguf", "model-f16.GGUF"
        truth = self.one(repo, path)
        for method in ("HEAD", "GET"):
            reply = self.get("/%s/resolve/main/%s" % (repo, path), method=method)
            self.assertEqual(reply.status, 302)
            location = reply.headers["location"]
            self.assertEqual(urlsplit(location).netloc, urlsplit(self.hub.info["cdn"]).netloc)
            self.assertEqual(reply.headers["x-linked-etag"], '"%s"' % truth["sha256"])
            self.assertEqual(reply.headers["x-linked-size"], str(truth["size"]))
            self.assertEqual(reply.headers["x-repo-commit"], truth["commit"])
            self.assertEqual(reply.headers["x-xet-hash"], truth["xet_hash"])
            self.assertIn('rel="xet-auth"', reply.headers["link"])
            self.assertIsNone(reply.next_link())       # a Link that is not pagination
        self.assertEqual(reply.body.decode(), "Found. Redirecting to " + location)
        plain_lfs = self.get("/hfscan-test/sharded-safetensors/resolve/main/pytorch_model.BIN")
        self.assertEqual(plain_lfs.status, 302)
        self.assertNotIn("x-xet-hash", plain_lfs.headers)

    def test_raw_serves_pointer_for_lfs(self):
        repo, path = "hfscan-test/tricky-names", "weights with space.bin"
        truth = self.one(repo, path)
        raw = self.get("/%s/raw/main/%s" % (repo, quote(path)))
        expected = pointer_text(truth["sha256"], truth["size"])
        self.assertEqual(raw.body.decode(), expected)
        self.assertEqual(len(expected), 43 + 76 + 6 + len(str(truth["size"])))
        self.assertEqual(git_oid(raw.body), truth["git_oid"])
        regular = self.get("/hfscan-test/plain-git-weights/raw/main/graph.pb")
        self.assertEqual(hashlib.sha256(regular.body).hexdigest(),
                         self.one("hfscan-test/plain-git-weights", "graph.pb")["sha256"])

    def test_served_bytes_match_truth(self):
        checked = 0
        for truth in self.truth:
            if truth["disabled"]:
                continue
            self.assertFalse(truth["cdn_mismatch"] or truth["git_mismatch"], truth)  # off
            reply = self.download(truth["repo_id"], truth["path"], GRANTED)
            self.assertEqual(reply.status, 200, truth)
            self.assertEqual(len(reply.body), truth["size"])
            self.assertEqual(hashlib.sha256(reply.body).hexdigest(), truth["sha256"], truth)
            checked += 1
        self.assertGreater(checked, 50)

    def test_range_requests(self):
        truth = self.one("hfscan-test/plain-git-weights", "small.h5")
        full = self.download(truth["repo_id"], truth["path"]).body
        part = self.get("/hfscan-test/plain-git-weights/resolve/main/small.h5",
                        {"Range": "bytes=10-"})
        self.assertEqual(part.status, 206)
        self.assertEqual(part.headers["content-range"],
                         "bytes 10-%d/%d" % (truth["size"] - 1, truth["size"]))
        self.assertEqual(part.body, full[10:])
        cdn = self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml").headers["location"]
        size = self.one("hfscan-test/xet-gguf", "legacy.ggml")["size"]
        probe = fetch("GET", cdn, {"Range": "bytes=0-0"})
        self.assertEqual((probe.status, probe.headers["content-range"], len(probe.body)),
                         (206, "bytes 0-0/%d" % size, 1))
        self.assertEqual(fetch("GET", cdn, {"Range": "bytes=%d-" % size}).status, 416)

    def test_cdn_etag_is_not_the_sha256(self):
        redirect = self.get("/hfscan-test/sharded-safetensors/resolve/main/pytorch_model.BIN")
        cdn = fetch("HEAD", redirect.headers["location"])
        self.assertEqual(cdn.status, 200)
        self.assertNotEqual(cdn.headers["etag"], redirect.headers["x-linked-etag"])


class TestErrors(HubCase):
    """hub-api.md section 6, row by row."""

    def assertAnonymous401(self, reply, json_body):
        self.assertHubError(reply, 401, None, "Invalid username or password.")
        self.assertEqual(reply.headers["www-authenticate"],
                         'Bearer realm="Authentication required", charset="UTF-8"')
        if json_body:
            self.assertEqual(reply.json(), {"error": "Invalid username or password."})
        else:
            self.assertEqual(reply.body, b"Invalid username or password.")
            self.assertEqual(len(reply.body), 29)

    def test_private_or_missing_without_valid_token(self):
        for headers in (None, BAD):
            for repo in ("testuser/private-weights", "nobody/missing"):
                self.assertAnonymous401(self.get("/api/models/" + repo, headers), True)
                self.assertAnonymous401(self.get("/%s/resolve/main/model.safetensors" % repo,
                                                 headers), False)

    def test_missing_or_foreign_private_with_valid_token_is_404(self):
        for repo in ("nobody/missing", "testuser/private-weights"):
            reply = self.get("/api/models/" + repo, OTHER)
            self.assertHubError(reply, 404, "RepoNotFound", "Repository not found")
            self.assertEqual(reply.json(), {"error": "Repository not found"})
        self.assertEqual(self.get("/api/models/testuser/private-weights", GRANTED).status, 200)

    def test_entry_not_found_carries_commit(self):
        reply = self.get("/hfscan-test/xet-gguf/resolve/main/missing.gguf")
        self.assertHubError(reply, 404, "EntryNotFound", "Entry not found")
        commit = self.truth_of("hfscan-test/xet-gguf")[0]["commit"]
        self.assertEqual(reply.headers["x-repo-commit"], commit)
        self.assertEqual(reply.body, b"Entry not found")

    def test_revision_not_found(self):
        reply = self.get("/hfscan-test/xet-gguf/resolve/refs%2Fpr%2F9/legacy.ggml")
        self.assertHubError(reply, 404, "RevisionNotFound", "Invalid rev id: refs/pr/9")
        reply = self.get("/api/models/hfscan-test/xet-gguf/revision/" + "0" * 40)
        self.assertHubError(reply, 404, "RevisionNotFound")

    def test_gated_downloads(self):
        for repo in ("gated-org/gated-auto", "gated-org/gated-manual"):
            path = "/%s/resolve/main/config.json" % repo if repo.endswith("auto") else \
                "/%s/resolve/main/extra.pkl" % repo
            anon = self.get(path, method="HEAD")
            self.assertHubError(anon, 401, "GatedRepo")
            self.assertIn("Please log in", anon.headers["x-error-message"])
            self.assertIn("x-repo-commit", anon.headers)
            self.assertHubError(self.get(path, OTHER, "HEAD"), 403, "GatedRepo")
            self.assertEqual(self.get(path, GRANTED, "HEAD").status, 200)
        lfs = self.get("/gated-org/gated-auto/resolve/main/pytorch_model.bin", GRANTED, "HEAD")
        self.assertEqual(lfs.status, 302)

    def test_invalid_token_on_public_repo(self):
        reply = self.get("/api/models/hfscan-test/xet-gguf", BAD)
        self.assertHubError(reply, 401, None, "Invalid credentials in Authorization header")

    def test_disabled_repo(self):
        reply = self.get("/hfscan-test/disabled-model/resolve/main/model.bin")
        self.assertHubError(reply, 403, None, "Access to this resource is disabled.")
        self.assertTrue(self.get("/api/models/hfscan-test/disabled-model").json()["disabled"])

    def test_hf_warning_without_a_valid_token(self):
        urls = ("/api/models?limit=1", "/api/models/hfscan-test/xet-gguf",
                "/api/models/nobody/missing", "/hfscan-test/xet-gguf/resolve/main/legacy.ggml",
                "/hfscan-test/plain-git-weights/resolve/main/tiny.pkl",
                "/hfscan-test/xet-gguf/raw/main/legacy.ggml")
        for url in urls:
            for headers in (None, BAD):
                self.assertEqual(self.get(url, headers).headers.get("x-hf-warning"), HF_WARNING)
            for headers in (GRANTED, OTHER):
                self.assertNotIn("x-hf-warning", self.get(url, headers).headers, url)
        self.assertNotIn("x-hf-warning", self.get("/_hub/stats").headers)   # a test hook
        cdn = self.get(urls[3]).headers["location"]
        self.assertNotIn("x-hf-warning", fetch("GET", cdn).headers)        # not the API port

    def test_whoami(self):
        me = self.get("/api/whoami-v2", GRANTED).json()
        self.assertEqual((me["type"], me["name"]), ("user", "testuser"))
        self.assertEqual(self.get("/api/whoami-v2", BAD).status, 401)
        self.assertEqual(self.get("/api/whoami-v2").status, 401)

    def test_renamed_repo_answers_relative_307(self):
        info = self.get("/api/models/legacy-model/revision/main?blobs=true")
        self.assertEqual(info.status, 307)
        self.assertEqual(info.headers["location"],
                         "/api/models/hfscan-test/renamed-model/revision/main?blobs=true")
        self.assertEqual(self.get(info.headers["location"]).status, 200)
        resolve = self.get("/legacy-model/resolve/main/handler.mar", method="HEAD")
        self.assertEqual(resolve.headers["location"],
                         "/hfscan-test/renamed-model/resolve/main/handler.mar")
        cased = self.get("/api/models/HFSCAN-test/Renamed-Model/tree/main")
        self.assertEqual(cased.headers["location"],
                         "/api/models/hfscan-test/renamed-model/tree/main")
        for reply in (info, resolve, cased):
            self.assertEqual(reply.status, 307)
            self.assertTrue(reply.headers["location"].startswith("/"))

    def test_ratelimit_headers_on_every_response(self):
        replies = [self.get("/api/models?limit=1"), self.get("/api/models/nobody/missing"),
                   self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml", method="HEAD"),
                   self.get("/hfscan-test/xet-gguf/resolve/main/missing"),
                   self.get("/legacy-model/resolve/main/handler.mar"),
                   self.get("/hfscan-test/xet-gguf/raw/main/legacy.ggml")]
        buckets = []
        for reply in replies:
            match = RATELIMIT_RE.search(reply.headers["ratelimit"])
            buckets.append(match.group("resource_type"))
            policy = reply.headers["ratelimit-policy"]
            self.assertTrue(policy.startswith('"fixed window";"%s";' % buckets[-1]))
            self.assertEqual(POLICY_RE.search(policy).group("w"), "300")
        self.assertEqual(buckets, ["api", "api", "resolvers", "resolvers", "resolvers", "pages"])


class TestInstrumentation(HubCase):
    def test_request_log_and_stats(self):
        fetch("POST", self.url + "/_hub/reset-stats")
        redirect = self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml", GRANTED)
        fetch("GET", redirect.headers["location"], GRANTED)        # a client bug, counted
        stats = self.get("/_hub/stats").json()
        self.assertEqual(stats["requests"]["resolvers"], 1)
        self.assertEqual(stats["requests"]["cdn"], 1)
        self.assertEqual(stats["cdn_requests_with_authorization"], 1)
        with open(self.hub.log) as handle:
            last = [json.loads(line) for line in handle][-2:]
        self.assertEqual([e["host"] for e in last], ["api", "cdn"])
        self.assertEqual([e["status"] for e in last], [302, 200])
        self.assertEqual([e["bucket"] for e in last], ["resolvers", None])
        self.assertTrue(all(e["auth"] for e in last))
        self.assertTrue(last[0]["path"].startswith("/hfscan-test/xet-gguf/resolve/main/"))


class TestBigWorld(HubCase):
    ARGS = ["--models", "1010", "--big-repo-files", "1100", "--large-file-size", "123456789"]
    LOADS_TRUTH = False     # the truth would hash 123 MB: not needed here

    def test_listing_page_is_capped_at_1000(self):
        reply = self.get("/api/models?sort=downloads&limit=5000", GRANTED)
        self.assertEqual(len(reply.json()), 1000)
        self.assertIsNotNone(reply.next_link())
        last = fetch("GET", reply.next_link(), GRANTED)
        self.assertEqual(len(last.json()), 1012 - 1000)
        self.assertIsNone(last.next_link())
        self.assertEqual(len(self.get("/api/models", GRANTED).json()), 1000)   # documented default

    def test_tree_pages_of_1000_and_50_with_expand(self):
        for expand, size in (("false", 1000), ("true", 50)):
            url = "%s/api/models/hfscan-test/big-repo/tree/main?recursive=true&expand=%s" % (
                self.url, expand)
            seen, pages = [], 0
            while url:
                reply = fetch("GET", url)
                page = reply.json()
                url = reply.next_link()
                if url:
                    self.assertEqual(len(page), size)
                seen += [e["path"] for e in page]
                pages += 1
            self.assertEqual(len(seen), len(set(seen)))
            self.assertEqual(len([p for p in seen if "/part-" in p]), 1100)
            self.assertEqual(pages, -(-len(seen) // size))

    def test_nine_digit_size_has_134_byte_pointer(self):
        url = "/api/models/hfscan-test/large-file/paths-info/main"
        entry = self.get(url, {"Content-Type": "application/json"}, "POST",
                         json.dumps({"paths": ["large.safetensors"]})).json()[0]
        self.assertEqual(entry["lfs"]["size"], 123456789)
        self.assertEqual(entry["lfs"]["pointerSize"], 134)
        raw = self.get("/hfscan-test/large-file/raw/main/large.safetensors").body
        self.assertEqual(len(raw), 134)
        self.assertEqual(git_oid(raw), entry["oid"])


class TestRateLimits(HubCase):
    ARGS = ["--models", "14", "--quota-api", "3", "--quota-resolvers", "2", "--window", "2",
            "--retry-after"]
    LOADS_TRUTH = False

    def test_fixed_window_429_and_reset(self):
        fetch("POST", self.url + "/_hub/reset-ratelimits")
        fetch("POST", self.url + "/_hub/reset-stats")
        replies = [self.get("/api/models?limit=1") for _ in range(5)]
        self.assertEqual([r.status for r in replies], [200, 200, 200, 429, 429])
        remaining = [int(RATELIMIT_RE.search(r.headers["ratelimit"]).group("r")) for r in replies]
        self.assertEqual(remaining, [2, 1, 0, 0, 0])
        self.assertEqual(ratelimit_t(replies[0]), 2)        # the window opened right now
        self.assertEqual(replies[3].json(), {"error": ANONYMOUS_429})
        self.assertEqual(replies[3].headers["retry-after"],
                         RATELIMIT_RE.search(replies[3].headers["ratelimit"]).group("t"))
        self.assertEqual(POLICY_RE.search(replies[3].headers["ratelimit-policy"]).group("q"), "3")
        # Other buckets and other callers have their own windows; the CDN has none.
        granted = [self.get("/api/models?limit=1", GRANTED) for _ in range(4)]
        self.assertEqual([r.status for r in granted], [200, 200, 200, 429])
        self.assertEqual(granted[3].json(), {"error": (
            "We had to rate limit you, you hit the quota of 3 api requests per 2 seconds "
            "period. Upgrade to a PRO account for higher limits.")})
        redirect = self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml")
        self.assertEqual(redirect.status, 302)
        for _ in range(5):
            self.assertEqual(fetch("GET", redirect.headers["location"]).status, 200)
        stats = self.get("/_hub/stats").json()
        self.assertEqual(stats["status_429"]["api"], 3)
        self.assertEqual(stats["requests_into_exhausted_window"]["api"], 3)
        time.sleep(2.1)
        self.assertEqual(self.get("/api/models?limit=1").status, 200)


class TestFaults(HubCase):
    ARGS = ["--models", "14", "--cut-downloads",
            "--broken-blobs", "hfscan-test/sharded-safetensors",
            "--cdn-mismatch", "hfscan-test/xet-gguf", "--listing-repeat", "--no-ratelimit-headers",
            "--no-hf-warning"]

    def test_cut_download_then_resume(self):
        for repo, path in (("hfscan-test/sharded-safetensors", "model-00001-of-00002.safetensors"),
                           ("hfscan-test/plain-git-weights", "tiny.pkl")):
            truth = self.one(repo, path)
            first = self.get("/%s/resolve/main/%s" % (repo, path), method="HEAD")
            url = first.headers.get("location") or self.url + "/%s/resolve/main/%s" % (repo, path)
            partial, length = self.read_cut(url)
            self.assertEqual(length, truth["size"])
            self.assertEqual(len(partial), truth["size"] // 2)
            rest = fetch("GET", url, {"Range": "bytes=%d-" % len(partial)})
            self.assertEqual(rest.status, 206)
            self.assertEqual(hashlib.sha256(partial + rest.body).hexdigest(), truth["sha256"])

    def test_broken_blobs(self):
        base = "/api/models/hfscan-test/sharded-safetensors"
        self.assertEqual(self.get(base + "?blobs=true").status, 500)
        self.assertEqual(self.get(base).status, 200)
        self.assertEqual(self.get(base + "/tree/main").status, 200)

    def test_cdn_mismatch_keeps_metadata_hash_as_truth(self):
        truth = self.one("hfscan-test/xet-gguf", "legacy.ggml")
        self.assertTrue(truth["cdn_mismatch"])
        redirect = self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml")
        self.assertEqual(redirect.headers["x-linked-etag"], '"%s"' % truth["sha256"])
        partial, _ = self.read_cut(redirect.headers["location"])       # --cut-downloads
        body = partial + fetch("GET", redirect.headers["location"],
                               {"Range": "bytes=%d-" % len(partial)}).body
        self.assertEqual(len(body), truth["size"])
        self.assertNotEqual(hashlib.sha256(body).hexdigest(), truth["sha256"])

    def test_listing_repeat_needs_dedup(self):
        first = self.get("/api/models?sort=downloads&limit=3")
        second = fetch("GET", first.next_link())
        self.assertEqual(second.json()[0]["id"], first.json()[-1]["id"])
        self.assertNotIn("ratelimit", first.headers)
        self.assertNotIn("x-hf-warning", first.headers)          # --no-hf-warning


class TestRepoFaults(HubCase):
    """--git-mismatch, --broken-tree and --broken-raw, each given for two repos."""
    GIT = ("hfscan-test/plain-git-weights", "hfscan-test/mobile-misc")
    TREE = ("hfscan-test/nested-folders", "gated-org/gated-auto")
    RAW = ("hfscan-test/tricky-names", "hfscan-test/xet-gguf")
    ARGS = ["--models", "14",
            "--git-mismatch", GIT[0], "--git-mismatch", GIT[1],
            "--broken-tree", TREE[0], "--broken-tree", TREE[1],
            "--broken-raw", RAW[0], "--broken-raw", RAW[1]]

    def assertServerError(self, reply, bucket, json_body):
        self.assertEqual(reply.status, 500, reply.body)
        if json_body:
            self.assertEqual(reply.json(), {"error": "Internal Error"})
        else:
            self.assertEqual(reply.body, b"Internal Error")
        self.assertEqual(RATELIMIT_RE.search(reply.headers["ratelimit"]).group("resource_type"),
                         bucket)
        self.assertTrue(reply.headers["ratelimit-policy"].startswith('"fixed window";"%s";'
                                                                     % bucket))

    def regular_urls(self, truth):
        """resolve, its resolve-cache hop and raw: all serve a regular file's bytes."""
        path = quote(truth["path"])
        return ["/%s/resolve/main/%s" % (truth["repo_id"], path),
                "/api/resolve-cache/models/%s/%s/%s" % (truth["repo_id"], truth["commit"], path),
                "/%s/raw/main/%s" % (truth["repo_id"], path)]

    def test_git_mismatch_truth_flags_nonempty_regular_files(self):
        flagged = {(t["repo_id"], t["path"]) for t in self.truth if t["git_mismatch"]}
        expected = {(t["repo_id"], t["path"]) for t in self.truth
                    if t["repo_id"] in self.GIT and t["storage"] == "git" and t["size"] > 0}
        self.assertEqual(flagged, expected)
        self.assertGreaterEqual(len(expected), 8)
        self.assertFalse(self.one(self.GIT[0], "empty.pkl")["git_mismatch"])   # nothing to alter
        self.assertFalse(any(t["cdn_mismatch"] for t in self.truth))

    def test_git_mismatch_alters_get_bodies_only(self):
        for truth in self.truth_of(self.GIT[0]) + self.truth_of(self.GIT[1]):
            if truth["storage"] != "git":
                body = self.download(truth["repo_id"], truth["path"]).body    # LFS: untouched
                self.assertEqual(hashlib.sha256(body).hexdigest(), truth["sha256"], truth)
                continue
            bodies = set()
            for url in self.regular_urls(truth):
                head = self.get(url, method="HEAD")
                self.assertEqual(head.status, 200, url)
                self.assertEqual(head.headers["etag"], '"%s"' % truth["git_oid"])
                self.assertEqual(int(head.headers["content-length"]), truth["size"])
                reply = self.get(url)
                self.assertEqual(reply.headers["etag"], '"%s"' % truth["git_oid"])
                self.assertEqual(len(reply.body), truth["size"])
                bodies.add(reply.body)
            self.assertEqual(len(bodies), 1, truth)          # the same bytes on every path
            body = bodies.pop()
            self.assertEqual(hashlib.sha256(body).hexdigest() != truth["sha256"],
                             truth["git_mismatch"], truth)
            self.assertEqual(git_oid(body) != truth["git_oid"], truth["git_mismatch"], truth)
        other = self.one("hfscan-test/nested-folders", "tf/saved_model/saved_model.pb")
        body = self.download(other["repo_id"], other["path"]).body
        self.assertEqual(hashlib.sha256(body).hexdigest(), other["sha256"])

    def test_git_mismatch_metadata_claims_the_true_file(self):
        repo = self.GIT[0]
        info = self.get("/api/models/%s?blobs=true" % repo).json()
        tree = self.get("/api/models/%s/tree/main?recursive=true" % repo).json()
        body = json.dumps({"paths": [t["path"] for t in self.truth_of(repo)]})
        paths = self.get("/api/models/%s/paths-info/main" % repo,
                         {"Content-Type": "application/json"}, "POST", body).json()
        self.assertEqual(len(tree), len(self.truth_of(repo)))
        for entry in info["siblings"]:
            truth = self.one(repo, entry["rfilename"])
            self.assertEqual((entry["blobId"], entry["size"]), (truth["git_oid"], truth["size"]))
        for entry in tree + paths:
            truth = self.one(repo, entry["path"])
            self.assertEqual((entry["oid"], entry["size"]), (truth["git_oid"], truth["size"]))

    def test_git_mismatch_ranges_are_slices_of_the_altered_bytes(self):
        truth = self.one(self.GIT[0], "small.h5")
        size = truth["size"]
        for url in self.regular_urls(truth):
            full = self.get(url).body
            for wanted, piece in (("bytes=0-0", full[:1]), ("bytes=0-9", full[:10]),
                                  ("bytes=10-", full[10:]), ("bytes=-5", full[-5:]),
                                  ("bytes=5-%d" % (size + 50), full[5:])):
                reply = self.get(url, {"Range": wanted})
                self.assertEqual((reply.status, reply.body), (206, piece), (url, wanted))
            head, tail = (self.get(url, {"Range": r}).body for r in ("bytes=0-99", "bytes=100-"))
            self.assertEqual(head + tail, full)
            self.assertNotEqual(hashlib.sha256(head + tail).hexdigest(), truth["sha256"])
            self.assertEqual(self.get(url, {"Range": "bytes=%d-" % size}).status, 416)

    def test_broken_tree(self):
        for repo in self.TREE:
            for query in ("", "?recursive=true", "?recursive=true&expand=true"):
                url = "/api/models/%s/tree/main%s" % (repo, query)
                self.assertServerError(self.get(url), "api", True)
            # Access, revision and folder errors come first; the rest of the repo works.
            self.assertHubError(self.get("/api/models/%s/tree/nope" % repo), 404,
                                "RevisionNotFound")
            self.assertHubError(self.get("/api/models/%s/tree/main/no-such-dir" % repo), 404,
                                "EntryNotFound")
            self.assertEqual(self.get("/api/models/%s?blobs=true" % repo).status, 200)
            paths = self.get("/api/models/%s/paths-info/main" % repo,
                             {"Content-Type": "application/json"}, "POST",
                             json.dumps({"paths": ["config.json"]}))
            self.assertEqual(paths.status, 200)
        self.assertServerError(self.get("/api/models/%s/tree/main/onnx%%2Ffp16" % self.TREE[0]),
                               "api", True)
        self.assertEqual(self.get("/api/models/hfscan-test/xet-gguf/tree/main").status, 200)

    def test_broken_raw(self):
        for truth in self.truth_of(self.RAW[0]) + self.truth_of(self.RAW[1]):
            url = "/%s/raw/main/%s" % (truth["repo_id"], quote(truth["path"]))
            self.assertServerError(self.get(url), "pages", False)
            self.assertEqual(self.get(url, method="HEAD").status, 500)
            self.assertEqual(self.download(truth["repo_id"], truth["path"]).status, 200)
        self.assertHubError(self.get("/%s/raw/main/missing.bin" % self.RAW[0]), 404,
                            "EntryNotFound")
        ok = self.get("/hfscan-test/sharded-safetensors/raw/main/config.json")
        self.assertEqual(ok.status, 200)
        self.assertEqual(hashlib.sha256(ok.body).hexdigest(),
                         self.one("hfscan-test/sharded-safetensors", "config.json")["sha256"])


class TestTransientFaults(HubCase):
    ARGS = ["--models", "3", "--fault-rate", "0.5", "--fault-seed", "7", "--latency-ms", "30"]
    LOADS_TRUTH = False

    def test_some_api_calls_fail_with_5xx(self):
        started = time.time()
        statuses = {self.get("/api/models?limit=1").status for _ in range(30)}
        self.assertGreaterEqual(time.time() - started, 30 * 0.03)
        self.assertIn(200, statuses)
        self.assertTrue(statuses - {200})
        self.assertLessEqual(statuses - {200}, {500, 502, 503})
        self.assertEqual(self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml").status, 302)


class TestOtherQuota429(HubCase):
    ARGS = ["--models", "3", "--other-quota-429", "0.5", "--fault-seed", "7"]
    LOADS_TRUTH = False

    def test_429_while_the_window_has_room(self):
        refused = [r for r in (self.get("/api/models?limit=1") for _ in range(30))
                   if r.status == 429]
        self.assertTrue(refused)
        for r in refused:
            self.assertEqual(json.loads(r.body), {"error": "You have exceeded the rate limit for "
                                                           "repository creation (300 per day)."})
            remaining = int(re.search(r"r=(\d+)", r.headers["ratelimit"]).group(1))
            self.assertGreater(remaining, 0)
        self.assertEqual(self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml").status, 302)


class TestRevokedToken(HubCase):
    ARGS = ["--models", "3", "--revoke-token-after", "2"]
    LOADS_TRUTH = False

    def test_the_token_is_refused_after_n_requests(self):
        path = "/api/models/hfscan-test/xet-gguf"
        self.assertEqual([self.get(path, GRANTED).status for _ in range(2)], [200, 200])
        refused = self.get(path, GRANTED)
        self.assertEqual(refused.status, 401)
        self.assertEqual(json.loads(refused.body),
                         {"error": "Invalid credentials in Authorization header"})
        self.assertEqual(self.get(path).status, 200, "anonymous callers are not affected")


class TestRotatedToken(unittest.TestCase):
    def test_the_refusal_writes_a_new_token_that_keeps_working(self):
        with tempfile.TemporaryDirectory(prefix="hubtest-rotate-") as d:
            token_file = os.path.join(d, "token")
            with open(token_file, "w") as handle:
                handle.write("hf_testuser_granted\n")
            hub = HubProcess(["--models", "10", "--revoke-token-after", "1",
                              "--rotate-token-file", token_file])
            try:
                path = hub.url + "/api/models/testuser/private-weights"
                self.assertEqual(fetch("GET", path, GRANTED).status, 200)
                with open(token_file) as handle:
                    self.assertEqual(handle.read(), "hf_testuser_granted\n", "not yet rotated")
                self.assertEqual(fetch("GET", path, GRANTED).status, 401)
                with open(token_file) as handle:
                    rotated = handle.read().strip()
                self.assertEqual(rotated, "hf_testuser_rotated")
                new = {"Authorization": "Bearer " + rotated}
                self.assertEqual([fetch("GET", path, new).status for _ in range(3)], [200] * 3)
                self.assertEqual(fetch("GET", path, GRANTED).status, 401, "the old one stays refused")
            finally:
                hub.stop()


class TestVanish(unittest.TestCase):
    def test_after_n_requests_the_api_port_answers_nothing_and_closes(self):
        hub = HubProcess(["--models", "3", "--vanish-after", "2"])
        try:
            path = hub.url + "/api/models/hfscan-test/xet-gguf"
            self.assertEqual([fetch("GET", path).status for _ in range(2)], [200, 200])
            with self.assertRaises((http.client.HTTPException, OSError)):
                fetch("GET", path)
            deadline = time.time() + 10
            refused = False
            while not refused and time.time() < deadline:  # the port closes right after
                try:
                    fetch("GET", path, timeout=2)
                except ConnectionRefusedError:
                    refused = True
                except (http.client.HTTPException, OSError):
                    pass
            self.assertTrue(refused, "connections are refused once the port is closed")
        finally:
            hub.stop()


class TestWorldFiles(unittest.TestCase):
    def run_hub(self, *args):
        return subprocess.run([sys.executable, "-B", HUB] + list(args), check=True,
                              capture_output=True, text=True).stdout

    def test_composition_of_a_small_world(self):
        lines = self.run_hub("--models", "12", "--print-truth").splitlines()
        truth = [json.loads(line) for line in lines]
        paths = [t["path"] for t in truth]
        exts = {os.path.splitext(p)[1] for p in paths}
        self.assertLessEqual(set(TARGET_EXTS), {e.lower() for e in exts})
        self.assertTrue(any(e != e.lower() and e.lower() in TARGET_EXTS for e in exts))
        self.assertEqual({t["storage"] for t in truth}, {"lfs", "xet", "git"})
        self.assertTrue(any(t["storage"] == "git" and t["size"] == 0 and t["path"].endswith(".pkl")
                            for t in truth))
        for needle in (" ", ",", '"', "\u00fc", "/=", "-00001-of-00002.safetensors", "a/b/c/d/"):
            self.assertTrue(any(needle in "/" + p for p in paths), needle)
        self.assertEqual({t["gated"] for t in truth}, {False, "auto", "manual"})
        self.assertTrue(any(t["private"] for t in truth))
        repos = {t["repo_id"]: t for t in truth}
        self.assertEqual(len(repos), 12)
        downloads = [t["downloads"] for t in repos.values()]
        self.assertEqual(len(set(downloads)), 12)
        self.assertLess(min(downloads), 10)
        self.assertGreater(max(downloads), 500000)
        no_targets = [r for r in repos if not any(
            t["path"].lower().endswith(TARGET_EXTS) for t in truth if t["repo_id"] == r)]
        self.assertEqual(no_targets, ["hfscan-test/no-target-files"])

    def world_with(self, tmp, repo):
        """A generated world of 3 models plus repo, written to tmp: (its path, the world)."""
        fixture = os.path.join(tmp, "world.json")
        self.run_hub("--models", "3", "--dump-world", fixture)
        with open(fixture) as handle:
            world = json.load(handle)
        world["repos"].append(repo)
        with open(fixture, "w") as handle:
            json.dump(world, handle)
        return fixture, world

    def test_a_repo_added_by_hand_needs_only_id_and_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            fixture, _ = self.world_with(tmp, {"id": "newguy/new-model", "commit": "3" * 40, "downloads": 5,
                                               "files": [{"path": "m.gguf", "storage": "lfs", "size": 10}]})
            hub = HubProcess(["--world", fixture])
            try:
                listed = json.loads(fetch("GET", hub.url + "/api/models?limit=100").body)
                self.assertIn("newguy/new-model", [m["id"] for m in listed])
            finally:
                hub.stop()

    def test_security_verdicts_of_a_fixture(self):
        with tempfile.TemporaryDirectory() as tmp:
            fixture, world = self.world_with(tmp, {"id": "bad/mixed", "commit": "4" * 40, "downloads": 5, "files": [
                {"path": "evil.pkl", "storage": "git", "text": "x",
                 "security": {"virus": "Pickle.Malware.SysAccess",
                              "imports": [["builtins", "exec", "dangerous"],
                                          ["torch", "FloatStorage", "innocuous"]]}},
                {"path": "odd.bin", "storage": "lfs", "size": 10,
                 "security": {"imports": [["numpy.core.multiarray", "_reconstruct", "suspicious"]]}},
                {"path": "new.pt", "storage": "lfs", "size": 10, "security": {"status": "unscanned"}},
                {"path": "fine.pt", "storage": "lfs", "size": 10},
                {"path": "w.safetensors", "storage": "lfs", "size": 10}]})
            hub = HubProcess(["--world", fixture])
            try:
                tree = json.loads(fetch("GET", hub.url + "/api/models/bad/mixed/tree/main?expand=true").body)
                status = {e["path"]: e["securityFileStatus"] for e in tree}
                self.assertEqual(status["evil.pkl"], {
                    "status": "unsafe", "avScan": {"status": "unsafe", "message": "Pickle.Malware.SysAccess"},
                    "pickleImportScan": {"status": "unsafe", "version": "0.0.32", "pickleImports": [
                        {"module": "builtins", "name": "exec", "safety": "dangerous"},
                        {"module": "torch", "name": "FloatStorage", "safety": "innocuous"}]}})
                self.assertEqual((status["odd.bin"]["status"], status["odd.bin"]["avScan"]),
                                 ("suspicious", {"status": "safe"}))
                self.assertEqual(status["new.pt"], {"status": "unscanned", "avScan": {"status": "unscanned"},
                                                    "pickleImportScan": {"status": "unscanned"}})
                self.assertEqual(status["fine.pt"]["pickleImportScan"],
                                 {"status": "safe", "pickleImports": [], "version": "0.0.32"})
                self.assertEqual(status["w.safetensors"], {"status": "safe", "avScan": {"status": "safe"},
                                                           "pickleImportScan": {"status": "unscanned"}})
                plain = json.loads(fetch("GET", hub.url + "/api/models/bad/mixed/tree/main").body)
                self.assertNotIn("securityFileStatus", plain[0])
                body = json.dumps({"paths": ["odd.bin"], "expand": True})
                info = json.loads(fetch("POST", hub.url + "/api/models/bad/mixed/paths-info/main",
                                        {"Content-Type": "application/json"}, body).body)
                self.assertEqual(info[0]["securityFileStatus"], status["odd.bin"])
                summary = json.loads(fetch("GET", hub.url + "/api/models/bad/mixed?securityStatus=true").body)
                self.assertEqual(summary["securityRepoStatus"], {"scansDone": True, "filesWithIssues": [
                    {"path": "evil.pkl", "level": "unsafe"}, {"path": "odd.bin", "level": "suspicious"}]})
                truth = [json.loads(line) for line in fetch("GET", hub.url + "/_hub/truth").body.decode().splitlines()]
                self.assertEqual({t["path"]: t["security"] for t in truth if t["repo_id"] == "bad/mixed"}, status)
            finally:
                hub.stop()
            world["repos"][-1]["files"][0]["security"] = {"imports": [["os", "system", "evil"]]}
            with open(fixture, "w") as handle:
                json.dump(world, handle)
            refused = subprocess.run([sys.executable, HUB, "--world", fixture, "--print-truth"],
                                     capture_output=True, text=True)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("bad/mixed/evil.pkl: each import is [module, name, safety", refused.stderr)

    def test_dump_edit_and_load(self):
        with tempfile.TemporaryDirectory() as tmp:
            fixture = os.path.join(tmp, "world.json")
            self.run_hub("--models", "13", "--seed", "5", "--dump-world", fixture)
            before = self.run_hub("--world", fixture, "--print-truth")
            self.assertEqual(before, self.run_hub("--models", "13", "--seed", "5", "--print-truth"))
            with open(fixture) as handle:
                world = json.load(handle)
            repo = world["repos"][0]
            repo["commit"] = "f" * 40
            generated = [f for f in repo["files"] if "size" in f]
            generated[-1]["version"] = 1              # same size, new bytes
            removed = repo["files"].pop(0)["path"]
            world["repos"].append({"id": "new-org/added", "downloads": 5, "_id": "a" * 24,
                                   "commit": "b" * 40, "lastModified": "2025-01-01T00:00:00.000Z",
                                   "files": [{"path": "w.gguf", "storage": "xet", "size": 10}]})
            with open(fixture, "w") as handle:
                json.dump(world, handle)
            lines = self.run_hub("--world", fixture, "--print-truth").splitlines()
            after = [json.loads(line) for line in lines]
            old = [json.loads(line) for line in before.splitlines()]
            first = [t for t in after if t["repo_id"] == repo["id"]]
            self.assertEqual({t["commit"] for t in first}, {"f" * 40})
            self.assertNotIn(removed, [t["path"] for t in first])
            changed = generated[-1]["path"]
            old_sha = [t["sha256"] for t in old
                       if t["repo_id"] == repo["id"] and t["path"] == changed]
            new_sha = [t["sha256"] for t in first if t["path"] == changed]
            self.assertNotEqual(old_sha, new_sha)
            self.assertIn("new-org/added", {t["repo_id"] for t in after})

    def test_git_mismatch_in_printed_truth(self):
        lines = self.run_hub("--models", "3", "--git-mismatch", "HFSCAN-test/Plain-Git-Weights",
                             "--print-truth").splitlines()
        flagged = {t["path"] for t in map(json.loads, lines) if t["git_mismatch"]}
        self.assertEqual(flagged, {"tiny.pkl", "graph.pb", "small.h5", "model.tflite",
                                   "config.json", ".gitattributes"})


class TestRateLimitBodies(HubCase):
    """hub-api.md section 12: 429 bodies, no Retry-After by default, aligned windows."""
    ARGS = ["--models", "3", "--quota-api", "2", "--quota-resolvers", "1", "--window", "86400",
            "--aligned-windows"]
    LOADS_TRUTH = False

    def test_window_exhaustion_429(self):
        fetch("POST", self.url + "/_hub/reset-ratelimits")
        anonymous = [self.get("/api/models?limit=1") for _ in range(3)]
        granted = [self.get("/api/models?limit=1", GRANTED) for _ in range(3)]
        self.assertEqual([r.status for r in anonymous + granted], [200, 200, 429] * 2)
        self.assertEqual(anonymous[2].json(), {"error": ANONYMOUS_429})
        self.assertEqual(granted[2].json(), {"error": (
            "We had to rate limit you, you hit the quota of 2 api requests per 1440 minutes "
            "period. Upgrade to a PRO account for higher limits.")})
        for refused in (anonymous[2], granted[2]):
            self.assertNotIn("retry-after", refused.headers)
            self.assertEqual(RATELIMIT_RE.search(refused.headers["ratelimit"]).group("r"), "0")
            self.assertEqual(POLICY_RE.search(refused.headers["ratelimit-policy"]).groups(),
                             ("2", "86400"))
        self.assertEqual(anonymous[2].headers["x-hf-warning"], HF_WARNING)
        path = "/hfscan-test/xet-gguf/resolve/main/legacy.ggml"
        resolves = [self.get(path, OTHER, "HEAD"), self.get(path, OTHER)]
        self.assertEqual([r.status for r in resolves], [302, 429])
        self.assertEqual(resolves[1].json()["error"],
                         "We had to rate limit you, you hit the quota of 1 resolvers requests per "
                         "1440 minutes period. Upgrade to a PRO account for higher limits.")

    def test_aligned_window_ends_with_the_clock(self):
        fetch("POST", self.url + "/_hub/reset-ratelimits")
        for _ in range(3):              # the first request of a caller too
            before = time.time()
            reply = self.get("/api/models/hfscan-test/xet-gguf", GRANTED)
            after = time.time()
            if math.floor(before / 86400) != math.floor(after / 86400):
                continue                # midnight UTC passed during the request
            self.assertLessEqual(seconds_to_window_end(after, 86400), ratelimit_t(reply))
            self.assertLessEqual(ratelimit_t(reply), seconds_to_window_end(before, 86400))


class TestHtml429(HubCase):
    ARGS = ["--models", "3", "--quota-api", "1", "--html-429-rate", "0.5", "--fault-seed", "3"]
    LOADS_TRUTH = False

    def test_a_fraction_of_429s_are_html_without_ratelimit(self):
        self.assertEqual(self.get("/api/models?limit=1").status, 200)
        refused = [self.get("/api/models?limit=1") for _ in range(30)]
        self.assertEqual({r.status for r in refused}, {429})
        html = [r.headers["content-type"].startswith("text/html") for r in refused]
        for reply, is_html in zip(refused, html):
            if is_html:
                self.assertEqual(reply.body, HTML_429)
                self.assertNotIn("ratelimit", reply.headers)
                self.assertNotIn("ratelimit-policy", reply.headers)
            else:
                self.assertEqual(reply.json(), {"error": ANONYMOUS_429})
                self.assertIn('r=0', reply.headers["ratelimit"])
        self.assertTrue(any(html) and not all(html), html)
        draws = random.Random("html-429:3")            # seeded by --fault-seed
        self.assertEqual(html, [draws.random() < 0.5 for _ in range(30)])
        self.assertEqual(self.get("/_hub/stats").json()["html_429s"], sum(html))
        self.assertEqual(self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml").status, 302)


class TestSiblingFaults(HubCase):
    """--siblings-cut, --siblings-empty and --siblings-empty-rate (hub-api.md section 12)."""
    EMPTY = "hfscan-test/xet-gguf"
    ARGS = ["--models", "14", "--siblings-cut", "5", "--siblings-empty", EMPTY,
            "--siblings-empty-rate", "0.5"]

    def siblings_everywhere(self, repo):
        """Every siblings array the hub sends for `repo`, as lists of names."""
        found = []
        for query in ("", "/revision/main", "?blobs=true", "/revision/main?blobs=true",
                      "?expand=siblings"):
            found.append(self.get("/api/models/%s%s" % (repo, query)).json()["siblings"])
        for query in ("expand=siblings&expand=sha", "full=true"):
            items = self.get("/api/models?limit=100&%s" % query).json()
            found += [i["siblings"] for i in items if i["id"] == repo]
        self.assertEqual(len(found), 7)
        return [[s["rfilename"] for s in siblings] for siblings in found]

    def assertWholeTree(self, repo):
        paths = [t["path"] for t in self.truth_of(repo)]
        tree = self.get("/api/models/%s/tree/main?recursive=true" % repo).json()
        self.assertEqual(sorted(e["path"] for e in tree if e["type"] == "file"), paths)
        info = self.get("/api/models/%s/paths-info/main" % repo,
                        {"Content-Type": "application/json"}, "POST",
                        json.dumps({"paths": paths})).json()
        self.assertEqual([e["path"] for e in info], paths)

    def test_truth_flags(self):
        filler = repo_ids(self.truth)[13]
        big = {r for r in repo_ids(self.truth) if len(self.truth_of(r)) > 5}
        self.assertEqual(flagged(self.truth, "siblings_cut"), big | {self.EMPTY, filler})
        self.assertLessEqual(len(self.truth_of(filler)), 5)    # cut because emptied
        for field in ("tree_broken", "blobs_broken", "region_blocked", "cut_download"):
            self.assertEqual(flagged(self.truth, field), set(), field)

    def test_first_n_sorted_paths_everywhere(self):
        repo = "hfscan-test/nested-folders"
        paths = [t["path"] for t in self.truth_of(repo)]
        self.assertEqual(len(paths), 11)
        for names in self.siblings_everywhere(repo):
            self.assertEqual(names, sorted(paths)[:5])
        self.assertWholeTree(repo)

    def test_empty_siblings_everywhere(self):
        for repo in (self.EMPTY, repo_ids(self.truth)[13]):
            self.assertEqual(self.siblings_everywhere(repo), [[]] * 7)
            self.assertWholeTree(repo)

    def test_a_repo_of_n_files_is_whole(self):
        repo = "gated-org/gated-auto"
        paths = [t["path"] for t in self.truth_of(repo)]
        self.assertEqual(len(paths), 5)
        self.assertEqual(self.siblings_everywhere(repo), [paths] * 7)


class TestManyFiles(unittest.TestCase):
    def truth(self, *args):
        out = subprocess.run([sys.executable, "-B", HUB, "--print-truth"] + list(args),
                             check=True, capture_output=True, text=True).stdout
        return [json.loads(line) for line in out.splitlines()]

    def test_many_files_rate_adds_files_to_some_fillers_only(self):
        plain = self.truth("--models", "40")
        more = self.truth("--models", "40", "--many-files-rate", "0.1")
        before = {(t["repo_id"], t["path"]) for t in plain}
        self.assertEqual([t for t in more if (t["repo_id"], t["path"]) in before], plain)
        added = [t for t in more if (t["repo_id"], t["path"]) not in before]
        fillers = repo_ids(plain)[13:]
        chosen = lowest("many-files-rate", [r.lower() for r in fillers], 0.1)
        self.assertEqual(len(chosen), 3)                  # ceil(0.1 x 27)
        self.assertEqual({t["repo_id"].lower() for t in added}, chosen)
        shapes = set()
        for repo in {t["repo_id"] for t in added}:
            mine = [t for t in added if t["repo_id"] == repo]
            self.assertTrue(40 <= len(mine) <= 60, len(mine))
        for t in added:
            match = re.match(r"^(shards|pickles|meta)/part-\d{3}\.(safetensors|pkl|bin|json)$",
                             t["path"])
            self.assertIsNotNone(match, t["path"])
            kind = match.group(2)
            self.assertIn(t["storage"], ("lfs", "xet") if kind == "safetensors" else ("git",))
            shapes.add((kind, t["storage"]))
        self.assertEqual(shapes, {("safetensors", "lfs"), ("safetensors", "xet"), ("pkl", "git"),
                                  ("bin", "git"), ("json", "git")})

    def test_explicit_flags_win_over_real(self):
        real = self.truth("--models", "16", "--real")
        self.assertTrue(flagged(real, "cut_download"))
        many = [r for r in repo_ids(real) if len([t for t in real if t["repo_id"] == r]) > 40]
        self.assertEqual(len(many), 1)
        self.assertIn(many[0], flagged(real, "siblings_cut"))
        tuned = self.truth("--models", "16", "--real", "--siblings-cut", "100",
                           "--cut-downloads-rate", "0", "--region-blocked-rate", "0")
        self.assertEqual(flagged(tuned, "cut_download") | flagged(tuned, "region_blocked"), set())
        self.assertNotIn(many[0], flagged(tuned, "siblings_cut"))
        self.assertEqual(flagged(tuned, "tree_broken"), flagged(real, "tree_broken"))


class TestOddNames(HubCase):
    """--odd-names: names that are not UTF-8 go out as their bytes everywhere."""
    ARGS = ["--models", "4", "--odd-names"]
    REPO = "hfscan-test/odd-names"
    LOADS_TRUTH = False     # the truth holds raw bytes: read below as the README says

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        text = cls.get("/_hub/truth").body.decode("utf-8", "surrogateescape")
        cls.truth = [json.loads(line) for line in text.split("\n") if line]

    def test_the_flag_only_adds_the_repo(self):
        def truth(*args):
            out = subprocess.run([sys.executable, "-B", HUB, "--print-truth", "--models", "14"]
                                 + list(args), check=True, capture_output=True).stdout
            return out.split(b"\n")
        plain, odd = truth(), truth("--odd-names")
        self.assertEqual([line for line in odd if self.REPO.encode() not in line], plain)

    def test_tree_json_and_downloads_carry_the_raw_bytes(self):
        body = self.get("/api/models/%s/tree/main?recursive=true" % self.REPO).body
        self.assertIn(b'"bad-\xff-byte.bin"', body)
        self.assertIn(b'"nul\\u0000byte.safetensors"', body)
        with self.assertRaises(UnicodeDecodeError):
            body.decode("utf-8")
        for path in ("latin1-caf\udce9.pt", "dir-\udcfe/inner.safetensors", "line\nbreak.pth",
                     "c1-\u0085next.ptl"):
            reply = self.download_bytes_of(path)
            self.assertEqual(reply.status, 200, path)
            self.assertEqual(hashlib.sha256(reply.body).hexdigest(), self.one(self.REPO, path)["sha256"])

    def download_bytes_of(self, path):
        """download(), with the path percent-encoded as its bytes."""
        reply = self.get("/%s/resolve/main/%s" % (self.REPO, quote(path, errors="surrogateescape")))
        return fetch("GET", reply.headers["location"]) if reply.status == 302 else reply


class TestRepoFaultRates(HubCase):
    """The rate flags pick fillers by stable hash; named repos are added to the picks."""
    ARGS = ["--models", "16", "--broken-tree-rate", "0.5", "--broken-tree", "hfscan-test/xet-gguf",
            "--broken-blobs-rate", "0.01", "--region-blocked-rate", "0.34"]

    def test_truth_names_the_picked_repos(self):
        fillers = [r.lower() for r in repo_ids(self.truth)[13:]]
        self.assertEqual(len(fillers), 3)
        lower = lambda field: {r.lower() for r in flagged(self.truth, field)}  # noqa: E731
        self.assertEqual(lower("tree_broken"),
                         lowest("broken-tree-rate", fillers, 0.5) | {"hfscan-test/xet-gguf"})
        self.assertEqual(len(lower("tree_broken")), 3)                    # ceil(0.5 x 3) + 1
        self.assertEqual(lower("blobs_broken"), lowest("broken-blobs-rate", fillers, 0.01))
        self.assertEqual(len(lower("blobs_broken")), 1)                   # at least one
        self.assertEqual(lower("region_blocked"), lowest("region-blocked-rate", fillers, 0.34))
        self.assertEqual(len(lower("region_blocked")), 2)                 # ceil(1.02)
        self.assertEqual(lower("siblings_cut") | lower("cut_download"), set())

    def test_picked_repos_fail(self):
        for repo in repo_ids(self.truth):
            tree = self.get("/api/models/%s/tree/main" % repo, GRANTED)
            blobs = self.get("/api/models/%s?blobs=true" % repo, GRANTED)
            path = quote(self.truth_of(repo)[0]["path"])
            resolve = self.get("/%s/resolve/main/%s" % (repo, path), GRANTED, "HEAD")
            truth = self.truth_of(repo)[0]
            self.assertEqual(tree.status, 500 if truth["tree_broken"] else
                             403 if truth["disabled"] else 200, repo)
            self.assertEqual(blobs.status, 500 if truth["blobs_broken"] else 200, repo)
            if truth["region_blocked"]:
                self.assertHubError(resolve, 403, None, REGION)
            else:
                self.assertIn(resolve.status, (200, 302, 403), repo)
                self.assertNotEqual(resolve.headers.get("x-error-message"), REGION)


class TestRepoAccessFaults(HubCase):
    """--region-blocked (before gating, after visibility) and --disabled-info-403."""
    BLOCKED = ("gated-org/gated-auto", "testuser/private-weights", "hfscan-test/plain-git-weights")
    ARGS = ["--models", "14", "--resolve-cache-307", "--disabled-info-403"] + \
        [arg for repo in BLOCKED for arg in ("--region-blocked", repo)]

    def assertRegionBlocked(self, reply, commit, method):
        self.assertHubError(reply, 403, None, REGION)
        self.assertEqual(reply.headers["x-repo-commit"], commit)
        self.assertTrue(reply.headers["content-type"].startswith("text/plain"))
        self.assertEqual(reply.body, b"" if method == "HEAD" else REGION.encode())

    def test_truth_flags(self):
        self.assertEqual(flagged(self.truth, "region_blocked"), set(self.BLOCKED))

    def test_every_file_answers_403_with_or_without_token(self):
        for repo in self.BLOCKED:
            for truth in self.truth_of(repo) + [dict(self.truth_of(repo)[0], path="missing.bin")]:
                path, commit = quote(truth["path"]), truth["commit"]
                urls = ["/%s/resolve/main/%s" % (repo, path), "/%s/raw/main/%s" % (repo, path),
                        "/%s/resolve/%s/%s" % (repo, commit, path),
                        "/api/resolve-cache/models/%s/%s/%s" % (repo, commit, path)]
                callers = (GRANTED,) if truth["private"] else (None, GRANTED, OTHER)
                for url in urls:
                    for headers in callers:
                        for method in ("HEAD", "GET"):
                            self.assertRegionBlocked(self.get(url, headers, method), commit,
                                                     method)

    def test_visibility_comes_first_and_metadata_answers(self):
        resolve = "/testuser/private-weights/resolve/main/model.safetensors"
        self.assertHubError(self.get(resolve), 401, None, "Invalid username or password.")
        self.assertHubError(self.get(resolve, OTHER), 404, "RepoNotFound")
        self.assertHubError(self.get(resolve, BAD), 401, None, "Invalid username or password.")
        for repo in self.BLOCKED:
            truth = self.truth_of(repo)
            self.assertEqual(self.get("/api/models/%s?blobs=true" % repo, GRANTED).status, 200)
            tree = self.get("/api/models/%s/tree/main?recursive=true" % repo, GRANTED).json()
            lfs = {e["path"]: e["lfs"]["oid"] for e in tree if "lfs" in e}
            self.assertEqual(lfs, {t["path"]: t["sha256"] for t in truth if t["storage"] != "git"})
            paths = self.get("/api/models/%s/paths-info/main" % repo,
                             dict(GRANTED, **{"Content-Type": "application/json"}), "POST",
                             json.dumps({"paths": [t["path"] for t in truth]}))
            self.assertEqual(len(paths.json()), len(truth))
        other = self.get("/hfscan-test/nested-folders/resolve/main/tf/saved_model/saved_model.pb")
        self.assertEqual(other.status, 307)

    def test_disabled_model_info_is_403(self):
        for headers in (None, GRANTED):
            for url in ("/api/models/hfscan-test/disabled-model",
                        "/api/models/hfscan-test/disabled-model/revision/main?blobs=true"):
                reply = self.get(url, headers)
                self.assertHubError(reply, 403, None, DISABLED)
                self.assertEqual(reply.json(), {"error": DISABLED})
        listed = self.get("/api/models?search=disabled-model&expand=disabled").json()
        self.assertEqual(listed[0]["disabled"], True)


class TestResolveCacheHop(HubCase):
    """--resolve-cache-307 as section 12 has it, --resolve-cache-bucket and --hop-head-no-length."""
    ARGS = ["--models", "14", "--resolve-cache-307", "--resolve-cache-bucket", "resolvers",
            "--hop-head-no-length"]

    def test_307_names_the_git_oid(self):
        repo = "hfscan-test/tricky-names"
        truth = self.one(repo, "it's.pkl")
        hop = "/api/resolve-cache/models/%s/%s/it%%27s.pkl" % (repo, truth["commit"])
        for query, kept in (("", ""), ("?download=true", "download=true&")):
            for method in ("HEAD", "GET"):
                reply = self.get("/%s/resolve/main/it%%27s.pkl%s" % (repo, query), None, method)
                self.assertEqual(reply.status, 307)
                self.assertEqual(reply.headers["location"],
                                 '%s?%setag=%%22%s%%22' % (hop, kept, truth["git_oid"]))
                self.assertEqual(reply.headers["x-linked-etag"], '"%s"' % truth["git_oid"])
                self.assertEqual(reply.headers["x-repo-commit"], truth["commit"])
        private = self.get("/testuser/private-weights/resolve/main/private.pkl", GRANTED, "HEAD")
        self.assertEqual(private.status, 200)                    # private: answered directly

    def test_hop_head_has_no_content_length(self):
        truth = self.one("hfscan-test/plain-git-weights", "small.h5")
        first = self.get("/hfscan-test/plain-git-weights/resolve/main/small.h5", None, "HEAD")
        head = self.get(first.headers["location"], None, "HEAD")
        self.assertEqual(head.status, 200)
        self.assertNotIn("content-length", head.headers)
        self.assertEqual(head.headers["etag"], '"%s"' % truth["git_oid"])
        self.assertEqual(head.headers["x-repo-commit"], truth["commit"])
        get = self.get(first.headers["location"])
        self.assertEqual(int(get.headers["content-length"]), truth["size"])
        self.assertEqual(hashlib.sha256(get.body).hexdigest(), truth["sha256"])
        ranged = self.get(first.headers["location"], {"Range": "bytes=0-9"}, "HEAD")
        self.assertEqual((ranged.status, ranged.headers["content-length"]), (206, "10"))

    def test_hop_counts_in_the_bucket_it_names(self):
        truth = self.one("hfscan-test/plain-git-weights", "graph.pb")
        hop = "/api/resolve-cache/models/%s/%s/graph.pb" % (truth["repo_id"], truth["commit"])
        fetch("POST", self.url + "/_hub/reset-stats")
        reply = self.get(hop)
        self.assertEqual(RATELIMIT_RE.search(reply.headers["ratelimit"]).group("resource_type"),
                         "resolvers")
        self.assertTrue(reply.headers["ratelimit-policy"].startswith('"fixed window";"resolvers";'))
        stats = self.get("/_hub/stats").json()["requests"]
        self.assertEqual((stats["resolvers"], stats["api"]), (1, 0))


class TestSignedUrls(HubCase):
    """--cdn-url-ttl, --cdn-url-uses and --cut-downloads-rate."""
    ARGS = ["--models", "14", "--cdn-url-uses", "2", "--cdn-url-ttl", "120",
            "--cut-downloads-rate", "0.05"]

    def location(self, repo, path):
        reply = self.get("/%s/resolve/main/%s" % (repo, quote(path)), None, "HEAD")
        self.assertEqual(reply.status, 302)
        return reply.headers["location"]

    def test_expiry_parameter_is_now_plus_ttl(self):
        before = int(time.time())
        url = self.location("hfscan-test/xet-gguf", "legacy.ggml")
        after = int(time.time())
        expires = parse_qs(urlsplit(url).query)["Expires"][0]
        self.assertRegex(expires, r"^\d+$")
        self.assertTrue(before + 120 <= int(expires) <= after + 120, expires)

    def test_each_url_answers_n_gets_then_expires(self):
        truth = self.one("hfscan-test/xet-gguf", "legacy.ggml")
        self.assertFalse(truth["cut_download"])
        url = self.location(truth["repo_id"], truth["path"])
        self.assertNotEqual(url, self.location(truth["repo_id"], truth["path"]))   # fresh each time
        fetch("POST", self.url + "/_hub/reset-stats")
        self.assertEqual(fetch("HEAD", url).status, 200)                # HEAD does not count
        replies = [fetch("GET", url, {"Range": "bytes=0-0"}), fetch("GET", url), fetch("GET", url)]
        self.assertEqual([r.status for r in replies], [206, 200, 403])
        self.assertEqual(replies[2].body, EXPIRED)
        self.assertEqual(fetch("HEAD", url).status, 403)
        self.assertEqual(hashlib.sha256(replies[1].body).hexdigest(), truth["sha256"])
        self.assertEqual(self.get("/_hub/stats").json()["cdn_urls_expired"], 2)
        fresh = fetch("GET", self.location(truth["repo_id"], truth["path"]))
        self.assertEqual(fresh.status, 200)
        tampered = url.replace("x-hub-nonce=", "x-hub-nonce=9")
        self.assertEqual(fetch("GET", tampered).body, b"AccessDenied")

    def test_cut_downloads_rate(self):
        cuttable = ["%s:%s" % (t["repo_id"].lower(), t["path"]) for t in self.truth
                    if t["size"] >= 2]
        expected = lowest("cut-downloads-rate", cuttable, 0.05)
        self.assertEqual(len(expected), math.ceil(0.05 * len(cuttable)))
        self.assertEqual({"%s:%s" % (t["repo_id"].lower(), t["path"])
                          for t in self.truth if t["cut_download"]}, expected)
        chosen = [t for t in self.truth if t["cut_download"]]
        lfs = [t for t in chosen if t["storage"] != "git"][0]
        git = [t for t in chosen if t["storage"] == "git"][0]
        # An LFS file: cut once, resumed on the same URL (its second and last GET).
        url = self.location(lfs["repo_id"], lfs["path"])
        partial, _ = self.read_cut(url)
        self.assertEqual(len(partial), lfs["size"] // 2)
        rest = fetch("GET", url, {"Range": "bytes=%d-" % len(partial)})
        self.assertEqual(rest.status, 206)
        self.assertEqual(hashlib.sha256(partial + rest.body).hexdigest(), lfs["sha256"])
        self.assertEqual(fetch("GET", self.location(lfs["repo_id"], lfs["path"])).status, 200)
        # A regular file, cut on resolve itself; files not chosen are not cut.
        resolve = self.url + "/%s/resolve/main/%s" % (git["repo_id"], quote(git["path"]))
        self.assertEqual(len(self.read_cut(resolve)[0]), git["size"] // 2)
        self.assertEqual(len(fetch("GET", resolve).body), git["size"])
        other = self.one("hfscan-test/xet-gguf", "model-f16.GGUF")
        self.assertFalse(other["cut_download"])
        body = fetch("GET", self.location(other["repo_id"], other["path"])).body
        self.assertEqual(len(body), other["size"])


class TestExpiredUrls(HubCase):
    ARGS = ["--models", "3", "--cdn-url-ttl", "-0.5"]
    LOADS_TRUTH = False

    def test_an_expired_url_answers_403(self):
        before = time.time()
        url = self.get("/hfscan-test/xet-gguf/resolve/main/legacy.ggml").headers["location"]
        expires = parse_qs(urlsplit(url).query)["Expires"][0]
        self.assertRegex(expires, r"^\d+\.\d{3}$")          # a fractional ttl keeps milliseconds
        self.assertLess(float(expires), before)
        for method in ("GET", "HEAD"):
            reply = fetch(method, url)
            self.assertEqual(reply.status, 403)
            self.assertTrue(reply.headers["content-type"].startswith("text/plain"))
        self.assertEqual(fetch("GET", url).body, EXPIRED)


class TestListingPages(HubCase):
    """--listing-page-cap, --listing-504-once and --listing-siblings-max-limit 0."""
    ARGS = ["--models", "14", "--listing-page-cap", "4", "--listing-504-once",
            "--listing-siblings-max-limit", "0"]

    def assertTimeout(self, reply):
        self.assertEqual(reply.status, 504)
        self.assertEqual(reply.body, GATEWAY_504)
        self.assertTrue(reply.headers["content-type"].startswith("text/html"))
        self.assertNotIn("x-error-code", reply.headers)
        self.assertEqual(RATELIMIT_RE.search(reply.headers["ratelimit"]).group("resource_type"),
                         "api")

    def crawl(self, query):
        """Follow the listing, retrying each 504 once; (ids, number of 504s)."""
        url, ids, timeouts = self.url + "/api/models?" + query, [], 0
        while url:
            reply = fetch("GET", url)
            if reply.status == 504:
                self.assertTimeout(reply)
                timeouts += 1
                reply = fetch("GET", url)
            self.assertEqual(reply.status, 200)
            ids += [i["id"] for i in reply.json()]
            self.assertLessEqual(len(reply.json()), 4)
            url = reply.next_link()
            if url:
                self.assertEqual(len(reply.json()), 4)
                self.assertIn("limit=100", url)                 # the client's limit is kept
        return ids, timeouts

    def test_capped_pages_time_out_once_each(self):
        fetch("POST", self.url + "/_hub/reset-stats")
        public = [r for r in repo_ids(self.truth) if not self.truth_of(r)[0]["private"]]
        ids, timeouts = self.crawl("limit=100&expand=downloads")
        self.assertEqual(ids, public)
        self.assertEqual(timeouts, math.ceil(len(public) / 4) - 1)   # not the first page
        self.assertEqual(self.crawl("limit=100&expand=downloads"), (public, 0))
        self.assertEqual(self.crawl("limit=100&expand=sha")[1], timeouts)   # another query
        self.assertEqual(self.get("/_hub/stats").json()["listing_504s"], 2 * timeouts)
        skip = "/api/models?limit=100&skip=1"
        self.assertTimeout(self.get(skip))
        self.assertEqual(len(self.get(skip).json()), 4)

    def test_siblings_max_limit_zero_fails_every_siblings_request(self):
        for query in ("limit=1&expand=siblings", "limit=1&full=true", "full=true"):
            for _ in range(2):
                self.assertTimeout(self.get("/api/models?" + query))
        self.assertEqual(self.get("/api/models?limit=1&expand=sha").status, 200)
        self.assertEqual(self.get("/api/models?limit=1&full=false").status, 200)


class TestListingLimits(HubCase):
    """--listing-max-limit, --listing-siblings-max-limit and --listing-fail-from-page."""
    ARGS = ["--models", "14", "--listing-max-limit", "50", "--listing-siblings-max-limit", "2",
            "--listing-fail-from-page", "3"]

    def status(self, query):
        reply = self.get("/api/models?" + query)
        if reply.status == 504:
            self.assertEqual(reply.body, GATEWAY_504)
        return reply.status

    def test_limits(self):
        cases = {"limit=51": 504, "limit=50": 200, "": 504, "limit=3&expand=siblings": 504,
                 "limit=2&expand=siblings": 200, "limit=3&full=true": 504,
                 "limit=2&full=true": 200, "limit=50&expand=sha": 200}
        self.assertEqual({q: self.status(q) for q in cases}, cases)

    def test_pages_from_k_on_always_fail(self):
        first = self.get("/api/models?limit=4")
        second = fetch("GET", first.next_link())
        self.assertEqual((first.status, second.status), (200, 200))
        third = second.next_link()
        self.assertEqual([fetch("GET", third).status for _ in range(3)], [504] * 3)
        cases = {"limit=4&skip=7": 200, "limit=4&skip=8": 504, "limit=4&skip=12": 504,
                 "limit=5&skip=9": 200, "limit=5&skip=10": 504}
        self.assertEqual({q: self.status(q) for q in cases}, cases)


class TestRealHub(HubCase):
    """--real alone on a 16-model world: every section-12 fault is there at least once."""
    ARGS = ["--models", "16", "--real"]

    def first(self, **wanted):
        found = [t for t in self.truth if all(t[k] == v for k, v in wanted.items())]
        self.assertTrue(found, wanted)
        return found[0]

    def test_every_fault_is_in_the_truth(self):
        fillers = set(repo_ids(self.truth)[13:])
        for field in ("tree_broken", "blobs_broken", "region_blocked", "siblings_cut"):
            self.assertTrue(flagged(self.truth, field), field)
            self.assertLessEqual(flagged(self.truth, field), fillers, field)
        self.assertTrue(flagged(self.truth, "cut_download"))
        many = [r for r in fillers if len(self.truth_of(r)) > 40]
        self.assertEqual(len(many), 1)
        self.assertIn(many[0], flagged(self.truth, "siblings_cut"))

    def test_repo_faults(self):
        blocked = self.first(region_blocked=True, private=False)
        reply = self.get("/%s/resolve/main/%s" % (blocked["repo_id"], quote(blocked["path"])))
        self.assertHubError(reply, 403, None, REGION)
        broken = self.first(tree_broken=True)["repo_id"]
        self.assertEqual(self.get("/api/models/%s/tree/main" % broken, GRANTED).status, 500)
        broken = self.first(blobs_broken=True)["repo_id"]
        self.assertEqual(self.get("/api/models/%s?blobs=true" % broken, GRANTED).status, 500)
        kinds = set()
        for repo in flagged(self.truth, "siblings_cut"):
            siblings = self.get("/api/models/%s" % repo, GRANTED).json()["siblings"]
            if len(self.truth_of(repo)) > 25:
                self.assertEqual(len(siblings), 25)
                kinds.add("cut")
            else:
                self.assertEqual(siblings, [])
                kinds.add("empty")
        self.assertEqual(kinds, {"cut", "empty"})
        reply = self.get("/api/models/hfscan-test/disabled-model")
        self.assertHubError(reply, 403, None, DISABLED)

    def test_plain_file_hop(self):
        truth = self.one("hfscan-test/plain-git-weights", "graph.pb")
        first = self.get("/hfscan-test/plain-git-weights/resolve/main/graph.pb", None, "HEAD")
        self.assertEqual((first.status, first.headers["x-linked-etag"]),
                         (307, '"%s"' % truth["git_oid"]))
        self.assertTrue(first.headers["location"].endswith("etag=%%22%s%%22" % truth["git_oid"]))
        head = self.get(first.headers["location"], None, "HEAD")
        self.assertEqual(head.status, 200)
        self.assertNotIn("content-length", head.headers)
        self.assertEqual(RATELIMIT_RE.search(head.headers["ratelimit"]).group("resource_type"),
                         "api")
        self.assertEqual(head.headers["x-hf-warning"], HF_WARNING)

    def test_cut_download_and_single_use_url(self):
        cut = [t for t in self.truth if t["cut_download"] and t["storage"] != "git"
               and not (t["gated"] or t["private"] or t["disabled"] or t["region_blocked"])][0]
        resolve = "/%s/resolve/main/%s" % (cut["repo_id"], quote(cut["path"]))
        url = self.get(resolve).headers["location"]
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", parts.path + "?" + parts.query)
        with self.assertRaises(http.client.IncompleteRead) as first:
            conn.getresponse().read()
        conn.close()
        partial = first.exception.partial
        resume = {"Range": "bytes=%d-" % len(partial)}
        self.assertEqual(fetch("GET", url, resume).body, EXPIRED)       # used once already
        rest = fetch("GET", self.get(resolve).headers["location"], resume)
        self.assertEqual(rest.status, 206)
        self.assertEqual(hashlib.sha256(partial + rest.body).hexdigest(), cut["sha256"])

    def test_listing_and_window(self):
        first = self.get("/api/models?limit=5")
        self.assertLessEqual(ratelimit_t(first), 300)
        second = [fetch("GET", first.next_link()) for _ in range(2)]
        self.assertEqual([r.status for r in second], [504, 200])
        before = time.time()
        reply = self.get("/api/models/hfscan-test/xet-gguf")
        after = time.time()
        if math.floor(before / 300) == math.floor(after / 300):
            self.assertLessEqual(seconds_to_window_end(after, 300), ratelimit_t(reply))
            self.assertLessEqual(ratelimit_t(reply), seconds_to_window_end(before, 300))


if __name__ == "__main__":
    unittest.main()
