"""Fixed-window rate limits per bucket and per caller, as the Hub documents.

Each (bucket, caller) pair gets a window that opens with its first request
and lasts `window` seconds; or, aligned as the real Hub's are (hub-api.md
section 12), windows are fixed slices of the wall clock, so a caller's first
request can see any t from 1 to the window.  Besides allowing or refusing, a decision says
whether the caller had already been told `r=0` in this window: a polite
client stops there, so such requests are counted separately by the stats.
"""
import math
import threading
import time


class Decision:
    def __init__(self, bucket, allowed, remaining, reset, quota, window, into_exhausted):
        self.bucket = bucket
        self.allowed = allowed
        self.remaining = remaining
        self.reset = reset
        self.quota = quota
        self.window = window
        self.into_exhausted = into_exhausted

    def headers(self):
        """The draft-ietf-httpapi-ratelimit-headers-09 pair the Hub sends."""
        return [
            ("ratelimit", '"%s";r=%d;t=%d' % (self.bucket, self.remaining, self.reset)),
            ("ratelimit-policy", '"fixed window";"%s";q=%d;w=%d' % (self.bucket, self.quota,
                                                                   self.window)),
        ]


class _Window:
    def __init__(self, start):
        self.start = start
        self.used = 0
        self.told_zero = False


class FixedWindowLimiter:
    def __init__(self, quotas, window, clock=None, aligned=False):
        self.quotas = dict(quotas)
        self.window = float(window)
        self.aligned = aligned
        self.clock = clock or (time.time if aligned else time.monotonic)
        self._windows = {}
        self._lock = threading.Lock()

    def take(self, bucket, caller):
        """Count one request of `caller` against `bucket`."""
        quota = self.quotas[bucket]
        with self._lock:
            now = self.clock()
            state = self._windows.get((bucket, caller))
            if state is None or now >= state.start + self.window:
                state = self._windows[(bucket, caller)] = _Window(self._start(now))
            into_exhausted = state.told_zero
            allowed = state.used < quota
            if allowed:
                state.used += 1
            remaining = quota - state.used
            if remaining == 0:
                state.told_zero = True
            # The epsilon keeps float noise from turning 300.0 into t=301.
            reset = max(0, math.ceil(state.start + self.window - now - 1e-6))
        return Decision(bucket, allowed, remaining, reset, quota,
                        math.ceil(self.window), into_exhausted)

    def _start(self, now):
        if self.aligned:
            return math.floor(now / self.window) * self.window
        return now

    def reset(self):
        with self._lock:
            self._windows.clear()
