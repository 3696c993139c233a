/* Rate limiting per Hub bucket ("api", "resolvers", ...). Each bucket has a
 * minimum spacing between request starts (the user's --rate-limit) and a quota
 * learnt from the Hub's RateLimit / RateLimit-Policy headers and from 429s.
 * Thread-safe; shared by reference count between Lua objects and pool workers. */
#ifndef HFSCAN_RATELIMIT_H
#define HFSCAN_RATELIMIT_H

#include "hfscan/http_headers.h"

typedef struct hf_ratelimit hf_ratelimit;

typedef struct hf_bucket_state {
  double spacing;     /* seconds between request starts */
  long quota;         /* q from RateLimit-Policy, -1 when unknown */
  long window;        /* w from RateLimit-Policy, -1 when unknown */
  long remaining;     /* our estimate of requests left in the window, -1 when unknown */
  double reset_in;    /* seconds until the window resets (relative to now), -1 when unknown */
  double blocked_for; /* seconds during which nothing may start (after a 429) */
  long in_flight;     /* started and not yet observed */
  long requests;      /* requests started */
  long throttled;     /* 429 responses observed */
  double waited;      /* total seconds callers were held back */
} hf_bucket_state;

hf_ratelimit *hf_ratelimit_new(void);
hf_ratelimit *hf_ratelimit_retain(hf_ratelimit *rl);
void hf_ratelimit_release(hf_ratelimit *rl);

void hf_ratelimit_set_spacing(hf_ratelimit *rl, const char *bucket, double seconds);
/* Low-water mark (fraction of the quota) below which the remaining quota is spread
 * over the rest of the window rather than spent at once. Default 0.1. */
void hf_ratelimit_set_spread_fraction(hf_ratelimit *rl, double fraction);

/* Plans the next request in bucket at or after now (seconds on any monotonic
 * clock) and returns its start time. When that start lies in the current
 * window, the slot is booked (*booked = 1): wait until then and send. When the
 * window is spent, nothing is booked (*booked = 0): wait until then and ask
 * again, so that no slot of a window not yet open is promised early. */
double hf_ratelimit_reserve(hf_ratelimit *rl, const char *bucket, double now, int *booked);
/* Adds to the bucket's waited total the seconds a caller waited after a reserve
 * that booked nothing (reserve counts the wait of a booked slot itself). */
void hf_ratelimit_note_wait(hf_ratelimit *rl, const char *bucket, double seconds);
/* Gives back a reservation that will not be used (its request was never sent). */
void hf_ratelimit_cancel(hf_ratelimit *rl, const char *bucket);
/* A booked request is about to go out at now. Until then it is "queued": if the
 * window rolls over first, the request lands in the new window and counts there. */
void hf_ratelimit_sending(hf_ratelimit *rl, const char *bucket, double now);
/* reserve + sleep. Returns seconds waited, or -1 if interrupted while waiting. */
double hf_ratelimit_acquire(hf_ratelimit *rl, const char *bucket);

/* Feeds a response back: its status and headers at time now. The RateLimit header
 * names its own bucket, which wins over the bucket the request was booked in. */
void hf_ratelimit_observe(hf_ratelimit *rl, const char *bucket, long status,
                          const hf_headers *headers, double now);

/* Values from the server that the limiter refused or cut down: a RateLimit or
 * RateLimit-Policy field unreadable or out of range (ignored, as if absent), a
 * reset or Retry-After beyond the bucket's window (or 900 s when the window is
 * unknown), cut to it. Returns how many so far and copies a line on the latest
 * into last ("" when none), so that a broken or hostile Hub is logged once. */
long hf_ratelimit_suspicious(hf_ratelimit *rl, char *last, size_t last_size);

/* Returns 0 and fills state (times relative to now), or -1 for an unknown bucket. */
int hf_ratelimit_state(hf_ratelimit *rl, const char *bucket, double now, hf_bucket_state *state);

/* Header parsers, exposed for tests. Each returns 0 on success, and -1 for a
 * field that is unreadable or out of range: the bucket is the last quoted name
 * before the first parameter, parameters count only outside quotes, values are
 * plain decimal integers, with 0 <= r <= 1e9 and 0 <= t <= 86400 (a day) for
 * RateLimit, 1 <= q <= 1e9 and 1 <= w <= 86400 for RateLimit-Policy. Only the
 * first member of a list (up to a ',' outside quotes) is read. */
int hf_ratelimit_parse_header(const char *value, char *bucket, size_t bucket_size, long *r,
                              long *t);
int hf_ratelimit_parse_policy(const char *value, char *bucket, size_t bucket_size, long *q,
                              long *w);
/* Retry-After as delay seconds or an HTTP date; -1 when absent or unreadable. */
double hf_ratelimit_parse_retry_after(const char *value, double wall_now);

#endif
