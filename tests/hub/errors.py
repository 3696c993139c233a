"""The Hub's error answers (hub-api.md section 6), in one place.

Handlers raise HubError; the server renders it as JSON `{"error": ...}` on
/api/ URLs and as plain text on resolve/raw URLs, as the real Hub does.
"""
from response import html_response, json_response, text_response

AUTH_FAILED = "Invalid username or password."
BAD_TOKEN = "Invalid credentials in Authorization header"
WWW_AUTHENTICATE = 'Bearer realm="Authentication required", charset="UTF-8"'


class HubError(Exception):
    def __init__(self, status, message, code=None, headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers)

    def with_commit(self, commit):
        """Resolve answers carry X-Repo-Commit once the revision is known."""
        self.headers.append(("x-repo-commit", commit))
        return self

    def to_response(self, as_json):
        headers = list(self.headers)
        if self.code:
            headers.append(("x-error-code", self.code))
        headers.append(("x-error-message", self.message))
        if self.status == 401:
            headers.append(("www-authenticate", WWW_AUTHENTICATE))
        if as_json:
            return json_response(self.status, {"error": self.message}, headers)
        return text_response(self.status, self.message, headers)


class HtmlError(HubError):
    """What a gateway in front of the Hub answers: an HTML page (the message),
    no X-Error-*."""

    def to_response(self, as_json):
        return html_response(self.status, self.message, self.headers)


class Redirect(Exception):
    """A renamed or mis-cased repo id: answered with a relative 307."""

    def __init__(self, canonical_id):
        super().__init__(canonical_id)
        self.canonical_id = canonical_id


def auth_required():
    """Private or missing repo, without a (valid) token: no X-Error-Code."""
    return HubError(401, AUTH_FAILED)


def invalid_token():
    return HubError(401, BAD_TOKEN)


def repo_not_found():
    return HubError(404, "Repository not found", "RepoNotFound")


def entry_not_found():
    return HubError(404, "Entry not found", "EntryNotFound")


def revision_not_found(rev):
    return HubError(404, "Invalid rev id: %s" % rev, "RevisionNotFound")


def gated_anonymous(repo_id):
    return HubError(401, "Access to model %s is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in." % repo_id, "GatedRepo")


def gated_not_granted(repo_id):
    return HubError(403, "Access to model %s is restricted and you are not in the authorized "
                    "list. Visit https://huggingface.co/%s to ask for access." % (repo_id, repo_id),
                    "GatedRepo")


def gated_pending(repo_id):
    return HubError(403, "Your request to access model %s is awaiting a review from the repo "
                    "authors." % repo_id, "GatedRepo")


def disabled():
    return HubError(403, "Access to this resource is disabled.")


def region_blocked():
    """No X-Error-Code, whatever the token (hub-api.md section 12)."""
    return HubError(403, "This model is not available in your region.")


def gateway_timeout():
    """A listing page too heavy to compute in time (section 12, HH #2460)."""
    return HtmlError(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>")


def bad_request(message):
    return HubError(400, message)


def too_many_paths():
    return HubError(413, "too many parameters")


def not_found():
    return HubError(404, "Not Found")


def server_error(status):
    text = {500: "Internal Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    return HubError(status, text)
