"""Request log and counters, so tests can check how a scanner behaves."""
import json
import threading
import time

BUCKETS = ("api", "resolvers", "pages")


class Instruments:
    def __init__(self, log_path=None):
        self._lock = threading.Lock()
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self.reset()

    def reset(self):
        with self._lock:
            self.counts = {
                "requests": {b: 0 for b in BUCKETS + ("cdn",)},
                "status_429": {b: 0 for b in BUCKETS},
                "requests_into_exhausted_window": {b: 0 for b in BUCKETS},
                "cdn_requests_with_authorization": 0,
                "api_faults_injected": 0,
                "other_quota_429s": 0,
                "downloads_cut": 0,
                "cdn_urls_expired": 0,
                "listing_504s": 0,
                "html_429s": 0,
                "statuses": {},
            }

    def count_request(self, bucket, decision=None):
        with self._lock:
            self.counts["requests"][bucket or "cdn"] += 1
            if decision is not None:
                if not decision.allowed:
                    self.counts["status_429"][bucket] += 1
                if decision.into_exhausted:
                    self.counts["requests_into_exhausted_window"][bucket] += 1

    def bump(self, name):
        with self._lock:
            self.counts[name] += 1

    def record(self, method, path, role, host_header, auth, status, bucket, range_header):
        with self._lock:
            statuses = self.counts["statuses"]
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if self._log is None:
                return
            entry = {"ts": round(time.time(), 3), "method": method, "path": path, "host": role,
                     "host_header": host_header, "auth": auth, "status": status,
                     "bucket": bucket, "range": range_header}
            self._log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._log.flush()

    def snapshot(self):
        with self._lock:
            return json.loads(json.dumps(self.counts))

    def close(self):
        if self._log:
            self._log.close()
