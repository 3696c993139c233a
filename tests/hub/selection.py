"""Which repos (or files) a rate flag such as --region-blocked-rate picks.

The choice must not move when another flag changes, nor draw from the
generator's random stream (that would alter the world), so it ranks the
candidates by a stable hash, sha256("<salt>:<seed>:<key>"), and takes the
lowest.  Each flag has its own salt, so the sets are independent.
"""
import hashlib
import math

import names

# float products such as 0.1 * 30 come out a hair above the integer
EPSILON = 1e-9


def count(fraction, total):
    """ceil(fraction x total), at least 1 when fraction > 0, at most total."""
    if fraction <= 0 or total <= 0:
        return 0
    return min(total, max(1, math.ceil(fraction * total - EPSILON)))


def rank(salt, seed, key):
    return hashlib.sha256(names.to_bytes("%s:%s:%s" % (salt, seed, key))).hexdigest()


def pick(salt, seed, keys, fraction):
    """The set of `keys` (strings) with the smallest hashes."""
    keys = sorted(set(keys), key=lambda k: rank(salt, seed, k))
    return set(keys[:count(fraction, len(keys))])


def pick_repos(salt, seed, repo_ids, fraction, preferred=()):
    """Lower-cased repo ids; among `preferred` ones when there are any."""
    candidates = [r.lower() for r in preferred] or [r.lower() for r in repo_ids]
    return pick(salt, seed, candidates, fraction)
