"""The stand-in Hub's world: repos, files, users and tokens.

A world is plain JSON (the fixture format, see README.md).  `World.load`
turns it into objects whose file bytes and hashes come from content.py, and
`World.to_fixture` writes it back, so a generated world can be dumped,
edited by a test and loaded again.
"""
import hashlib
import json
import threading

import content
import names
import security

FORMAT = "hfscan-test-hub-world/1"
STORAGES = ("lfs", "xet", "git")


class RepoFile:
    def __init__(self, repo_id, spec):
        self.repo_id = repo_id
        self.path = spec["path"]
        self.storage = spec.get("storage", "git")
        if self.storage not in STORAGES:
            raise ValueError("%s/%s: storage must be one of %s" % (repo_id, self.path, STORAGES))
        self.version = spec.get("version", 0)
        self.text = spec.get("text")
        self.key = content.content_key(repo_id, self.path, self.version)
        if self.text is not None:
            self.blob = content.LiteralBlob(self.text.encode("utf-8"))
        else:
            self.blob = content.GeneratedBlob(self.key, int(spec["size"]))
        self.security = spec.get("security")
        if self.security is not None:
            security.check_spec("%s/%s" % (repo_id, self.path), self.security)
        self._mismatch_blob = None
        self._lock = threading.Lock()

    @property
    def size(self):
        return self.blob.size

    @property
    def is_lfs(self):
        """Xet files are LFS files too: they keep a standard pointer."""
        return self.storage in ("lfs", "xet")

    def sha256(self):
        return self.blob.sha256()

    def pointer(self):
        return content.lfs_pointer(self.sha256(), self.size)

    def git_oid(self):
        """What git stores: the pointer for LFS files, the bytes otherwise."""
        if self.is_lfs:
            return content.git_oid_of_bytes(self.pointer())
        return self.blob.git_oid()

    def xet_hash(self):
        if self.storage != "xet":
            return None
        return content.xet_hash_standin(self.key, self.size)

    def mismatch_blob(self):
        """Same size, different bytes: what a corrupt CDN would serve."""
        with self._lock:
            if self._mismatch_blob is None:
                key = content.content_key(self.repo_id, self.path, self.version, "cdn-mismatch")
                self._mismatch_blob = content.GeneratedBlob(key, self.size)
            return self._mismatch_blob

    def flipped_blob(self):
        """Same size, first byte inverted: what a corrupt git server would serve."""
        return content.FlippedBlob(self.blob)

    def to_fixture(self):
        spec = {"path": self.path, "storage": self.storage}
        if self.text is not None:
            spec["text"] = self.text
        else:
            spec["size"] = self.size
        if self.version:
            spec["version"] = self.version
        if self.security is not None:
            spec["security"] = self.security
        return spec


class Repo:
    FIELDS = ("_id", "downloads", "likes", "trendingScore", "createdAt", "lastModified",
              "commit", "gated", "private", "disabled", "pipeline_tag", "library_name", "tags")

    def __init__(self, spec):
        self.id = spec["id"]
        self.author = self.id.split("/")[0]
        self.meta = {name: spec.get(name) for name in self.FIELDS}
        self.meta["gated"] = spec.get("gated", False)
        self.meta["private"] = bool(spec.get("private", False))
        self.meta["disabled"] = bool(spec.get("disabled", False))
        self.meta["tags"] = list(spec.get("tags", []))
        self.meta["downloads"] = int(spec.get("downloads", 0))
        self.meta["likes"] = int(spec.get("likes", 0))
        self.meta["trendingScore"] = spec.get("trendingScore", 0)
        if not self.meta["_id"]:  # a repo added by hand: a stable Mongo-like id
            self.meta["_id"] = hashlib.sha1(self.id.encode()).hexdigest()[:24]
        if self.meta["gated"] not in (False, "auto", "manual"):
            raise ValueError("%s: gated must be false, \"auto\" or \"manual\"" % self.id)
        self.files = {}
        for file_spec in spec.get("files", []):
            repo_file = RepoFile(self.id, file_spec)
            if repo_file.path in self.files:
                raise ValueError("%s: duplicate path %r" % (self.id, repo_file.path))
            self.files[repo_file.path] = repo_file
        self.directories = self._directories()

    def __getattr__(self, name):
        # Lets handlers write repo.commit, repo.gated, ... for fixture fields.
        meta = self.__dict__.get("meta", {})
        if name in meta:
            return meta[name]
        raise AttributeError(name)

    def _directories(self):
        dirs = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:depth]))
        return dirs

    def sorted_paths(self):
        return sorted(self.files)

    def to_fixture(self):
        spec = {"id": self.id}
        spec.update(self.meta)
        spec["files"] = [self.files[p].to_fixture() for p in self.sorted_paths()]
        return spec


class Token:
    def __init__(self, value, spec):
        self.value = value
        self.user = spec["user"]
        self.gated = spec.get("gated", [])        # "all" or a list of repo ids
        self.pending = list(spec.get("pending", []))
        self.role = spec.get("role", "read")

    def granted(self, repo_id):
        return self.gated == "all" or repo_id in self.gated

    def to_fixture(self):
        return {"user": self.user, "gated": self.gated, "pending": self.pending, "role": self.role}


class World:
    def __init__(self, data):
        if data.get("format") != FORMAT:
            raise ValueError("world fixture must have \"format\": %r" % FORMAT)
        self.seed = data.get("seed")
        self.users = dict(data.get("users", {}))
        self.tokens = {value: Token(value, spec) for value, spec in data.get("tokens", {}).items()}
        self.repos = {}
        for spec in data.get("repos", []):
            repo = Repo(spec)
            if repo.id.lower() in self.repos:
                raise ValueError("duplicate repo id %r" % repo.id)
            self.repos[repo.id.lower()] = repo
        self.renames = dict(data.get("renames", {}))

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8", errors=names.ERRORS) as handle:
            return cls(json.load(handle))

    def to_fixture(self):
        return {
            "format": FORMAT,
            "seed": self.seed,
            "users": self.users,
            "tokens": {value: token.to_fixture() for value, token in self.tokens.items()},
            "renames": self.renames,
            "repos": [repo.to_fixture() for repo in self.all_repos()],
        }

    def all_repos(self):
        return sorted(self.repos.values(), key=lambda r: (-r.downloads, r._id or "", r.id))

    def find(self, repo_id):
        """Return (repo, canonical_id_if_redirect).

        A renamed id or an id in the wrong case answers with the canonical id
        so the caller can send a relative 307, as the real Hub does.
        """
        for old, new in self.renames.items():
            if old.lower() == repo_id.lower():
                return self.repos.get(new.lower()), new
        repo = self.repos.get(repo_id.lower())
        if repo is not None and repo.id != repo_id:
            return repo, repo.id
        return repo, None

    def user_can_see_private(self, token, repo):
        if token is None:
            return False
        orgs = self.users.get(token.user, {}).get("orgs", [])
        return repo.author == token.user or repo.author in orgs

    def truth(self, faults=None):
        """One record per file of every repo: what a perfect scanner would find.

        `faults` (faults.Faults, or None for none) only adds flags: the
        records keep the true hashes even where the served bytes differ.
        """
        for repo in self.all_repos():
            flags = _repo_flags(repo, faults)
            for path in repo.sorted_paths():
                f = repo.files[path]
                record = {
                    "repo_id": repo.id, "path": path, "sha256": f.sha256(), "size": f.size,
                    "storage": f.storage, "commit": repo.commit, "downloads": repo.downloads,
                    "gated": repo.gated, "private": repo.private, "disabled": repo.disabled,
                    "git_oid": f.git_oid(), "xet_hash": f.xet_hash(),
                    "cdn_mismatch": f.is_lfs and flags["cdn_mismatch"],
                    # An empty file has no byte to alter, so it is served true.
                    "git_mismatch": f.storage == "git" and f.size > 0 and flags["git_mismatch"],
                }
                for name in ("tree_broken", "blobs_broken", "region_blocked", "siblings_cut"):
                    record[name] = flags[name]
                record["cut_download"] = faults is not None and faults.cut_planned(f)
                record["security"] = security.file_status(path, f.security)
                yield record


def _repo_flags(repo, faults):
    """The per-repo faults that apply to every file of `repo`."""
    if faults is None:
        return dict.fromkeys(("cdn_mismatch", "git_mismatch", "tree_broken", "blobs_broken",
                              "region_blocked", "siblings_cut"), False)
    return {"cdn_mismatch": faults.mismatched(repo.id),
            "git_mismatch": faults.git_mismatched(repo.id),
            "tree_broken": faults.tree_broken(repo.id),
            "blobs_broken": faults.blobs_broken(repo.id),
            "region_blocked": faults.region_blocked(repo.id),
            "siblings_cut": faults.siblings_incomplete(repo)}
