/* Rate limiter on a virtual clock: spacing, learnt quotas, exhausted windows,
 * spreading the tail of a quota, 429s, and the header parsers. */
#include "check.h"
#include "hfscan/ratelimit.h"

/* Reserves and, like a caller, asks again at the returned time until booked. */
/* Books the next request of bucket at or after now and sends it at once; returns
 * its start time. */
static double R(hf_ratelimit *rl, const char *bucket, double now) {
  for (int i = 0; i < 10; i++) {
    int booked = 0;
    double t = hf_ratelimit_reserve(rl, bucket, now, &booked);
    if (booked) {
      hf_ratelimit_sending(rl, bucket, t);
      return t;
    }
    now = t;
  }
  return -1;
}

static hf_headers headers_of(const char *ratelimit, const char *policy, const char *retry) {
  hf_headers h = {0};
  if (ratelimit)
    hf_headers_add(&h, "ratelimit", ratelimit); /* HTTP/2 delivers lower-case names */
  if (policy)
    hf_headers_add(&h, "RateLimit-Policy", policy);
  if (retry)
    hf_headers_add(&h, "Retry-After", retry);
  return h;
}

/* Feeds the limiter one answer with these headers (NULL: absent). */
static void answer(hf_ratelimit *rl, const char *bucket, long status, const char *ratelimit,
                   const char *policy, const char *retry, double now) {
  hf_headers h = headers_of(ratelimit, policy, retry);
  hf_ratelimit_observe(rl, bucket, status, &h, now);
  hf_headers_clear(&h);
}

/* One request of a bucket answered 429 with these headers, at time 0: the
 * bucket's state after it. */
static hf_bucket_state throttled(hf_ratelimit *rl, const char *bucket, const char *ratelimit,
                                 const char *policy, const char *retry) {
  hf_bucket_state s;
  R(rl, bucket, 0);
  answer(rl, bucket, 429, ratelimit, policy, retry, 0);
  CHECK(hf_ratelimit_state(rl, bucket, 0, &s) == 0);
  return s;
}

static void test_parsers(void) {
  char bucket[32];
  long a = 0, b = 0;
  CHECK(hf_ratelimit_parse_header("\"api\";r=494;t=201", bucket, sizeof bucket, &a, &b) == 0);
  CHECK_STR(bucket, "api");
  CHECK(a == 494 && b == 201);
  CHECK(hf_ratelimit_parse_header("\"resolvers\" ; r = 4992 ; t = 9", bucket, sizeof bucket, &a,
                                  &b) == 0);
  CHECK_STR(bucket, "resolvers");
  CHECK(a == 4992 && b == 9);
  CHECK(hf_ratelimit_parse_header("garbage", bucket, sizeof bucket, &a, &b) != 0);
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"api\";q=500;w=300", bucket, sizeof bucket, &a,
                                  &b) == 0);
  CHECK_STR(bucket, "api");
  CHECK(a == 500 && b == 300);
  CHECK(hf_ratelimit_parse_retry_after("7", 0) == 7);
  CHECK(hf_ratelimit_parse_retry_after("soon", 0) == -1);
  /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 */
  CHECK(hf_ratelimit_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111770) == 7);
}

/* Only what lies outside quotes is syntax: a bucket may be named "q=5x". */
static void test_parameters_count_only_outside_quotes(void) {
  char bucket[32];
  long a = 0, b = 0;
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"q=5x\";q=1000;w=300", bucket, sizeof bucket,
                                  &a, &b) == 0);
  CHECK_STR(bucket, "q=5x");
  CHECK(a == 1000 && b == 300);
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"a;q=1;w=1,\";q=7;w=60", bucket, sizeof bucket,
                                  &a, &b) == 0);
  CHECK_STR(bucket, "a;q=1;w=1,");
  CHECK(a == 7 && b == 60);
  CHECK(hf_ratelimit_parse_header("\"r=1;t=2\";r=5;t=6", bucket, sizeof bucket, &a, &b) == 0);
  CHECK_STR(bucket, "r=1;t=2");
  CHECK(a == 5 && b == 6);
  /* An escaped quote stays inside the name. */
  CHECK(hf_ratelimit_parse_header("\"a\\\";r=9\";r=1;t=2", bucket, sizeof bucket, &a, &b) == 0);
  CHECK_STR(bucket, "a\";r=9");
  CHECK(a == 1 && b == 2);
  /* Parameters only inside quotes, or a quote left open: nothing to read. */
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"q=5;w=300\"", bucket, sizeof bucket, &a,
                                  &b) != 0);
  CHECK(hf_ratelimit_parse_header("\"api;r=1;t=2", bucket, sizeof bucket, &a, &b) != 0);
  /* Only the first member of a list: a second one does not complete it. */
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"api\";q=5, \"other\";w=300", bucket,
                                  sizeof bucket, &a, &b) != 0);
}

/* Values that would stall the scan or overflow are refused, as if the field were absent. */
static void test_absurd_values_are_refused(void) {
  char bucket[32];
  long a = 0, b = 0;
  const char *refused_headers[] = {
      "\"api\";r=-1;t=10",
      "\"api\";r=5;t=-10",
      "\"api\";r=0;t=999999999",
      "\"api\";r=0;t=86401",
      "\"api\";r=0;t=9223372036854775807",  /* LONG_MAX: t + 1 would overflow */
      "\"api\";r=0;t=99999999999999999999", /* beyond a long */
      "\"api\";r=1000000001;t=10",
      "\"api\";r=1.5;t=10",
      "\"api\";r=;t=10",
      "\"\";r=1;t=10",
  };
  for (size_t i = 0; i < sizeof refused_headers / sizeof *refused_headers; i++)
    CHECK(hf_ratelimit_parse_header(refused_headers[i], bucket, sizeof bucket, &a, &b) != 0);
  const char *refused_policies[] = {
      "\"fixed window\";\"api\";q=0;w=300",
      "\"fixed window\";\"api\";q=500;w=0",
      "\"fixed window\";\"api\";q=-500;w=300",
      "\"fixed window\";\"api\";q=500;w=-300",
      "\"fixed window\";\"api\";q=500;w=86401",
      "\"fixed window\";\"api\";q=500;w=9223372036854775807",
  };
  for (size_t i = 0; i < sizeof refused_policies / sizeof *refused_policies; i++)
    CHECK(hf_ratelimit_parse_policy(refused_policies[i], bucket, sizeof bucket, &a, &b) != 0);
  /* The edges themselves are still believed. */
  CHECK(hf_ratelimit_parse_header("\"api\";r=0;t=86400", bucket, sizeof bucket, &a, &b) == 0);
  CHECK(a == 0 && b == 86400);
  CHECK(hf_ratelimit_parse_header("\"api\";r=0;t=0", bucket, sizeof bucket, &a, &b) == 0);
  CHECK(a == 0 && b == 0);
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"api\";q=1;w=86400", bucket, sizeof bucket, &a,
                                  &b) == 0);
  CHECK(a == 1 && b == 86400);
}

/* The Hub's own fields, in every layout seen, read as they always did. */
static void test_valid_fields_parse_as_before(void) {
  char bucket[32];
  long a = 0, b = 0;
  CHECK(hf_ratelimit_parse_policy("\"fixed window\" ; \"resolvers\" ; q = 3000 ; w = 300", bucket,
                                  sizeof bucket, &a, &b) == 0);
  CHECK_STR(bucket, "resolvers");
  CHECK(a == 3000 && b == 300);
  CHECK(hf_ratelimit_parse_policy("\"fixed window\";\"api\";q=10000;w=300", bucket, sizeof bucket,
                                  &a, &b) == 0);
  CHECK(a == 10000 && b == 300);
  CHECK(hf_ratelimit_parse_header("\"api\";r=985;t=9", bucket, sizeof bucket, &a, &b) == 0);
  CHECK_STR(bucket, "api");
  CHECK(a == 985 && b == 9);
  /* Parameters we do not use are passed over; the first of a repeated one wins. */
  CHECK(hf_ratelimit_parse_header("\"api\";pk=:abc=:;r=3;t=4;r=7", bucket, sizeof bucket, &a, &b) ==
        0);
  CHECK(a == 3 && b == 4);
}

/* A hostile or broken Hub can neither stall a bucket for good nor go unnoticed. */
static void test_server_waits_are_bounded(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  const char *policy = "\"fixed window\";\"api\";q=500;w=300";
  char latest[160];
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 0);
  CHECK_STR(latest, "");

  /* A reset far beyond the window: believed up to the window. */
  hf_bucket_state s = throttled(rl, "api", "\"api\";r=0;t=3600", policy, NULL);
  CHECK_NEAR(s.reset_in, 300, 1e-9);
  CHECK_NEAR(s.blocked_for, 300, 1e-9);
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 1);
  CHECK_STR(latest, "RateLimit reset of 3600 s in bucket \"api\" cut to 300 s");

  /* Without a known window, up to 900 s; a Retry-After likewise. */
  s = throttled(rl, "resolvers", "\"resolvers\";r=0;t=7200", NULL, NULL);
  CHECK_NEAR(s.blocked_for, 900, 1e-9);
  s = throttled(rl, "pages", NULL, NULL, "100000");
  CHECK_NEAR(s.blocked_for, 900, 1e-9);
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 3);
  CHECK_STR(latest, "Retry-After of 100000 s in bucket \"pages\" cut to 900 s");

  /* An absurd reset is refused: the 429 is one of unknown cause, a short pause. */
  s = throttled(rl, "other", "\"other\";r=0;t=999999999", NULL, NULL);
  CHECK_NEAR(s.blocked_for, 1, 1e-9);
  CHECK(s.reset_in == -1 && s.remaining == -1);
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 4);
  CHECK_STR(latest, "refused RateLimit: \"other\";r=0;t=999999999");
  hf_ratelimit_release(rl);
}

/* q=0 would leave every window spent from its start: the policy is ignored. */
static void test_a_zero_quota_does_not_close_the_bucket(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0);
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\";r=1;t=10", "\"fixed window\";\"api\";q=0;w=10", NULL, 0);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", 0, &s) == 0);
  CHECK(s.quota == -1 && s.window == -1);
  CHECK_NEAR(R(rl, "api", 0), 0, 1e-9);
  CHECK_NEAR(R(rl, "api", 0), 10, 1e-9); /* the told window is spent: its reset */
  CHECK_NEAR(R(rl, "api", 11), 11, 1e-9);
  CHECK_NEAR(R(rl, "api", 11), 11, 1e-9); /* and after it, no window to wait for */
  char latest[160];
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 1);
  CHECK_STR(latest, "refused RateLimit-Policy: \"fixed window\";\"api\";q=0;w=10");
  hf_ratelimit_release(rl);
}

/* Control bytes in a refused field do not reach the log line. */
static void test_suspicious_lines_are_printable(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\"\x1b[2J;r=x", NULL, NULL, 0);
  char latest[160];
  CHECK(hf_ratelimit_suspicious(rl, latest, sizeof latest) == 1);
  CHECK_STR(latest, "refused RateLimit: \"api\"?[2J;r=x");
  hf_ratelimit_release(rl);
}

/* The answer to a bucket's first request, without RateLimit headers. */
static void first_answer(hf_ratelimit *rl, const char *bucket, double now) {
  R(rl, bucket, now);
  hf_ratelimit_observe(rl, bucket, 200, NULL, now);
}

static void test_first_request_probes_alone(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  int booked = -1;
  CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 0, &booked), 0, 1e-9);
  CHECK(booked == 1);
  /* Until it is answered, nobody else starts: its headers will tell the quota. */
  CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 0, &booked), 0.02, 1e-9);
  CHECK(booked == 0);
  hf_ratelimit_observe(rl, "api", 200, NULL, 0.01);
  /* Answered without headers: requests go freely. */
  for (int i = 0; i < 3; i++) {
    CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 0.02, &booked), 0.02, 1e-9);
    CHECK(booked == 1);
  }
  hf_ratelimit_release(rl);
}

static void test_spacing(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spacing(rl, "api", 1.5);
  first_answer(rl, "api", 98.5);
  CHECK_NEAR(R(rl, "api", 100), 100, 1e-9);
  CHECK_NEAR(R(rl, "api", 100), 101.5, 1e-9);
  CHECK_NEAR(R(rl, "api", 100.2), 103, 1e-9);
  CHECK_NEAR(R(rl, "api", 110), 110, 1e-9);
  /* Buckets are independent. */
  CHECK_NEAR(R(rl, "resolvers", 110), 110, 1e-9);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", 110, &s) == 0);
  CHECK(s.requests == 5 && s.in_flight == 4);
  CHECK_NEAR(s.waited, 1.5 + 2.8, 1e-9);
  hf_ratelimit_release(rl);
}

static void test_exhausted_window_waits_for_reset(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0); /* no spreading in this test */
  CHECK_NEAR(R(rl, "api", 0), 0, 1e-9);
  hf_headers h = headers_of("\"api\";r=3;t=10", "\"fixed window\";\"api\";q=5;w=10", NULL);
  hf_ratelimit_observe(rl, "api", 200, &h, 0);
  /* Three left in this window: they go at once, the fourth waits for the reset. */
  CHECK_NEAR(R(rl, "api", 0), 0, 1e-9);
  CHECK_NEAR(R(rl, "api", 0), 0, 1e-9);
  CHECK_NEAR(R(rl, "api", 0), 0, 1e-9);
  CHECK_NEAR(R(rl, "api", 0), 10, 1e-9);
  /* The new window has q=5, one already booked. */
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(R(rl, "api", 10), 10, 1e-9);
  CHECK_NEAR(R(rl, "api", 10), 20, 1e-9);
  hf_bucket_state s;
  hf_ratelimit_state(rl, "api", 10, &s);
  CHECK(s.quota == 5 && s.window == 10);
  hf_headers_clear(&h);
  hf_ratelimit_release(rl);
}

static void test_in_flight_requests_count_against_remaining(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0);
  first_answer(rl, "api", 0);
  for (int i = 0; i < 3; i++)
    R(rl, "api", 0);
  /* One answer says r=2, but two more requests are still out: none left. */
  hf_headers h = headers_of("\"api\";r=2;t=30", NULL, NULL);
  hf_ratelimit_observe(rl, "api", 200, &h, 0);
  CHECK_NEAR(R(rl, "api", 0), 30, 1e-9);
  hf_headers_clear(&h);
  hf_ratelimit_release(rl);
}

/* A request booked near the end of a window but still waiting for a worker when the
 * window resets is sent in the next one, and the Hub counts it there. */
static void test_requests_queued_across_a_reset_count_in_the_new_window(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0);
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\";r=9;t=10", "\"fixed window\";\"api\";q=10;w=10", NULL, 0);
  int booked = 0;
  for (int i = 0; i < 3; i++) /* booked, not yet sent */
    hf_ratelimit_reserve(rl, "api", 9.5, &booked);
  CHECK(booked);
  hf_bucket_state s;
  hf_ratelimit_state(rl, "api", 10.5, &s);
  CHECK(s.remaining == 7); /* 10 in the new window, 3 of them already taken */
  for (int i = 0; i < 3; i++)
    hf_ratelimit_sending(rl, "api", 10.6);
  hf_ratelimit_state(rl, "api", 10.6, &s);
  CHECK(s.remaining == 7);

  /* The same when they go out before anything else looks at the bucket. */
  for (int i = 0; i < 2; i++)
    hf_ratelimit_reserve(rl, "api", 20.5 - 0.1, &booked); /* late in window 2 */
  for (int i = 0; i < 2; i++)
    hf_ratelimit_sending(rl, "api", 20.7); /* sent after its reset */
  hf_ratelimit_state(rl, "api", 20.8, &s);
  CHECK(s.remaining == 8);
  hf_ratelimit_release(rl);
}

static void test_tail_of_quota_is_spread(void) {
  hf_ratelimit *rl = hf_ratelimit_new(); /* spread the last 10% */
  R(rl, "api", 0);
  hf_headers h = headers_of("\"api\";r=10;t=100", "\"fixed window\";\"api\";q=100;w=300", NULL);
  hf_ratelimit_observe(rl, "api", 200, &h, 0);
  /* 10 left for 100 s: one every 10 s rather than all at once. */
  double t = R(rl, "api", 0);
  CHECK_NEAR(t, 10, 1e-9);
  double t2 = R(rl, "api", 0);
  CHECK_NEAR(t2, 10 + 90.0 / 9, 1e-6);
  hf_headers_clear(&h);
  hf_ratelimit_release(rl);
}

static void test_429_blocks_until_reset(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  R(rl, "api", 0);
  hf_headers h = headers_of("\"api\";r=0;t=55", "\"fixed window\";\"api\";q=500;w=300", NULL);
  hf_ratelimit_observe(rl, "api", 429, &h, 5);
  CHECK_NEAR(R(rl, "api", 5), 60, 1e-9);
  hf_bucket_state s;
  hf_ratelimit_state(rl, "api", 5, &s);
  CHECK(s.throttled == 1);
  hf_headers_clear(&h);

  /* A 429 from another quota while the window has room (r > 0) pauses the bucket
   * briefly, not until the window resets, and keeps the count it was given. */
  R(rl, "pages", 0);
  h = headers_of("\"pages\";r=899;t=250", "\"fixed window\";\"pages\";q=1000;w=300", NULL);
  hf_ratelimit_observe(rl, "pages", 429, &h, 2);
  hf_ratelimit_state(rl, "pages", 2, &s);
  CHECK(s.remaining == 899);
  CHECK_NEAR(s.blocked_for, 1.0, 1e-9);
  CHECK_NEAR(R(rl, "pages", 2), 3, 1e-9);
  hf_headers_clear(&h);

  /* Retry-After alone also holds the bucket. */
  R(rl, "resolvers", 0);
  h = headers_of(NULL, NULL, "7");
  hf_ratelimit_observe(rl, "resolvers", 429, &h, 1);
  CHECK_NEAR(R(rl, "resolvers", 1), 8, 1e-9);
  hf_headers_clear(&h);
  hf_ratelimit_release(rl);
}

static void test_answers_out_of_order_only_lower_the_estimate(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0);
  first_answer(rl, "api", 0);
  for (int i = 0; i < 3; i++)
    R(rl, "api", 0);
  hf_headers late = headers_of("\"api\";r=50;t=30", "\"fixed window\";\"api\";q=60;w=60", NULL);
  hf_headers early = headers_of("\"api\";r=48;t=30", "\"fixed window\";\"api\";q=60;w=60", NULL);
  hf_ratelimit_observe(rl, "api", 200, &early, 1); /* the third request's answer first */
  hf_ratelimit_observe(rl, "api", 200, &late, 1);  /* then the first's, with a larger r */
  hf_bucket_state s;
  hf_ratelimit_state(rl, "api", 1, &s);
  /* After the first answer: 48 minus the two still in flight. The later answer
   * (r=50, one in flight) would say 49; the estimate stays at 46. */
  CHECK(s.remaining == 46);
  hf_headers_clear(&late);
  hf_headers_clear(&early);
  hf_ratelimit_release(rl);
}

static void test_header_names_its_own_bucket(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  R(rl, "default", 0);
  hf_headers h = headers_of("\"resolvers\";r=0;t=4", NULL, NULL);
  hf_ratelimit_observe(rl, "default", 200, &h, 0);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "resolvers", 0, &s) == 0);
  CHECK(s.remaining == 0);
  CHECK_NEAR(s.reset_in, 4, 1e-9);
  CHECK(hf_ratelimit_state(rl, "default", 0, &s) == 0 && s.in_flight == 0);
  hf_headers_clear(&h);
  hf_ratelimit_release(rl);
}

/* A request booked in "api" whose answer says the Hub counted it in "resolvers"
 * (the resolve-cache hop, hub-api.md section 12) gives its api slot back. */
static void test_an_answer_of_another_bucket_frees_the_booked_slot(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\";r=9;t=300", "\"fixed window\";\"api\";q=10;w=300", NULL, 0);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", 0, &s) == 0 && s.remaining == 9);
  R(rl, "api", 1);
  CHECK(hf_ratelimit_state(rl, "api", 1, &s) == 0 && s.remaining == 8);
  answer(rl, "api", 200, "\"resolvers\";r=99;t=300", NULL, NULL, 1);
  CHECK(hf_ratelimit_state(rl, "api", 1, &s) == 0 && s.remaining == 9 && s.in_flight == 0);
  CHECK(hf_ratelimit_state(rl, "resolvers", 1, &s) == 0 && s.remaining == 99);
  hf_ratelimit_release(rl);
}

/* Answers to parallel requests come back out of order; while some are in flight
 * the estimate errs low, and once none is, the Hub's smallest r is the count. */
static void test_the_estimate_recovers_once_nothing_is_in_flight(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  const char *policy = "\"fixed window\";\"api\";q=10;w=300";
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\";r=9;t=300", policy, NULL, 0);
  for (int i = 0; i < 3; i++)
    R(rl, "api", 1);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", 1, &s) == 0 && s.remaining == 6 && s.in_flight == 3);
  answer(rl, "api", 200, "\"api\";r=6;t=299", policy, NULL, 1);
  answer(rl, "api", 200, "\"api\";r=7;t=299", policy, NULL, 1);
  CHECK(hf_ratelimit_state(rl, "api", 1, &s) == 0 && s.remaining == 4 && s.in_flight == 1);
  answer(rl, "api", 200, "\"api\";r=8;t=299", policy, NULL, 1);
  CHECK(hf_ratelimit_state(rl, "api", 1, &s) == 0 && s.remaining == 6 && s.in_flight == 0);
  hf_ratelimit_release(rl);
}

static void test_a_spent_window_books_nothing_ahead(void) {
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_set_spread_fraction(rl, 0);
  R(rl, "api", 0);
  answer(rl, "api", 200, "\"api\";r=1;t=10", "\"fixed window\";\"api\";q=3;w=10", NULL, 0);
  int booked = -1;
  CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 1, &booked), 1, 1e-9); /* the last of window 1 */
  CHECK(booked == 1);
  hf_ratelimit_sending(rl, "api", 1);
  CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 1, &booked), 10, 1e-9); /* come back at 10 */
  CHECK(booked == 0);
  hf_bucket_state s;
  hf_ratelimit_state(rl, "api", 1, &s);
  CHECK(s.in_flight == 1 && s.requests == 2);
  /* A late answer from window 1 (r=0) changes nothing for window 2. */
  answer(rl, "api", 200, "\"api\";r=0;t=9", "\"fixed window\";\"api\";q=3;w=10", NULL, 1.05);
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(R(rl, "api", 10.5), 10.5, 1e-9);
  CHECK_NEAR(R(rl, "api", 10.5), 20, 1e-9);
  hf_ratelimit_release(rl);
}

int main(void) {
  test_first_request_probes_alone();
  test_a_spent_window_books_nothing_ahead();
  test_parsers();
  test_parameters_count_only_outside_quotes();
  test_absurd_values_are_refused();
  test_valid_fields_parse_as_before();
  test_server_waits_are_bounded();
  test_a_zero_quota_does_not_close_the_bucket();
  test_suspicious_lines_are_printable();
  test_spacing();
  test_exhausted_window_waits_for_reset();
  test_in_flight_requests_count_against_remaining();
  test_an_answer_of_another_bucket_frees_the_booked_slot();
  test_the_estimate_recovers_once_nothing_is_in_flight();
  test_tail_of_quota_is_spread();
  test_429_blocks_until_reset();
  test_requests_queued_across_a_reset_count_in_the_new_window();
  test_header_names_its_own_bucket();
  test_answers_out_of_order_only_lower_the_estimate();
  return check_report("test_ratelimit");
}
