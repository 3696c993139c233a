"""A response before it is written: status, headers, and a body that is
either bytes or a byte range of a Blob (streamed, never built in memory)."""
import json

import content
import names


class Response:
    def __init__(self, status, headers=None, body=b"", blob=None, start=0, end=None):
        self.status = status
        self.headers = list(headers or [])
        if blob is None:
            blob = content.LiteralBlob(body)
        self.blob = blob
        self.start = start
        self.end = blob.size if end is None else end
        self.cut_id = None          # file identity for the cut-download fault
        self.send_length = True     # False: a HEAD answer without content-length

    @property
    def length(self):
        return self.end - self.start

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def chunks(self):
        return self.blob.chunks(self.start, self.end)


def json_response(status, payload, headers=()):
    body = names.to_bytes(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    return Response(status, [("content-type", "application/json; charset=utf-8")] + list(headers),
                    body)


def text_response(status, text, headers=()):
    return Response(status, [("content-type", "text/plain; charset=utf-8")] + list(headers),
                    names.to_bytes(text))


def html_response(status, html, headers=()):
    return Response(status, [("content-type", "text/html; charset=utf-8")] + list(headers),
                    html.encode("utf-8"))
