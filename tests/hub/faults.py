"""Switchable faults, all off by default.

They model what a scanner meets on the real Hub: slow answers, transient
5xx, connections dropped mid-download, a repo whose blobs=true listing, tree
or raw endpoint fails, a CDN (or the git server itself, for regular files)
serving bytes that do not match the advertised hash, a listing cursor
that drifts so an item shows up twice, 429s from another quota while the
bucket still has requests left, and the facts of hub-api.md section 12:
siblings cut short or empty, region blocks, listing pages that time out,
HTML 429s.

The per-repo faults hold lower-cased canonical ids: those named on the
command line plus those a rate flag picks (selection.py).
"""
import random
import threading
import time

import generate
import selection


class Faults:
    def __init__(self, options, world):
        self.latency = options.latency_ms / 1000.0
        self.fault_rate = options.fault_rate
        self._rng = random.Random(options.fault_seed)
        # Its own stream, so that turning it on leaves the 5xx draws as they were.
        self._html_rng = random.Random("html-429:%d" % options.fault_seed)
        self.html_429_rate = options.html_429_rate
        self.other_quota_429 = options.other_quota_429
        self.listing_repeat = options.listing_repeat
        self._options = options
        self._lock = threading.Lock()
        self._cut_done = set()
        self._pages_failed = set()
        self._select(options, world)

    def _select(self, options, world):
        seed = world.seed if world.seed is not None else options.seed
        ids = [r.id for r in world.all_repos()]
        fillers = [r for r in ids if generate.is_filler(r)]

        def repos(named, flag, rate):
            # The salt is the rate flag's name, so each flag draws its own set.
            picked = selection.pick_repos(flag, seed, ids, rate, fillers)
            return {r.lower() for r in named} | picked
        self.broken_blobs = repos(options.broken_blobs, "broken-blobs-rate",
                                  options.broken_blobs_rate)
        self.broken_tree = repos(options.broken_tree, "broken-tree-rate",
                                 options.broken_tree_rate)
        self.region_blocked_ids = repos(options.region_blocked, "region-blocked-rate",
                                        options.region_blocked_rate)
        self.siblings_empty = repos(options.siblings_empty, "siblings-empty-rate",
                                    options.siblings_empty_rate)
        self.cdn_mismatch = {r.lower() for r in options.cdn_mismatch}
        self.git_mismatch = {r.lower() for r in options.git_mismatch}
        self.broken_raw = {r.lower() for r in options.broken_raw}
        self.siblings_cut = options.siblings_cut
        self.cut_always = options.cut_downloads_always
        self.cut_all = options.cut_downloads or self.cut_always
        # A cut needs two bytes: half is sent, the rest never comes.
        cuttable = ["%s:%s" % (r.id.lower(), f.path) for r in world.all_repos()
                    for f in r.files.values() if f.size >= 2]
        self.cut_files = selection.pick("cut-downloads-rate", seed, cuttable,
                                        options.cut_downloads_rate)

    # ------------------------------------------------------------ transient

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

    def html_429(self):
        """True when this window-exhaustion refusal comes as HTML (section 12)."""
        if not self.html_429_rate:
            return False
        with self._lock:
            return self._html_rng.random() < self.html_429_rate

    # ------------------------------------------------------------ downloads

    def _cut_chosen(self, repo_id, path):
        return self.cut_all or "%s:%s" % (repo_id.lower(), path) in self.cut_files

    def cut_planned(self, f):
        """Whether the first GET of this file is cut (the truth's cut_download)."""
        return f.size >= 2 and self._cut_chosen(f.repo_id, f.path)

    def should_cut(self, file_id):
        """Cut the body of the first GET of each chosen file (or every GET if always).

        file_id is (where, repo id, path); each file is served from one place.
        The server only asks for bodies of two bytes or more.
        """
        _, repo_id, path = file_id
        if not self._cut_chosen(repo_id, path):
            return False
        with self._lock:
            if self.cut_always:
                return True
            if file_id in self._cut_done:
                return False
            self._cut_done.add(file_id)
            return True

    # ------------------------------------------------------------- per repo

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

    def region_blocked(self, repo_id):
        return repo_id.lower() in self.region_blocked_ids

    def sibling_paths(self, repo):
        """What `siblings` lists: all paths, unless cut short or emptied."""
        if repo.id.lower() in self.siblings_empty:
            return []
        paths = repo.sorted_paths()
        if self.siblings_cut and len(paths) > self.siblings_cut:
            return paths[:self.siblings_cut]
        return paths

    def siblings_incomplete(self, repo):
        return repo.id.lower() in self.siblings_empty or \
            len(self.sibling_paths(repo)) < len(repo.files)

    # -------------------------------------------------------------- listing

    def listing_failure(self, page_key, start, page_size, limit, siblings):
        """True when this listing request answers 504 (section 12).

        page_key names the page (its query without cursor/skip, and start),
        limit is what the client asked for, page_size what it gets.
        """
        opts = self._options
        if opts.listing_fail_from_page and start // page_size + 1 >= opts.listing_fail_from_page:
            return True
        if opts.listing_max_limit is not None and limit > opts.listing_max_limit:
            return True
        if siblings and opts.listing_siblings_max_limit is not None \
                and limit > opts.listing_siblings_max_limit:
            return True
        if opts.listing_504_once and start > 0:
            with self._lock:
                if page_key not in self._pages_failed:
                    self._pages_failed.add(page_key)
                    return True
        return False
