"""File bytes and the hashes derived from them.

Generated files are never stored: their bytes are a pure function of
(repo id, path, content version, size), so the true SHA-256 can be computed
by anyone and large files can be streamed in chunks.  Hashes are computed
once, lazily, and cached, because a multi-GB file takes seconds to hash.
"""
import hashlib
import threading

import names

BLOCK = 64 * 1024          # generation and streaming unit
LFS_SPEC = "https://git-lfs.github.com/spec/v1"


def content_key(repo_id, path, version, salt=""):
    """The seed of a generated file; `salt` yields deliberately different bytes."""
    text = "hfscan-test-hub\0%s\0%s\0%s\0%s" % (repo_id, path, version, salt)
    return hashlib.sha256(names.to_bytes(text)).digest()


class Blob:
    """Bytes of known size that can be read in ranges, plus cached hashes."""

    def __init__(self, size):
        self.size = size
        self._lock = threading.Lock()
        self._sha256 = None
        self._git_oid = None

    def chunks(self, start=0, end=None):
        """Yield the bytes of [start, end) in chunks of at most BLOCK."""
        raise NotImplementedError

    def read_all(self):
        return b"".join(self.chunks())

    def sha256(self):
        with self._lock:
            if self._sha256 is None:
                h = hashlib.sha256()
                for chunk in self.chunks():
                    h.update(chunk)
                self._sha256 = h.hexdigest()
            return self._sha256

    def git_oid(self):
        """Git blob id: SHA-1 of "blob <len>\\0" followed by the bytes."""
        with self._lock:
            if self._git_oid is None:
                h = hashlib.sha1(b"blob %d\0" % self.size)
                for chunk in self.chunks():
                    h.update(chunk)
                self._git_oid = h.hexdigest()
            return self._git_oid


class LiteralBlob(Blob):
    """Small files whose text is given (README.md, config.json, pointers)."""

    def __init__(self, data):
        super().__init__(len(data))
        self.data = data

    def chunks(self, start=0, end=None):
        end = self.size if end is None else end
        for pos in range(start, end, BLOCK):
            yield self.data[pos:min(end, pos + BLOCK)]


class GeneratedBlob(Blob):
    """Pseudo-random bytes: block i is SHAKE-256(key || i) truncated to BLOCK."""

    def __init__(self, key, size):
        super().__init__(size)
        self.key = key

    def _block(self, index):
        shake = hashlib.shake_256(self.key + index.to_bytes(8, "big"))
        return shake.digest(BLOCK)

    def chunks(self, start=0, end=None):
        end = self.size if end is None else min(end, self.size)
        pos = start
        while pos < end:
            index, offset = divmod(pos, BLOCK)
            take = min(BLOCK - offset, end - pos)
            yield self._block(index)[offset:offset + take]
            pos += take


class FlippedBlob(Blob):
    """Another blob's bytes with the first one inverted.

    Same size, and never equal (unless empty), so only a client that hashes
    what it downloaded notices; every range is a slice of the same bytes.
    """

    def __init__(self, inner):
        super().__init__(inner.size)
        self.inner = inner

    def chunks(self, start=0, end=None):
        pieces = self.inner.chunks(start, end)
        if start == 0:
            first = next(pieces, b"")
            if first:
                yield bytes((first[0] ^ 0xFF,)) + first[1:]
        yield from pieces


def lfs_pointer(sha256_hex, size):
    """The exact pointer text git-lfs stores in the repository."""
    return ("version %s\noid sha256:%s\nsize %d\n" % (LFS_SPEC, sha256_hex, size)).encode("ascii")


def git_oid_of_bytes(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def xet_hash_standin(key, size):
    """Stand-in for the Xet BLAKE3 Merkle hash.

    The stdlib has no BLAKE3, and the real value is not a SHA-256 of the
    content anyway; all that matters to a client is that it is 64 hex digits
    that differ from the SHA-256.
    """
    return hashlib.sha256(b"xet-merkle-standin\0" + key + b"%d" % size).hexdigest()
