/* libFuzzer target: the RateLimit, RateLimit-Policy and Retry-After parsers
 * (src/core/ratelimit.c), and the limiter fed with what they accept. The input is
 * up to three lines: the RateLimit field, the RateLimit-Policy field, Retry-After.
 * Whatever they say, a value parsed is in range, and no wait the server sets runs
 * past the bucket's window (or 900 s without one). */
#include <stdlib.h>
#include <string.h>

#include "hfscan/ratelimit.h"

#define MAX_WINDOW 86400.0 /* the longest window a policy may tell */
#define UNKNOWN_WINDOW_CAP 900.0

/* A small buffer, so that long names are cut short too. */
#define NAME_SIZE 8

static void check_parsers(const char *field) {
  char bucket[NAME_SIZE];
  long a = -1, b = -1;
  if (hf_ratelimit_parse_header(field, bucket, sizeof bucket, &a, &b) == 0)
    if (!bucket[0] || a < 0 || a > 1000000000L || b < 0 || b > 86400)
      abort();
  if (hf_ratelimit_parse_policy(field, bucket, sizeof bucket, &a, &b) == 0)
    if (!bucket[0] || a < 1 || a > 1000000000L || b < 1 || b > 86400)
      abort();
  hf_ratelimit_parse_retry_after(field, 1e9);
}

/* Splits the input at '\n' into at most three NUL-terminated fields. */
static int split_fields(const unsigned char *data, size_t size, char *fields[3]) {
  int n = 0;
  const char *text = (const char *)data, *end = text + size;
  while (n < 3 && text <= end) {
    const char *nl = memchr(text, '\n', (size_t)(end - text));
    size_t len = nl ? (size_t)(nl - text) : (size_t)(end - text);
    fields[n] = malloc(len + 1);
    memcpy(fields[n], text, len);
    fields[n++][len] = '\0';
    if (!nl)
      break;
    text = nl + 1;
  }
  return n;
}

static void check_bounded(hf_ratelimit *rl, const char *bucket, double now) {
  hf_bucket_state s;
  if (hf_ratelimit_state(rl, bucket, now, &s) != 0)
    return;
  double cap = s.window > 0 ? (double)s.window : UNKNOWN_WINDOW_CAP;
  if (s.window > MAX_WINDOW || s.blocked_for > cap + 1e-6 || s.reset_in > cap + 1e-6)
    abort();
  int booked = 0;
  if (hf_ratelimit_reserve(rl, bucket, now, &booked) > now + cap + 1e-6)
    abort();
}

/* One answer, as a 200 or as a 429, to a request booked in "api". */
static void check_limiter(char *fields[3], int n, long status) {
  static const char *names[3] = {"RateLimit", "RateLimit-Policy", "Retry-After"};
  hf_headers headers = {0};
  for (int i = 0; i < n; i++)
    hf_headers_add(&headers, names[i], fields[i]);
  hf_ratelimit *rl = hf_ratelimit_new();
  int booked = 0;
  hf_ratelimit_reserve(rl, "api", 100, &booked);
  hf_ratelimit_sending(rl, "api", 100);
  hf_ratelimit_observe(rl, "api", status, &headers, 100);
  char bucket[32]; /* cut as the limiter cuts bucket names */
  long r, t;
  check_bounded(rl, "api", 100);
  if (n > 0 && hf_ratelimit_parse_header(fields[0], bucket, sizeof bucket, &r, &t) == 0)
    check_bounded(rl, bucket, 100);
  char latest[160];
  long suspicious = hf_ratelimit_suspicious(rl, latest, sizeof latest);
  if (suspicious < 0 || (suspicious == 0) != (latest[0] == '\0'))
    abort();
  hf_ratelimit_release(rl);
  hf_headers_clear(&headers);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *fields[3];
  int n = split_fields(data, size, fields);
  for (int i = 0; i < n; i++)
    check_parsers(fields[i]);
  check_limiter(fields, n, 200);
  check_limiter(fields, n, 429);
  for (int i = 0; i < n; i++)
    free(fields[i]);
  return 0;
}
