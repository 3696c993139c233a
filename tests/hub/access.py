"""Who is asking, and may they see this repo?  (hub-api.md sections 6-7)

The order of checks mirrors what the real Hub reveals: a repo the caller
cannot see looks missing (401 without a token, 404 with one) before anything
else is said about it; a region block (hub-api.md section 12) then refuses
the files to everyone; gating only applies to file contents by default.
"""
import re

import errors

HEX = re.compile(r"^[0-9a-f]+$")


class Auth:
    def __init__(self, sent, token=None):
        self.sent = sent          # an Authorization header was present
        self.token = token        # the world's Token, or None

    @property
    def invalid(self):
        return self.sent and self.token is None


def authenticate(world, header):
    if not header:
        return Auth(False)
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return Auth(True)
    return Auth(True, world.tokens.get(value.strip()))


def caller_key(auth, client_address):
    """Rate limits apply per token, or per client address when anonymous."""
    if auth.token is not None:
        return "token:" + auth.token.value
    return "ip:" + client_address


def open_repo(world, options, auth, repo_id, kind, region_blocked=None):
    """Return the repo, or raise the error the real Hub would answer.

    kind is "info" (model info), "tree", "paths" (paths-info) or "download"
    (resolve, raw, auth-check).  region_blocked(repo_id), given by the file
    endpoints, tells whether the caller's region may not read the files.
    Raises errors.Redirect for a renamed or mis-cased id.
    """
    repo, canonical = world.find(repo_id)
    visible = repo is not None and (
        not repo.private or world.user_can_see_private(auth.token, repo))
    if not visible:
        raise errors.repo_not_found() if auth.token else errors.auth_required()
    if canonical is not None:
        raise errors.Redirect(canonical)
    if auth.invalid:
        raise errors.invalid_token()
    try:
        if region_blocked is not None and region_blocked(repo.id):
            raise errors.region_blocked()
        if repo.disabled and (kind != "info" or options.disabled_info_403):
            raise errors.disabled()
        if repo.gated and _gate_applies(options, kind):
            _check_gate(world, auth, repo)
    except errors.HubError as err:
        # The repo is known here, so a download answer names its commit.
        if kind == "download":
            err.with_commit(repo.commit)
        raise
    return repo


def _gate_applies(options, kind):
    if kind == "download":
        return True
    if kind in ("info", "tree", "paths") and options.gated_api:
        return True
    return kind == "paths" and options.gated_paths_info


def _check_gate(world, auth, repo):
    token = auth.token
    if token is None:
        raise errors.gated_anonymous(repo.id)
    if token.granted(repo.id) or world.user_can_see_private(token, repo):
        return
    if repo.id in token.pending:
        raise errors.gated_pending(repo.id)
    raise errors.gated_not_granted(repo.id)


def resolve_revision(repo, rev):
    """A branch name (main, HEAD) or the commit sha, full or abbreviated."""
    lowered = rev.lower()
    if rev in ("main", "HEAD"):
        return repo.commit
    if len(lowered) >= 7 and HEX.match(lowered) and repo.commit.startswith(lowered):
        return repo.commit
    raise errors.revision_not_found(rev)
