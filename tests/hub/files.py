"""File endpoints: /resolve/, /raw/, the resolve-cache hop, and the CDN.

LFS and Xet files redirect (302) to the CDN host with the hash in
X-Linked-Etag; regular git files are served directly with their git blob id
as ETag (hub-api.md section 5).  The CDN trusts only its signed URL.
"""
import hashlib
import mimetypes
import re
from urllib.parse import quote, urlencode

import access
import content
import errors
import names
import signing
from response import Response, text_response

def _quote(path):
    """A name percent-encoded as its bytes, also those that are not UTF-8 (names.py)."""
    return quote(path, errors=names.ERRORS)


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# What S3 answers for a signed URL past its expiry (hub-api.md section 12).
EXPIRED_TEXT = "AccessDenied: Request has expired"


def _file(hub, req, route):
    """Access checks, revision, entry: the common start of resolve and raw."""
    repo = access.open_repo(hub.world, hub.options, req.auth, route.repo_id, "download",
                            hub.faults.region_blocked)
    rev, path = route.rest[0], "/".join(route.rest[1:])
    commit = access.resolve_revision(repo, rev)
    f = repo.files.get(path)
    if f is None:
        raise errors.entry_not_found().with_commit(commit)
    return repo, commit, f


def resolve(hub, req, route):
    repo, commit, f = _file(hub, req, route)
    if f.is_lfs:
        return _redirect_to_cdn(hub, req, repo, commit, f)
    if hub.options.resolve_cache_307 and not repo.private and not repo.gated:
        return _redirect_to_hop(req, repo, commit, f)
    return _serve_regular(hub, req, commit, f)


def _redirect_to_hop(req, repo, commit, f):
    """The relative 307 of public regular files (hub-api.md section 12): the
    client's query is kept and the git oid added as etag=%22<oid>%22."""
    oid = f.git_oid()
    query = (req.query_string + "&" if req.query_string else "") + \
        urlencode({"etag": '"%s"' % oid})
    location = "/api/resolve-cache/models/%s/%s/%s?%s" % (repo.id, commit, _quote(f.path), query)
    return Response(307, [("location", location), ("x-repo-commit", commit),
                          ("x-linked-etag", '"%s"' % oid),
                          ("content-type", "text/plain; charset=utf-8")],
                    b"Temporary Redirect. Redirecting to " + location.encode())


def resolve_cache(hub, req, route):
    """Second hop of the relative 307 that public regular files may take.

    Its route has the same [commit, *path] shape as resolve, and it is always
    answered directly (no further 307).
    """
    repo, commit, f = _file(hub, req, route)
    if f.is_lfs:
        return _redirect_to_cdn(hub, req, repo, commit, f)
    response = _serve_regular(hub, req, commit, f)
    if req.method == "HEAD" and response.status == 200 and hub.options.hop_head_no_length:
        response.send_length = False     # a cached HEAD (JS WebBlob.ts, PR #2118)
    return response


def raw(hub, req, route):
    """The pointer text for LFS/Xet files, the bytes for regular ones."""
    repo, commit, f = _file(hub, req, route)
    # Only a request that would succeed fails: access errors and 404s stay as they are.
    if hub.faults.raw_broken(repo.id):
        raise errors.server_error(500)
    if f.is_lfs:
        pointer = content.LiteralBlob(f.pointer())
        headers = _git_headers(f, commit, f.git_oid(), "text/plain; charset=utf-8")
        return serve_blob(req, pointer, headers, None)
    return _serve_regular(hub, req, commit, f)


def _serve_regular(hub, req, commit, f):
    """A regular file's bytes, the same on resolve, its resolve-cache hop and raw.

    Under --git-mismatch the bytes are altered but the ETag (git oid) and the
    length still describe the true file, as with a corrupt git store.
    """
    blob = f.flipped_blob() if hub.faults.git_mismatched(f.repo_id) else f.blob
    return serve_blob(req, blob, _git_headers(f, commit, f.git_oid()), ("git", f.repo_id, f.path))


def _content_type(path):
    guessed = mimetypes.guess_type(path)[0]
    if guessed and guessed.startswith("text/") or path.endswith((".md", ".txt")):
        return "text/plain; charset=utf-8"
    if guessed == "application/json":
        return "application/json; charset=utf-8"
    return "application/octet-stream"


def _git_headers(f, commit, etag, content_type=None):
    return [("content-type", content_type or _content_type(f.path)),
            ("accept-ranges", "bytes"), ("etag", '"%s"' % etag), ("x-repo-commit", commit),
            ("content-disposition", _disposition(f.path))]


def _disposition(path):
    name = path.rsplit("/", 1)[-1]
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_")
    ascii_name = re.sub(r"[\x00-\x1f\x7f]", "_", ascii_name)   # a header has one line
    return "inline; filename*=UTF-8''%s; filename=\"%s\";" % (_quote(name), ascii_name)


def _redirect_to_cdn(hub, req, repo, commit, f):
    location = cdn_location(hub, repo, commit, f)
    headers = [
        ("content-type", "text/plain; charset=utf-8"), ("location", location),
        ("cache-control", "no-store"), ("vary", "Origin, Accept"),
        ("access-control-expose-headers", "X-Repo-Commit,X-Linked-Size,X-Linked-ETag,"
                                          "X-Xet-Hash,Link,Location"),
        ("x-linked-etag", '"%s"' % f.sha256()), ("x-linked-size", str(f.size)),
        ("x-repo-commit", commit),
    ]
    if f.storage == "xet":
        # A second meaning of Link: not pagination (hub-api.md section 0).
        headers.append(("x-xet-hash", f.xet_hash()))
        headers.append(("link", '<%s/api/models/%s/xet-read-token/%s>; rel="xet-auth", '
                                '<%s/v1/reconstructions/%s>; rel="xet-reconstruction-info"'
                        % (req.base_url, repo.id, commit, hub.cdn_url, f.xet_hash())))
    return Response(302, headers, b"Found. Redirecting to " + location.encode())


# ------------------------------------------------------------------ the CDN

def cdn_location(hub, repo, commit, f):
    sha = f.sha256()
    if f.storage == "xet":
        prefix = "/xet-bridge-us/%s/%s" % (repo._id, f.xet_hash())
    else:
        prefix = "/repos/%s/%s/%s" % (sha[:2], sha[2:4], sha)
    pairs = [("response-content-disposition", "attachment; filename*=UTF-8''%s"
              % _quote(f.path.rsplit("/", 1)[-1]))] + hub.signer.mint(repo.id, f.path, commit)
    return "%s%s?%s" % (hub.cdn_url, prefix, urlencode(pairs, errors=names.ERRORS))


def cdn(hub, req):
    if req.auth.sent and hub.options.cdn_reject_auth:
        # What S3 says when a signed URL also carries an Authorization header.
        return text_response(400, "InvalidArgument: Only one auth mechanism allowed")
    verdict = hub.signer.check(dict(req.query), req.method)
    if verdict == signing.EXPIRED:
        hub.instruments.bump("cdn_urls_expired")
        return text_response(403, EXPIRED_TEXT)
    f = _cdn_file(hub, req) if verdict == signing.VALID else None
    if f is None:
        return text_response(403, "AccessDenied")
    mismatch = hub.faults.mismatched(f.repo_id)
    blob = f.mismatch_blob() if mismatch else f.blob
    # The CDN ETag is not the SHA-256: the xet hash, or an S3-like opaque tag.
    etag = f.xet_hash() or hashlib.md5(f.key).hexdigest()
    headers = [("content-type", "application/octet-stream"), ("accept-ranges", "bytes"),
               ("etag", '"%s"' % etag),
               ("content-disposition", req.param("response-content-disposition", "attachment"))]
    return serve_blob(req, blob, headers, ("cdn", f.repo_id, f.path))


def _cdn_file(hub, req):
    """The file a correctly signed URL names."""
    repo_id, path = req.param("x-hub-repo", ""), req.param("x-hub-path", "")
    commit = req.param("x-hub-commit", "")
    repo = hub.world.repos.get(repo_id.lower())
    if repo is None or repo.commit != commit:
        return None
    f = repo.files.get(path)
    return f if f is not None and f.is_lfs else None


# ------------------------------------------------------------ byte serving

def serve_blob(req, blob, headers, cut_id):
    """200 or 206 (Range) for a blob; the cut fault may truncate the body."""
    start, end, status = 0, blob.size, 200
    wanted = req.headers.get("Range")
    if wanted:
        parsed = _parse_range(wanted, blob.size)
        if parsed == "unsatisfiable":
            return Response(416, headers + [("content-range", "bytes */%d" % blob.size)])
        if parsed is not None:
            start, end, status = parsed[0], parsed[1], 206
            headers = headers + [("content-range", "bytes %d-%d/%d" % (start, end - 1, blob.size))]
    response = Response(status, headers, blob=blob, start=start, end=end)
    response.cut_id = cut_id
    return response


def _parse_range(value, size):
    """(start, end_exclusive), "unsatisfiable", or None to ignore the header."""
    match = RANGE.match(value.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end
