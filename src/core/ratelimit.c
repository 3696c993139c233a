/* Request pacing per Hub bucket. The Hub uses fixed windows: a quota q per window
 * of w seconds, with the remaining count r and the seconds to the reset t on every
 * response. We spend the quota freely while plenty remains, spread the last part
 * of it over the rest of the window, and never start a request in a window we
 * know is exhausted: such a request would only earn a 429. */
#include "hfscan/ratelimit.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hfscan/interrupt.h"

#define MAX_BUCKETS 16
#define BUCKET_NAME_SIZE 32
/* A 429 with neither RateLimit nor Retry-After: hold the bucket this long. */
#define UNKNOWN_429_PAUSE 1.0
/* A wait the server sets (a reset, a Retry-After) is believed up to the bucket's
 * window, as a fixed window always resets within one; without a known window, up
 * to this many seconds. Longer waits would let a broken Hub stall the scan. */
#define UNKNOWN_WINDOW_WAIT_CAP 900.0
/* Until a bucket's first answer tells its quota, one request probes it alone;
 * the others look again this much later, for at most PROBE_LIMIT seconds (a
 * first request that is a long download must not hold the others up). */
#define PROBE_WAIT 0.02
#define PROBE_LIMIT 0.5

struct bucket {
  char name[BUCKET_NAME_SIZE];
  double spacing;
  double last_start; /* -1 before the first request */
  long quota, window, remaining;
  double reset_at, blocked_until;
  int reset_from_header; /* reset_at came from a RateLimit header, not our own roll */
  long answers;          /* responses observed */
  double first_start;    /* when the first request was booked */
  long in_flight, requests, throttled;
  long queued;  /* booked, not yet sent: they will count in the window they reach */
  long least_r; /* the smallest r the Hub told in this window, -1 when none */
  double waited;
};

struct hf_ratelimit {
  pthread_mutex_t lock;
  atomic_int refs;
  double spread_fraction;
  struct bucket buckets[MAX_BUCKETS];
  int count;
  long suspicious;           /* server values refused or cut down */
  char last_suspicious[160]; /* what the latest of them was */
};

hf_ratelimit *hf_ratelimit_new(void) {
  hf_ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl)
    return NULL;
  pthread_mutex_init(&rl->lock, NULL);
  atomic_init(&rl->refs, 1);
  rl->spread_fraction = 0.1;
  return rl;
}

hf_ratelimit *hf_ratelimit_retain(hf_ratelimit *rl) {
  atomic_fetch_add(&rl->refs, 1);
  return rl;
}

void hf_ratelimit_release(hf_ratelimit *rl) {
  if (rl && atomic_fetch_sub(&rl->refs, 1) == 1) {
    pthread_mutex_destroy(&rl->lock);
    free(rl);
  }
}

static struct bucket *find_bucket(hf_ratelimit *rl, const char *name, int create) {
  for (int i = 0; i < rl->count; i++)
    if (strcmp(rl->buckets[i].name, name) == 0)
      return &rl->buckets[i];
  if (!create || rl->count == MAX_BUCKETS)
    return NULL;
  struct bucket *b = &rl->buckets[rl->count++];
  memset(b, 0, sizeof *b);
  snprintf(b->name, sizeof b->name, "%s", name);
  b->last_start = -1;
  b->quota = b->window = b->remaining = b->least_r = -1;
  b->reset_at = -1;
  return b;
}

void hf_ratelimit_set_spacing(hf_ratelimit *rl, const char *bucket, double seconds) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 1);
  if (b)
    b->spacing = seconds > 0 ? seconds : 0;
  pthread_mutex_unlock(&rl->lock);
}

void hf_ratelimit_set_spread_fraction(hf_ratelimit *rl, double fraction) {
  pthread_mutex_lock(&rl->lock);
  rl->spread_fraction = fraction;
  pthread_mutex_unlock(&rl->lock);
}

static double max2(double a, double b) { return a > b ? a : b; }

/* Moves the bucket into the window that contains time t, if that is a new one. */
static void roll_window(struct bucket *b, double t) {
  while (b->reset_at >= 0 && t >= b->reset_at) {
    /* Requests booked in the old window but still waiting for a worker will be
     * sent in this one, and the Hub counts them here. */
    b->remaining = b->quota > b->queued ? b->quota - b->queued : 0;
    b->reset_at = b->window > 0 ? b->reset_at + b->window : -1;
    b->reset_from_header = 0; /* a guess until the new window's first answer */
    b->least_r = -1;
  }
}

/* The earliest start for the next request, and whether it falls in the window
 * the bucket knows (only then may it be booked). */
static double next_start(const hf_ratelimit *rl, struct bucket *b, double now, int *bookable) {
  roll_window(b, now);
  if (b->answers == 0 && b->in_flight > 0 && now < b->first_start + PROBE_LIMIT) {
    *bookable = 0; /* the first answer will tell the quota: bursting before it could overrun it */
    return now + PROBE_WAIT;
  }
  double t = now;
  if (b->last_start >= 0)
    t = max2(t, b->last_start + b->spacing);
  t = max2(t, b->blocked_until);
  if (b->remaining == 0 && b->reset_at >= 0) {
    *bookable = 0;
    return max2(t, b->reset_at);
  }
  if (b->remaining > 0 && b->quota > 0 && b->reset_at > t &&
      b->remaining <= rl->spread_fraction * (double)b->quota) {
    double pace = (b->reset_at - t) / (double)b->remaining;
    if (b->last_start >= 0)
      t = max2(t, b->last_start + pace);
  }
  *bookable = !(b->reset_at >= 0 && t >= b->reset_at);
  return t;
}

double hf_ratelimit_reserve(hf_ratelimit *rl, const char *bucket, double now, int *booked) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 1);
  double t = now;
  int bookable = 1;
  if (b) {
    t = next_start(rl, b, now, &bookable);
    if (bookable) {
      /* A caller told to ask again later counts its own waiting until then. */
      b->waited += t - now;
      if (b->requests == 0)
        b->first_start = t;
      if (b->remaining > 0)
        b->remaining--;
      b->last_start = t;
      b->in_flight++;
      b->queued++;
      b->requests++;
    }
  }
  pthread_mutex_unlock(&rl->lock);
  if (booked)
    *booked = bookable;
  return t;
}

void hf_ratelimit_sending(hf_ratelimit *rl, const char *bucket, double now) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 0);
  if (b)
    roll_window(b, now); /* past a reset, this request counts in the new window */
  if (b && b->queued > 0)
    b->queued--;
  pthread_mutex_unlock(&rl->lock);
}

/* A slot booked but not spent is free again (never above the quota told). */
static void give_back_slot(struct bucket *b) {
  if (b->remaining >= 0 && (b->quota < 0 || b->remaining < b->quota))
    b->remaining++;
}

void hf_ratelimit_cancel(hf_ratelimit *rl, const char *bucket) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 0);
  if (b && b->in_flight > 0)
    b->in_flight--;
  if (b && b->queued > 0)
    b->queued--;
  if (b)
    give_back_slot(b); /* the slot it booked is free again */
  pthread_mutex_unlock(&rl->lock);
}

void hf_ratelimit_note_wait(hf_ratelimit *rl, const char *bucket, double seconds) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 1);
  if (b && seconds > 0)
    b->waited += seconds;
  pthread_mutex_unlock(&rl->lock);
}

double hf_ratelimit_acquire(hf_ratelimit *rl, const char *bucket) {
  double began = hf_monotonic_seconds();
  for (;;) {
    double now = hf_monotonic_seconds();
    int booked = 0;
    double start = hf_ratelimit_reserve(rl, bucket, now, &booked);
    if (start > now && hf_sleep_interruptible(start - now)) {
      if (booked)
        hf_ratelimit_cancel(rl, bucket);
      return -1;
    }
    if (booked)
      return hf_monotonic_seconds() - began;
    hf_ratelimit_note_wait(rl, bucket, start - now);
  }
}

/* ---- the RateLimit and RateLimit-Policy fields ----
 * Each is read as its first list member (up to a ',' outside quotes): segments
 * split at ';', each a quoted name or a key=value parameter. Only what lies
 * outside quotes is syntax, so a bucket named "q=5;w=1" is a name, not a quota. */

struct told {
  char keys[2];    /* the two parameters wanted: 'r' and 't', or 'q' and 'w' */
  long values[2];  /* their values, once found */
  int found[2];    /* first one wins, as before */
  int params_seen; /* names after the first parameter are not the bucket's */
  char name[128];  /* the last quoted name before the first parameter */
};

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static const char *skip_blanks(const char *p, const char *end) {
  while (p < end && is_blank(*p))
    p++;
  return p;
}

static const char *trim_blanks(const char *start, const char *end) {
  while (end > start && is_blank(end[-1]))
    end--;
  return end;
}

/* The end of the segment starting at p: the next ';' or ',' outside quotes, or
 * the end of the text; NULL when a quote is left open. */
static const char *segment_end(const char *p) {
  int quoted = 0;
  for (; *p; p++) {
    if (quoted && *p == '\\' && p[1])
      p++; /* an escaped character, '"' included, stays inside */
    else if (*p == '"')
      quoted = !quoted;
    else if (!quoted && (*p == ';' || *p == ','))
      break;
  }
  return quoted ? NULL : p;
}

/* Reads the quoted string that fills [start, end) into told->name, escapes
 * resolved. A string followed by more text, or an empty one, names nothing. */
static int read_name(const char *start, const char *end, struct told *told) {
  size_t len = 0;
  const char *p = start + 1;
  for (; p < end && *p != '"'; p++) {
    if (*p == '\\')
      p++; /* segment_end kept the pair together */
    if (len + 1 < sizeof told->name)
      told->name[len++] = *p;
  }
  told->name[len] = '\0';
  return p == end - 1 && len > 0 ? 0 : -1;
}

/* A non-negative decimal integer filling [p, end); -1 for anything else or for
 * one that would overflow a long. */
static int read_count(const char *p, const char *end, long *out) {
  long v = 0;
  if (p == end)
    return -1;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    int digit = *p - '0';
    if (v > (LONG_MAX - digit) / 10)
      return -1;
    v = v * 10 + digit;
  }
  *out = v;
  return 0;
}

/* key=value: a wanted key with a value that is not a plain count spoils the field. */
static int read_param(const char *key, const char *key_end, const char *value,
                      const char *value_end, struct told *told) {
  told->params_seen = 1;
  for (int i = 0; i < 2; i++) {
    if (key_end - key != 1 || *key != told->keys[i] || told->found[i])
      continue;
    if (read_count(value, value_end, &told->values[i]) != 0)
      return -1;
    told->found[i] = 1;
  }
  return 0;
}

static int read_segment(const char *start, const char *end, struct told *told) {
  start = skip_blanks(start, end);
  end = trim_blanks(start, end);
  if (start < end && *start == '"')
    return told->params_seen ? 0 : read_name(start, end, told);
  const char *eq = memchr(start, '=', (size_t)(end - start));
  if (!eq)
    return 0; /* a bare flag, or nothing: of no use here */
  return read_param(start, trim_blanks(start, eq), skip_blanks(eq + 1, end), end, told);
}

static int read_first_member(const char *value, struct told *told) {
  if (!value)
    return -1;
  for (const char *p = value;; p++) {
    const char *end = segment_end(p);
    if (!end || read_segment(p, end, told) != 0)
      return -1;
    if (*end != ';')
      break; /* ',' ends the first member, '\0' the field */
    p = end;
  }
  return told->name[0] && told->found[0] && told->found[1] ? 0 : -1;
}

/* Beyond these a value is absurd, not a policy: no Hub window lasts longer than a
 * day, and no quota counts a billion requests. */
#define MAX_TOLD_SECONDS 86400L
#define MAX_TOLD_COUNT 1000000000L

/* Reads a header's bucket and its two numbers, a count (keys[0]) and seconds
 * (keys[1]), each refused below least or beyond the bounds above. */
static int parse_count_and_seconds(const char *value, const char keys[2], long least, char *bucket,
                                   size_t bucket_size, long *count, long *seconds) {
  struct told told = {.keys = {keys[0], keys[1]}};
  if (read_first_member(value, &told) != 0)
    return -1;
  long n = told.values[0], s = told.values[1];
  if (n < least || n > MAX_TOLD_COUNT || s < least || s > MAX_TOLD_SECONDS)
    return -1;
  snprintf(bucket, bucket_size, "%s", told.name);
  *count = n;
  *seconds = s;
  return 0;
}

int hf_ratelimit_parse_header(const char *value, char *bucket, size_t bucket_size, long *r,
                              long *t) {
  return parse_count_and_seconds(value, "rt", 0, bucket, bucket_size, r, t);
}

int hf_ratelimit_parse_policy(const char *value, char *bucket, size_t bucket_size, long *q,
                              long *w) {
  /* "fixed window";"api";q=500;w=300: the bucket is the last name before q. A
   * quota or a window of 0 would close the bucket for good: refused. */
  return parse_count_and_seconds(value, "qw", 1, bucket, bucket_size, q, w);
}

double hf_ratelimit_parse_retry_after(const char *value, double wall_now) {
  if (!value || !*value)
    return -1;
  char *end;
  long seconds = strtol(value, &end, 10);
  if (end != value && *end == '\0')
    return seconds >= 0 ? (double)seconds : -1;
  time_t when = curl_getdate(value, NULL);
  if (when < 0)
    return -1;
  return max2(0, (double)when - wall_now);
}

/* Keeps a line on a value the server should not have sent, for the log. */
static void note_suspicious(hf_ratelimit *rl, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(rl->last_suspicious, sizeof rl->last_suspicious, format, args);
  va_end(args);
  /* Header text goes to a log line: no control bytes from a hostile server. */
  for (char *c = rl->last_suspicious; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
      *c = '?';
  rl->suspicious++;
}

/* A wait the server set, cut down to what the bucket's window allows. */
static double bounded_wait(hf_ratelimit *rl, const struct bucket *b, const char *what,
                           double seconds) {
  double cap = b->window > 0 ? (double)b->window : UNKNOWN_WINDOW_WAIT_CAP;
  if (seconds <= cap)
    return seconds;
  note_suspicious(rl, "%s of %.0f s in bucket \"%s\" cut to %.0f s", what, seconds, b->name, cap);
  return cap;
}

/* Updates a bucket from "r remaining, reset in t seconds" (t already bounded),
 * seen at now. Answers arrive out of order over parallel connections, so within
 * one window the estimate only goes down; a later window replaces it. */
static void apply_ratelimit(struct bucket *b, long r, double t, double now) {
  double reset = now + t;
  double half = b->window > 0 ? (double)b->window / 2 : 0.5;
  /* Requests still in flight may not be counted in r yet: assume they are not. */
  long left = r > b->in_flight ? r - b->in_flight : 0;
  if (b->reset_at < 0 || reset > b->reset_at + half) {
    b->remaining = left;
    b->reset_at = reset;
    b->reset_from_header = 1;
    b->least_r = r;
  } else if (reset < b->reset_at - half) {
    return; /* a late answer from a window already over */
  } else {
    if (b->least_r < 0 || r < b->least_r)
      b->least_r = r;
    if (b->remaining < 0 || left < b->remaining)
      b->remaining = left;
    /* t is rounded up, so the smallest now + t is the closest safe estimate;
     * but our own guess after a roll gives way to the Hub's. */
    if (!b->reset_from_header || reset < b->reset_at)
      b->reset_at = reset;
    b->reset_from_header = 1;
  }
}

static void apply_policy(hf_ratelimit *rl, const hf_headers *headers) {
  char name[BUCKET_NAME_SIZE];
  long q, w;
  const char *policy = hf_headers_get(headers, "RateLimit-Policy");
  if (!policy)
    return;
  if (hf_ratelimit_parse_policy(policy, name, sizeof name, &q, &w) != 0) {
    note_suspicious(rl, "refused RateLimit-Policy: %.100s", policy);
    return;
  }
  struct bucket *b = find_bucket(rl, name, 1);
  if (b) {
    b->quota = q;
    b->window = w;
  }
}

/* A 429 holds the bucket: until the reset when the window is spent, else for
 * Retry-After or a short pause. */
static void hold_after_429(hf_ratelimit *rl, struct bucket *b, const hf_headers *headers,
                           int window_spent, double reset_in, double now) {
  b->throttled++;
  double wall = (double)time(NULL);
  double retry =
      hf_ratelimit_parse_retry_after(headers ? hf_headers_get(headers, "Retry-After") : NULL, wall);
  if (retry > 0)
    retry = bounded_wait(rl, b, "Retry-After", retry);
  double until = now + (retry >= 0 ? retry : 0);
  if (window_spent) {
    until = max2(until, now + reset_in);
    b->remaining = 0;
  } else if (retry < 0) {
    /* No header, or r > 0: another quota refused this one request (hub-api.md
     * section 8), so the window is not spent; a short pause, not its reset. */
    until = now + UNKNOWN_429_PAUSE;
  }
  b->blocked_until = max2(b->blocked_until, until);
}

void hf_ratelimit_observe(hf_ratelimit *rl, const char *bucket, long status,
                          const hf_headers *headers, double now) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *booked = find_bucket(rl, bucket, 1);
  if (booked && booked->in_flight > 0)
    booked->in_flight--;
  if (booked)
    booked->answers++;

  char name[BUCKET_NAME_SIZE];
  long r = -1, t = -1;
  const char *header = headers ? hf_headers_get(headers, "RateLimit") : NULL;
  int has_header = header && hf_ratelimit_parse_header(header, name, sizeof name, &r, &t) == 0;
  if (header && !has_header)
    note_suspicious(rl, "refused RateLimit: %.100s", header); /* as if absent */
  struct bucket *b = has_header ? find_bucket(rl, name, 1) : booked;
  if (b && b != booked)
    b->answers++;
  if (b && booked && b != booked)
    give_back_slot(booked); /* the Hub counted it in the other bucket */
  if (headers)
    apply_policy(rl, headers);
  /* After the policy: it tells the window that bounds the reset. */
  double reset_in = b && has_header ? bounded_wait(rl, b, "RateLimit reset", (double)t) : 0;
  if (b && has_header)
    apply_ratelimit(b, r, reset_in, now);
  /* With every request answered, the smallest r told is the Hub's own count: the
   * guesses made for requests in flight give way to it (they only ever erred low). */
  if (b && b == booked && b->in_flight == 0 && b->queued == 0 && b->least_r > b->remaining)
    b->remaining = b->least_r;
  if (b && status == 429)
    hold_after_429(rl, b, headers, has_header && r == 0, reset_in, now);
  pthread_mutex_unlock(&rl->lock);
}

long hf_ratelimit_suspicious(hf_ratelimit *rl, char *last, size_t last_size) {
  pthread_mutex_lock(&rl->lock);
  long count = rl->suspicious;
  if (last && last_size)
    snprintf(last, last_size, "%s", rl->last_suspicious);
  pthread_mutex_unlock(&rl->lock);
  return count;
}

int hf_ratelimit_state(hf_ratelimit *rl, const char *bucket, double now, hf_bucket_state *s) {
  pthread_mutex_lock(&rl->lock);
  struct bucket *b = find_bucket(rl, bucket, 0);
  if (b) {
    roll_window(b, now);
    *s = (hf_bucket_state){
        .spacing = b->spacing,
        .quota = b->quota,
        .window = b->window,
        .remaining = b->remaining,
        .reset_in = b->reset_at >= 0 ? b->reset_at - now : -1,
        .blocked_for = max2(0, b->blocked_until - now),
        .in_flight = b->in_flight,
        .requests = b->requests,
        .throttled = b->throttled,
        .waited = b->waited,
    };
  }
  pthread_mutex_unlock(&rl->lock);
  return b ? 0 : -1;
}
