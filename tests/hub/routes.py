"""Turn a request path into a route: which endpoint, which repo, which bucket.

Repo ids are "namespace/name", or a bare legacy "name" (as old "gpt2"); the
segment after the id (tree, resolve, ...) tells where the id ends.
"""
from urllib.parse import quote, unquote, parse_qsl

import names

API_WORDS = ("revision", "tree", "paths-info", "auth-check", "xet-read-token")
FILE_WORDS = ("resolve", "raw")


def _unquote(segment):
    """A path segment's bytes, also those that are not UTF-8 (names.py)."""
    return unquote(segment, errors=names.ERRORS)


class Request:
    def __init__(self, method, raw_path, headers, body, auth, client, base_url):
        self.method = method
        self.raw_path = raw_path
        self.path, _, self.query_string = raw_path.partition("?")
        self.query = parse_qsl(self.query_string, keep_blank_values=True, errors=names.ERRORS)
        self.headers = headers
        self.body = body
        self.auth = auth
        self.client = client
        self.base_url = base_url

    def values(self, *names):
        return [v for k, v in self.query if k in names]

    def param(self, name, default=None):
        found = self.values(name)
        return found[-1] if found else default

    def flag(self, name):
        return (self.param(name) or "").lower() in ("1", "true")


class Route:
    def __init__(self, name, segments=(), id_index=None, id_length=0):
        self.name = name
        self.repo_id = None
        self.rest = []
        self._segments = list(segments)
        self._id_index = id_index
        self._id_length = id_length
        if id_index is not None:
            raw_id = segments[id_index:id_index + id_length]
            self.repo_id = "/".join(_unquote(s) for s in raw_id)
            self.rest = [_unquote(s) for s in segments[id_index + id_length:]]

    def location(self, canonical_id, query_string):
        """The same URL with the canonical id: the target of a relative 307."""
        segs = self._segments
        new = segs[:self._id_index] + [quote(canonical_id, safe="/")] + \
            segs[self._id_index + self._id_length:]
        url = "/" + "/".join(new)
        return url + ("?" + query_string if query_string else "")


HOP_PREFIX = "/api/resolve-cache/"


def bucket_of(path, hop_bucket="api"):
    """hub-api.md section 8: /resolve/ URLs, then /api/, then everything else.

    Section 12 leaves open where the resolve-cache hop counts, so the hub
    is told (--resolve-cache-bucket).
    """
    if path.startswith(HOP_PREFIX):    # first: a file path may hold "/resolve/"
        return hop_bucket
    if "/resolve/" in path:
        return "resolvers"
    if path.startswith("/api/"):
        return "api"
    return "pages"


def _id_length(world, segs, words):
    """How many segments the repo id spans: 2 normally, 1 for legacy ids."""
    if len(segs) >= 2 and world.find(_unquote(segs[0]) + "/" + _unquote(segs[1]))[0] is not None:
        return 2
    if world.find(_unquote(segs[0]))[0] is not None:
        return 1
    return 2 if len(segs) >= 2 and segs[1] not in words else 1


def parse(world, path):
    segs = [s for s in path.split("/")[1:]]
    if segs and segs[-1] == "" and len(segs) > 1:
        segs = segs[:-1]
    if segs[:2] == ["api", "models"]:
        return _parse_models(world, segs)
    if segs[:2] == ["api", "whoami-v2"] and len(segs) == 2:
        return Route("whoami")
    if segs[:3] == ["api", "resolve-cache", "models"] and len(segs) >= 6:
        route = Route("resolve-cache", segs, 3, _id_length(world, segs[3:], ()))
        return route if len(route.rest) >= 2 else Route("unknown")
    if segs and segs[0] != "api":
        return _parse_files(world, segs)
    return Route("unknown")


def _parse_models(world, segs):
    if len(segs) == 2:
        return Route("list-models")
    route = Route("model", segs, 2, _id_length(world, segs[2:], API_WORDS))
    rest = route.rest
    if not rest:
        route.name = "model-info"
    elif rest[0] == "revision" and len(rest) == 2:
        route.name = "model-info"
    elif rest[0] == "tree" and len(rest) >= 2:
        route.name = "tree"
    elif rest[0] == "paths-info" and len(rest) == 2:
        route.name = "paths-info"
    elif rest[0] == "auth-check" and len(rest) == 1:
        route.name = "auth-check"
    elif rest[0] == "xet-read-token" and len(rest) == 2:
        route.name = "xet-read-token"
    else:
        route.name = "unknown"
    return route


def _parse_files(world, segs):
    length = _id_length(world, segs, FILE_WORDS)
    if len(segs) < length + 3 or segs[length] not in FILE_WORDS:
        return Route("unknown")
    route = Route(segs[length], segs, 0, length)
    route.rest = route.rest[1:]          # drop "resolve" / "raw": [rev, *path parts]
    return route
