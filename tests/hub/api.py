"""The /api/ endpoints: listing, model info, tree, paths-info, whoami.

Field sets, page sizes and pagination follow hub-api.md sections 1-4, 7 and 12.
"""
import base64
import hashlib
import json
from urllib.parse import urlencode, parse_qsl

import access
import errors
import names
import security
from response import json_response

TREE_PAGE, TREE_PAGE_EXPANDED = 1000, 50
MAX_PATHS = 2000                       # OpenAPI maxItems (hub-api.md section 12)

EXPAND_VALUES = frozenset((
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled",
    "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
    "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
    "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha", "siblings",
    "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage", "widgetData",
    "xetEnabled"))
DEFAULT_FIELDS = ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags",
                  "pipeline_tag", "library_name", "createdAt", "modelId")
FULL_EXTRA = ("author", "gated", "lastModified", "sha", "siblings")
SORT_FIELDS = {"downloads": "downloads", "likes": "likes", "lastModified": "lastModified",
               "createdAt": "createdAt", "trendingScore": "trendingScore", "id": "id",
               "likes30d": "likes"}


# ---------------------------------------------------------------- properties

def _total_size(repo):
    return sum(f.size for f in repo.files.values())


def _has_ext(repo, ext):
    return any(p.lower().endswith(ext) for p in repo.files)


# Properties computed from the repo; the others are fixture fields (repo.meta).
COMPUTED = {
    "id": lambda r: r.id, "modelId": lambda r: r.id, "author": lambda r: r.author,
    "sha": lambda r: r.commit, "downloadsAllTime": lambda r: r.downloads * 3,
    "usedStorage": _total_size,
    "xetEnabled": lambda r: any(f.storage == "xet" for f in r.files.values()),
    "cardData": lambda r: {}, "config": lambda r: {}, "transformersInfo": lambda r: {},
    "widgetData": lambda r: [], "spaces": lambda r: [], "evalResults": lambda r: [],
    "inferenceProviderMapping": lambda r: [], "childrenModelCount": lambda r: 0,
    "gguf": lambda r: {"total": _total_size(r), "architecture": "llama"}
    if _has_ext(r, ".gguf") else None,
    "safetensors": lambda r: {"parameters": {"F32": _total_size(r) // 4},
                              "total": _total_size(r) // 4}
    if _has_ext(r, ".safetensors") else None,
}
ALWAYS_PRESENT = ("model-index",)      # null, but present, in real answers


def _value(repo, prop):
    """A repo property as the Hub names it; None means "leave it out"."""
    if prop in COMPUTED:
        return COMPUTED[prop](repo)
    return repo.meta.get(prop)


def _fields(hub, repo, names):
    item = {}
    for name in names:
        value = _siblings(hub, repo) if name == "siblings" else _value(repo, name)
        if value is not None or name in ALWAYS_PRESENT:
            item[name] = value
    return item


def _siblings(hub, repo):
    """Names only; the list may be cut short or empty (hub-api.md section 12)."""
    return [{"rfilename": p} for p in hub.faults.sibling_paths(repo)]


def _expand_values(req):
    values = req.values("expand", "expand[]")
    unknown = [v for v in values if v not in EXPAND_VALUES]
    if unknown:
        raise errors.bad_request("Invalid expand value(s): %s" % ", ".join(unknown))
    return values


# ------------------------------------------------------------------- listing

def list_models(hub, req, route):
    if req.auth.invalid:
        raise errors.invalid_token()
    expand = _expand_values(req)
    sort = req.param("sort", "downloads")
    if sort not in SORT_FIELDS:
        raise errors.bad_request("Invalid sort parameter: %s" % sort)
    asked = _limit(req.param("limit"), hub.options.listing_default_limit)
    limit = min(asked, hub.options.listing_page_cap)   # the server caps pages (at 1000)
    items = _sorted_matches(hub, req, SORT_FIELDS[sort])
    start = _listing_start(hub, req, items, SORT_FIELDS[sort])
    siblings = "siblings" in expand or (not expand and req.flag("full"))
    if hub.faults.listing_failure(_page_key(req, start), start, limit, asked, siblings):
        hub.instruments.bump("listing_504s")
        raise errors.gateway_timeout()
    page = items[start:start + limit]
    headers = []
    if start + limit < len(items) and page:
        headers.append(("link", '<%s>; rel="next"' % _next_listing_url(req, page[-1],
                                                                       SORT_FIELDS[sort])))
    return json_response(200, [_listing_item(hub, repo, req, expand) for repo in page], headers)


def _limit(raw, default):
    """The page size the client asks for (the default when it names none)."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request("Invalid limit: %s" % raw) from None
    if value < 1:
        raise errors.bad_request("Invalid limit: %s" % raw)
    return value


def _page_key(req, start):
    """One listing page: the same query (but for the cursor) and the same start."""
    query = sorted((k, v) for k, v in req.query if k not in ("cursor", "skip"))
    return tuple(query), start


def _matches(hub, req, repo):
    search, author = req.param("search"), req.param("author")
    if repo.private and not hub.world.user_can_see_private(req.auth.token, repo):
        return False
    if search and search.lower() not in repo.id.lower():
        return False
    if author and author.lower() != repo.author.lower():
        return False
    if not all(t in repo.tags for t in req.values("filter", "filter[]")):
        return False
    gated = req.param("gated")
    if gated in ("true", "false") and bool(repo.gated) != (gated == "true"):
        return False
    pipeline = req.param("pipeline_tag")
    return not pipeline or repo.pipeline_tag == pipeline


def _sort_key(repo, field):
    return _value(repo, field)


def _sorted_matches(hub, req, field):
    repos = [r for r in hub.world.all_repos() if _matches(hub, req, r)]
    # Descending by the field, ties by _id ascending: a Mongo keyset order.
    repos.sort(key=lambda r: r._id)
    repos.sort(key=lambda r: _sort_key(r, field), reverse=True)
    return repos


def _encode_cursor(repo, field):
    value = _sort_key(repo, field)
    keyset = {"$or": [{field: value, "_id": {"$gt": repo._id}}, {field: {"$lt": value}}]}
    return base64.b64encode(json.dumps(keyset, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor, field):
    try:
        keyset = json.loads(base64.b64decode(cursor, validate=True))
        return keyset["$or"][1][field]["$lt"], keyset["$or"][0]["_id"]["$gt"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise errors.bad_request("Invalid cursor") from None


def _listing_start(hub, req, items, field):
    cursor = req.param("cursor")
    if not cursor:
        skip = req.param("skip")
        return int(skip) if skip and skip.isdigit() else 0
    value, last_id = _decode_cursor(cursor, field)
    for index, repo in enumerate(items):
        key = _sort_key(repo, field)
        if key < value or (key == value and repo._id > last_id):
            # Cursor drift fault: hand out the previous page's last item again.
            if hub.faults.listing_repeat and index > 0 and items[index - 1]._id == last_id:
                return index - 1
            return index
    return len(items)


def _next_listing_url(req, last, field):
    pairs = [(k, v) for k, v in req.query if k not in ("cursor", "skip")]
    pairs.append(("cursor", _encode_cursor(last, field)))
    return "%s/api/models?%s" % (req.base_url, urlencode(pairs))


def _listing_item(hub, repo, req, expand):
    if expand:
        return _fields(hub, repo, ["_id", "id"] + expand)
    names = list(DEFAULT_FIELDS)
    if req.flag("full"):
        names += FULL_EXTRA
    return _fields(hub, repo, names)


# ---------------------------------------------------------------- model info

INFO_FIELDS = ("_id", "id", "modelId", "author", "sha", "lastModified", "private", "gated",
               "disabled", "downloads", "likes", "tags", "pipeline_tag", "library_name",
               "createdAt", "cardData", "config", "model-index", "spaces", "transformersInfo",
               "usedStorage", "widgetData", "siblings")


def model_info(hub, req, route):
    repo = access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "info")
    rev = route.rest[1] if route.rest else "main"
    commit = access.resolve_revision(repo, rev)
    expand = _expand_values(req)
    if expand:
        return json_response(200, _fields(hub, repo, ["_id", "id"] + expand))
    info = _fields(hub, repo, INFO_FIELDS)
    info["sha"] = commit
    if req.flag("blobs"):
        if hub.faults.blobs_broken(repo.id):
            raise errors.server_error(500)
        info["siblings"] = [_sibling_with_blob(repo.files[p])
                            for p in hub.faults.sibling_paths(repo)]
    if req.flag("securityStatus"):
        info["securityRepoStatus"] = security.repo_status(repo.files)
    return json_response(200, info)


def _sibling_with_blob(f):
    sibling = {"rfilename": f.path, "blobId": f.git_oid(), "size": f.size}
    if f.is_lfs:
        # Trap kept on purpose: "sha256" here, "oid" in tree and paths-info.
        sibling["lfs"] = {"sha256": f.sha256(), "size": f.size, "pointerSize": len(f.pointer())}
    return sibling


# ---------------------------------------------------------------------- tree

def _file_entry(repo, f, expand):
    entry = {"type": "file", "oid": f.git_oid(), "size": f.size, "path": f.path}
    if f.is_lfs:
        entry["lfs"] = {"oid": f.sha256(), "size": f.size, "pointerSize": len(f.pointer())}
    if f.storage == "xet":
        entry["xetHash"] = f.xet_hash()
    if expand:
        _add_expanded(repo, entry, f.path)
    return entry


def _dir_entry(repo, path, expand):
    oid = hashlib.sha1(names.to_bytes("tree\0%s\0%s\0%s" % (repo.id, repo.commit, path))).hexdigest()
    entry = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if expand:
        _add_expanded(repo, entry, path)
    return entry


def _add_expanded(repo, entry, path):
    entry["lastCommit"] = {"id": repo.commit, "title": "Upload %s" % path.rsplit("/", 1)[-1],
                           "date": repo.lastModified}
    if entry["type"] == "file":
        entry["securityFileStatus"] = security.file_status(path, repo.files[path].security)


def _entry(repo, path, expand):
    if path in repo.files:
        return _file_entry(repo, repo.files[path], expand)
    if path in repo.directories:
        return _dir_entry(repo, path, expand)
    return None


def _tree_paths(repo, folder, recursive):
    names = list(repo.files) + list(repo.directories)
    prefix = folder + "/" if folder else ""
    found = []
    for name in names:
        if not name.startswith(prefix):
            continue
        if recursive or "/" not in name[len(prefix):]:
            found.append(name)
    return sorted(found)


def tree(hub, req, route):
    repo = access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "tree")
    access.resolve_revision(repo, route.rest[1])
    folder = "/".join(route.rest[2:]).strip("/")
    if folder and folder not in repo.directories:
        raise errors.entry_not_found()
    # Like --broken-blobs: the errors above come first, then the listing fails.
    if hub.faults.tree_broken(repo.id):
        raise errors.server_error(500)
    expand = req.flag("expand")
    maximum = TREE_PAGE_EXPANDED if expand else TREE_PAGE
    limit = min(_limit(req.param("limit"), maximum), maximum)
    paths = _tree_paths(repo, folder, req.flag("recursive"))
    cursor = req.param("cursor")
    if cursor:
        after = _decode_tree_cursor(cursor)
        paths = [p for p in paths if p > after]
    page = paths[:limit]
    headers = []
    if len(paths) > limit:
        headers.append(("link", '<%s>; rel="next"' % _next_tree_url(req, repo, page[-1], limit)))
    return json_response(200, [_entry(repo, p, expand) for p in page], headers)


def _encode_tree_cursor(repo, last_path, limit):
    inner = json.dumps({"file_name": last_path, "tree_oid": _dir_entry(repo, "", False)["oid"]})
    inner64 = base64.b64encode(inner.encode("utf-8")).decode()
    return base64.b64encode(("%s:%d" % (inner64, limit)).encode()).decode()


def _decode_tree_cursor(cursor):
    try:
        outer = base64.b64decode(cursor, validate=True).decode()
        inner64 = outer.rsplit(":", 1)[0]
        return json.loads(base64.b64decode(inner64, validate=True))["file_name"]
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("Invalid cursor") from None


def _next_tree_url(req, repo, last_path, limit):
    pairs = [(k, v) for k, v in req.query if k not in ("cursor", "limit")]
    pairs += [("cursor", _encode_tree_cursor(repo, last_path, limit)), ("limit", str(limit))]
    return "%s%s?%s" % (req.base_url, req.path, urlencode(pairs))


# ---------------------------------------------------------------- paths-info

def paths_info(hub, req, route):
    repo = access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "paths")
    access.resolve_revision(repo, route.rest[1])
    paths, expand = _paths_info_body(req)
    if len(paths) > MAX_PATHS:
        raise errors.too_many_paths()
    entries, seen = [], set()
    for path in paths:
        entry = None if path in seen else _entry(repo, path.strip("/"), expand)
        seen.add(path)
        if entry is not None:          # missing paths are silently omitted
            entries.append(entry)
    return json_response(200, entries)


def _paths_info_body(req):
    """HH posts a form (paths=a&paths=b), JS posts JSON {"paths": [...]}."""
    kind = (req.headers.get("Content-Type") or "").lower()
    text = req.body.decode("utf-8", names.ERRORS)
    if "json" in kind or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            paths, expand = data.get("paths", []), data.get("expand", False)
        except (ValueError, AttributeError):
            raise errors.bad_request("Invalid JSON body") from None
        if isinstance(paths, str):
            paths = [paths]
        return [str(p) for p in paths], expand in (True, "true", "1")
    pairs = parse_qsl(text, keep_blank_values=True, errors=names.ERRORS)
    paths = [v for k, v in pairs if k in ("paths", "paths[]")]
    expand = any(k == "expand" and v.lower() in ("1", "true") for k, v in pairs)
    return paths, expand


# -------------------------------------------------------------- small others

def whoami(hub, req, route):
    token = req.auth.token
    if token is None:
        raise errors.invalid_token() if req.auth.invalid else errors.auth_required()
    user = hub.world.users.get(token.user, {})
    return json_response(200, {
        "type": "user", "id": user.get("id", "0" * 24), "name": token.user,
        "fullname": user.get("fullname", token.user), "email": user.get("email"),
        "emailVerified": True, "canPay": False, "isPro": False, "periodEnd": None,
        "avatarUrl": "/avatars/default.svg", "billingMode": "postpaid",
        "orgs": [{"type": "org", "name": o} for o in user.get("orgs", [])],
        "auth": {"type": "access_token", "accessToken": {
            "displayName": "hfscan-test", "role": token.role,
            "createdAt": "2025-01-01T00:00:00.000Z"}},
    })


def auth_check(hub, req, route):
    access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "download")
    return json_response(200, {})


def xet_read_token(hub, req, route):
    repo = access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "download")
    access.resolve_revision(repo, route.rest[1])
    return json_response(200, {"accessToken": "xet-standin-token", "exp": 4102444800,
                               "casUrl": hub.cdn_url})


HANDLERS = {"list-models": list_models, "model-info": model_info, "tree": tree,
            "paths-info": paths_info, "whoami": whoami, "auth-check": auth_check,
            "xet-read-token": xet_read_token}
METHODS = {"paths-info": ("POST",)}
