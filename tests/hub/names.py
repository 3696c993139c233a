"""File names on the wire.

A name on the Hub is any bytes, and the --odd-names repo has some that are
not UTF-8. In the stand-in such a name is a str whose undecodable bytes are
lone surrogates, as os.fsdecode makes them; every boundary (JSON bodies,
URLs, signatures, hashes of names, files) turns them back into those same
bytes with this error handler. For valid UTF-8 it changes nothing.
"""
ERRORS = "surrogateescape"


def to_bytes(text):
    return text.encode("utf-8", ERRORS)
