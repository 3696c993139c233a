"""Signed CDN URLs: minted by /resolve/, checked by the CDN.

Every mint is a distinct URL (a counter is part of what is signed), so a
client whose URL expired gets a fresh one by asking /resolve/ again
(hub-api.md section 12).  A URL stops working when its lifetime ends
(--cdn-url-ttl) or, as a deterministic stand-in for that, after a number of
GETs (--cdn-url-uses).
"""
import hashlib
import hmac
import itertools
import threading
import time

import names

VALID, INVALID, EXPIRED = "valid", "invalid", "expired"
SIGNED = ("x-hub-repo", "x-hub-path", "x-hub-commit", "x-hub-nonce", "Expires")


class Signer:
    def __init__(self, secret, ttl=3600, uses=0):
        self.secret = secret
        self.ttl = ttl
        self.uses = uses
        self._nonces = itertools.count(1)
        self._gets = {}             # signature -> GETs answered
        self._lock = threading.Lock()

    def mint(self, repo_id, path, commit):
        """The signed query parameters, in URL order."""
        with self._lock:
            nonce = next(self._nonces)
        params = dict(zip(SIGNED, (repo_id, path, commit, str(nonce), self._expiry())))
        params["Signature"] = self._sign(params)
        return list(params.items())

    def _expiry(self):
        # Whole seconds as real signed URLs have them; a fractional ttl (for
        # tests) keeps milliseconds so that it is not rounded away.
        if float(self.ttl).is_integer():
            return str(int(time.time()) + int(self.ttl))
        return "%.3f" % (time.time() + self.ttl)

    def _sign(self, params):
        message = names.to_bytes("\0".join(params.get(name, "") for name in SIGNED))
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def check(self, params, method):
        """VALID, INVALID (tampered) or EXPIRED; a valid GET uses the URL once."""
        signature = params.get("Signature", "")
        if not hmac.compare_digest(self._sign(params), signature):
            return INVALID
        try:
            expires = float(params.get("Expires", ""))
        except ValueError:
            return INVALID
        if expires <= time.time():
            return EXPIRED
        if not self.uses:
            return VALID
        with self._lock:
            used = self._gets.get(signature, 0)
            if used >= self.uses:
                return EXPIRED
            if method == "GET":
                self._gets[signature] = used + 1
        return VALID
