"""Switchable faults, all off by default.

They model what a scanner meets on the real Hub: slow answers, transient
5xx, connections dropped mid-download, a repo whose blobs=true listing, tree
or raw endpoint fails, a CDN (or the git server itself, for regular files)
serving bytes that do not match the advertised hash, a listing cursor
that drifts so an item shows up twice, and 429s from another quota while the
bucket still has requests left.

The per-repo faults hold lower-cased canonical ids.
"""
import random
import threading
import time


class Faults:
    def __init__(self, latency_ms=0, fault_rate=0.0, fault_seed=0, cut_downloads=False,
                 cut_always=False, broken_blobs=(), cdn_mismatch=(), listing_repeat=False,
                 git_mismatch=(), broken_tree=(), broken_raw=(), other_quota_429=0.0):
        self.latency = latency_ms / 1000.0
        self.fault_rate = fault_rate
        self._rng = random.Random(fault_seed)
        self.cut_downloads = cut_downloads or cut_always
        self.cut_always = cut_always
        self.broken_blobs = {r.lower() for r in broken_blobs}
        self.cdn_mismatch = {r.lower() for r in cdn_mismatch}
        self.git_mismatch = {r.lower() for r in git_mismatch}
        self.broken_tree = {r.lower() for r in broken_tree}
        self.broken_raw = {r.lower() for r in broken_raw}
        self.listing_repeat = listing_repeat
        self.other_quota_429 = other_quota_429
        self._cut_done = set()
        self._lock = threading.Lock()

    def delay(self):
        if self.latency:
            time.sleep(self.latency)

    def api_error(self):
        """A 5xx status for this /api/ call, or None."""
        if not self.fault_rate:
            return None
        with self._lock:
            if self._rng.random() >= self.fault_rate:
                return None
            return self._rng.choice((500, 502, 503))

    def refused_by_other_quota(self):
        """True when this /api/ call hits another quota (hub-api.md section 8: a
        429 while the bucket's r>0)."""
        if not self.other_quota_429:
            return False
        with self._lock:
            return self._rng.random() < self.other_quota_429

    def should_cut(self, file_id):
        """Cut the body of the first GET of each file (or every GET if always)."""
        if not self.cut_downloads:
            return False
        with self._lock:
            if self.cut_always:
                return True
            if file_id in self._cut_done:
                return False
            self._cut_done.add(file_id)
            return True

    def blobs_broken(self, repo_id):
        return repo_id.lower() in self.broken_blobs

    def mismatched(self, repo_id):
        return repo_id.lower() in self.cdn_mismatch

    def git_mismatched(self, repo_id):
        return repo_id.lower() in self.git_mismatch

    def tree_broken(self, repo_id):
        return repo_id.lower() in self.broken_tree

    def raw_broken(self, repo_id):
        return repo_id.lower() in self.broken_raw
