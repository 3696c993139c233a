/* HTTP against a loopback server: sinks, methods, redirects with and without
 * Authorization, resumed downloads, timeouts, error codes, 429 headers; and against
 * the hostile server: deadlines, and bodies without end. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "fixture.h"
#include "hfscan/http.h"
#include "hfscan/interrupt.h"
#include "hfscan/paced_http.h"
#include "hfscan/ratelimit.h"

static struct fixture fx;
static hf_http_client *client;

/* The server's payload(n), to compute expected digests. */
static unsigned char *payload(size_t n) {
  unsigned char *p = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)((i * 7 + i / 251) % 256);
  return p;
}

static void payload_sha256(size_t n, char hex[HF_SHA256_HEX_SIZE]) {
  unsigned char *p = payload(n);
  hf_sha256_hex(p, n, hex);
  free(p);
}

/* git's blob id of the server's payload(n): sha1("blob <n>\0" + bytes). */
static void payload_git_sha1(size_t n, char hex[41]) {
  unsigned char *p = payload(n), digest[EVP_MAX_MD_SIZE];
  char prefix[32];
  int len = snprintf(prefix, sizeof prefix, "blob %zu", n);
  unsigned int size = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
  EVP_DigestUpdate(ctx, prefix, (size_t)len + 1);
  EVP_DigestUpdate(ctx, p, n);
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  free(p);
  for (unsigned int i = 0; i < size; i++)
    snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static int get(const char *url, hf_http_sink sink, const hf_headers *headers,
               hf_http_response *res) {
  hf_http_request req = {
      .url = url, .sink = sink, .headers = headers, .follow_redirects = 1, .max_resumes = 3};
  return hf_http_perform(client, &req, res);
}

static void test_memory_and_sha256_sinks(void) {
  char url[256], hex[HF_SHA256_HEX_SIZE];
  hf_http_response res;
  snprintf(url, sizeof url, "%s/bytes?n=100000", fx.a);
  CHECK(get(url, HF_SINK_MEMORY, NULL, &res) == 0);
  CHECK(res.status == 200 && res.body_len == 100000 && res.bytes == 100000);
  unsigned char *expected = payload(100000);
  CHECK(res.body && memcmp(res.body, expected, 100000) == 0);
  free(expected);
  hf_http_response_free(&res);

  CHECK(get(url, HF_SINK_SHA256, NULL, &res) == 0);
  payload_sha256(100000, hex);
  CHECK_STR(res.sha256, hex);
  CHECK(res.body == NULL && res.bytes == 100000);
  hf_http_response_free(&res);

  CHECK(get(url, HF_SINK_DISCARD, NULL, &res) == 0);
  CHECK(res.body == NULL && res.bytes == 100000 && res.sha256[0] == '\0');
  hf_http_response_free(&res);
}

static void test_git_blob_sha1_and_cap(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/bytes?n=0", fx.a);
  hf_http_request req = {
      .url = url, .sink = HF_SINK_SHA256, .git_blob_check = 1, .git_blob_size = 0};
  hf_http_response res;
  CHECK(hf_http_perform(client, &req, &res) == 0);
  /* git hash-object of an empty file */
  CHECK_STR(res.git_sha1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  hf_http_response_free(&res);

  /* "abc" would be sha1("blob 3\0abc"); check a payload against a git-style digest
   * computed the same way in the test with sha1 from `git hash-object`'s definition. */
  snprintf(url, sizeof url, "%s/cut?n=70000&key=gitsha", fx.a);
  req.git_blob_size = 70000;
  req.max_resumes = 2;
  req.follow_redirects = 1;
  char want[41];
  payload_git_sha1(70000, want);
  CHECK(hf_http_perform(client, &req, &res) == 0);
  CHECK(res.resumes == 1);
  CHECK_STR(res.git_sha1, want); /* resumed, the blob id is still the whole file's */
  hf_http_response_free(&res);
  snprintf(url, sizeof url, "%s/bytes?n=70000", fx.a);
  CHECK(hf_http_perform(client, &req, &res) == 0);
  CHECK_STR(res.git_sha1, want);
  hf_http_response_free(&res);

  /* A cap on a hashed body. */
  hf_http_request capped = {.url = url, .sink = HF_SINK_SHA256, .max_body = 1000};
  CHECK(hf_http_perform(client, &capped, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_TOO_LARGE);
  hf_http_response_free(&res);
}

/* Without a size, the git blob id takes the one the response announces. */
static void test_git_blob_size_from_the_response(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/bytes?n=70000", fx.a);
  hf_http_request sized = {
      .url = url, .sink = HF_SINK_SHA256, .git_blob_check = 1, .git_blob_size = 70000};
  hf_http_response res;
  CHECK(hf_http_perform(client, &sized, &res) == 0);
  char expected[41];
  payload_git_sha1(70000, expected);
  CHECK_STR(res.git_sha1, expected);
  hf_http_response_free(&res);
  hf_http_request announced = {
      .url = url, .sink = HF_SINK_SHA256, .git_blob_check = 1, .git_blob_size = -1};
  CHECK(hf_http_perform(client, &announced, &res) == 0);
  CHECK_STR(res.git_sha1, expected);
  hf_http_response_free(&res);
  /* An empty body never reaches the body callback; its blob id still takes the
   * size the response announces (0). */
  snprintf(url, sizeof url, "%s/bytes?n=0", fx.a);
  CHECK(hf_http_perform(client, &announced, &res) == 0);
  CHECK_STR(res.git_sha1, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  hf_http_response_free(&res);
}

/* A resume the server refuses (an expired signed URL) leaves the hash part-way in
 * the response; another request, to another URL, continues it with Range and the
 * digest is that of the whole body. */
static void test_partial_hash_continues_elsewhere(void) {
  char url[256], hex[HF_SHA256_HEX_SIZE];
  snprintf(url, sizeof url, "%s/expiring?n=90000&key=partial", fx.a);
  hf_http_request req = {.url = url,
                         .sink = HF_SINK_SHA256,
                         .max_resumes = 3,
                         .git_blob_check = 1,
                         .git_blob_size = -1};
  hf_http_response res;
  CHECK(hf_http_perform(client, &req, &res) == 0);
  CHECK(res.status == 403 && res.partial != NULL && res.partial_bytes == 45000);
  CHECK(res.sha256[0] == '\0');
  hf_hash_pipeline *partial = res.partial;
  uint64_t done = res.partial_bytes;
  res.partial = NULL;
  hf_http_response_free(&res);

  snprintf(url, sizeof url, "%s/cut?n=90000&key=partial-rest", fx.b);
  hf_http_request rest = {.url = url,
                          .sink = HF_SINK_SHA256,
                          .max_resumes = 3,
                          .continue_hash = partial,
                          .continue_offset = done};
  CHECK(hf_http_perform(client, &rest, &res) == 0);
  payload_sha256(90000, hex);
  CHECK(res.status == 206);
  CHECK_STR(res.sha256, hex);
  CHECK(res.partial == NULL && res.bytes == 90000);
  /* The blob id was begun with the size the first response announced. */
  char blob[41];
  payload_git_sha1(90000, blob);
  CHECK_STR(res.git_sha1, blob);
  hf_http_response_free(&res);

  /* A complete transfer, or one that never hashed a byte, leaves no partial. */
  snprintf(url, sizeof url, "%s/status?code=403", fx.a);
  hf_http_request refused = {.url = url, .sink = HF_SINK_SHA256};
  CHECK(hf_http_perform(client, &refused, &res) == 0);
  CHECK(res.status == 403 && res.partial == NULL);
  hf_http_response_free(&res);
}

/* A paced request books its slot (or takes the caller's), and its answer feeds
 * the bucket the RateLimit header names, the booked one freed. */
static void test_paced_requests_feed_the_limiter(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/ratelimited", fx.a);
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_http_request req = {.url = url};
  hf_http_response res;
  double waited = -1;
  CHECK(hf_paced_perform(client, rl, "api", 0, &req, &res, &waited) == 0);
  CHECK(res.status == 429 && waited >= 0);
  hf_http_response_free(&res);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", hf_monotonic_seconds(), &s) == 0);
  CHECK(s.remaining == 0 && s.quota == 500 && s.in_flight == 0 && s.requests == 1);
  CHECK(s.blocked_for > 6 && s.throttled == 1);

  /* Booked by the caller: no second booking, and the answer is counted. */
  snprintf(url, sizeof url, "%s/bytes?n=10", fx.a);
  int booked = 0;
  hf_ratelimit_reserve(rl, "other", hf_monotonic_seconds(), &booked);
  CHECK(booked);
  CHECK(hf_paced_perform(client, rl, "other", 1, &req, &res, &waited) == 0);
  CHECK(res.status == 200 && waited == 0);
  hf_http_response_free(&res);
  CHECK(hf_ratelimit_state(rl, "other", hf_monotonic_seconds(), &s) == 0);
  CHECK(s.requests == 1 && s.in_flight == 0);

  /* Without a limiter it is a plain request. */
  CHECK(hf_paced_perform(client, NULL, NULL, 0, &req, &res, NULL) == 0 && res.status == 200);
  hf_http_response_free(&res);
  hf_ratelimit_release(rl);
}

static void test_memory_cap(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/bytes?n=5000", fx.a);
  hf_http_request req = {.url = url, .sink = HF_SINK_MEMORY, .max_body = 1000};
  hf_http_response res;
  CHECK(hf_http_perform(client, &req, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_TOO_LARGE);
  hf_http_response_free(&res);
}

static void test_head_post_and_headers(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/bytes?n=1234", fx.a);
  hf_http_request head = {.method = "HEAD", .url = url};
  hf_http_response res;
  CHECK(hf_http_perform(client, &head, &res) == 0);
  CHECK(res.status == 200 && res.bytes == 0);
  CHECK_STR(hf_headers_get(&res.headers, "content-length"), "1234");
  hf_http_response_free(&res);

  snprintf(url, sizeof url, "%s/echo", fx.a);
  hf_headers h = {0};
  hf_headers_add(&h, "Content-Type", "application/x-www-form-urlencoded");
  hf_http_request post = {
      .method = "POST", .url = url, .headers = &h, .body = "paths=a&paths=b", .body_len = 15};
  CHECK(hf_http_perform(client, &post, &res) == 0);
  CHECK(res.body && strstr(res.body, "\"method\": \"POST\"") != NULL);
  CHECK(res.body && strstr(res.body, "\"body\": \"paths=a&paths=b\"") != NULL);
  hf_http_response_free(&res);
  hf_headers_clear(&h);

  snprintf(url, sizeof url, "%s/multi", fx.a);
  CHECK(get(url, HF_SINK_MEMORY, NULL, &res) == 0);
  int seen = 0;
  for (size_t i = 0; i < res.headers.count; i++)
    seen += strcmp(res.headers.items[i].name, "X-Multi") == 0;
  CHECK(seen == 2);
  hf_http_response_free(&res);
}

static int sent_authorization(const hf_http_response *res) {
  return res->body && strstr(res->body, "\"Authorization\", \"Bearer hf_secret\"") != NULL;
}

static void test_redirects(void) {
  char url[512];
  hf_headers auth = {0};
  hf_headers_add(&auth, "Authorization", "Bearer hf_secret");
  hf_http_response res;

  /* A relative redirect is followed with the same headers. */
  snprintf(url, sizeof url, "%s/redirect?to=/echo&code=307", fx.a);
  CHECK(get(url, HF_SINK_MEMORY, &auth, &res) == 0);
  CHECK(res.status == 200 && res.redirects == 1 && sent_authorization(&res));
  hf_http_response_free(&res);

  /* To another host: not followed unless asked. */
  snprintf(url, sizeof url, "%s/redirect?to=%s/echo", fx.a, fx.b);
  CHECK(get(url, HF_SINK_MEMORY, &auth, &res) == 0);
  CHECK(res.status == 302 && res.redirects == 0);
  CHECK(hf_headers_get(&res.headers, "location") != NULL);
  hf_http_response_free(&res);

  /* When asked, followed without Authorization. */
  hf_http_request req = {
      .url = url, .headers = &auth, .follow_redirects = 1, .follow_cross_host = 1};
  CHECK(hf_http_perform(client, &req, &res) == 0);
  CHECK(res.status == 200 && res.redirects == 1);
  CHECK(res.body && strstr(res.body, "\"host\": \"127.0.0.2\"") != NULL);
  CHECK(!sent_authorization(&res));
  CHECK(res.body && strstr(res.body, "Authorization") == NULL);
  hf_http_response_free(&res);

  /* A HEAD that stops at the first redirect reports it. */
  snprintf(url, sizeof url, "%s/redirect?to=/echo", fx.a);
  hf_http_request head = {.method = "HEAD", .url = url, .follow_redirects = 0};
  CHECK(hf_http_perform(client, &head, &res) == 0);
  CHECK(res.status == 302);
  CHECK_STR(hf_headers_get(&res.headers, "Location"), "/echo");
  hf_http_response_free(&res);
  hf_headers_clear(&auth);

  /* Never to another protocol (file:// would read local files), even when asked to
   * follow any host; nor a URL of another protocol in the first place. */
  snprintf(url, sizeof url, "%s/redirect?to=file:///etc/passwd", fx.a);
  hf_http_request to_file = {
      .url = url, .sink = HF_SINK_SHA256, .follow_redirects = 1, .follow_cross_host = 1};
  CHECK(hf_http_perform(client, &to_file, &res) == -1);
  CHECK_STR(res.error_code, "http");
  char want[600];
  snprintf(want, sizeof want,
           "%s: only http and https redirects are followed (to file:///etc/passwd)", url);
  CHECK_STR(res.error_message, want);
  CHECK(res.redirects == 0 && res.sha256[0] == '\0');
  hf_http_response_free(&res);
  hf_http_request file = {.url = "file:///etc/passwd", .follow_redirects = 1};
  CHECK(hf_http_perform(client, &file, &res) == -1);
  CHECK_STR(res.error_message,
            "file:///etc/passwd: Protocol \"file\" not supported or disabled in libcurl");
  CHECK(res.body == NULL || strstr(res.body, "root:") == NULL);
  hf_http_response_free(&res);

  CHECK(hf_http_redirect_refusal("https://hub/x", "https://cdn/y") == NULL);
  CHECK(hf_http_redirect_refusal("http://hub/x", "HTTPS://cdn/y") == NULL);
  CHECK(hf_http_redirect_refusal("http://hub/x", "http://cdn/y") == NULL);
  CHECK_STR(hf_http_redirect_refusal("https://hub/x", "http://cdn/y"),
            "a redirect from https to plain http is not followed");
  CHECK_STR(hf_http_redirect_refusal("https://hub/x", "ftp://cdn/y"),
            "only http and https redirects are followed");
  CHECK_STR(hf_http_redirect_refusal("https://hub/x", "dict://cdn/y"),
            "only http and https redirects are followed");

  CHECK(hf_http_same_origin("http://a:80/x", "http://a/y"));
  CHECK(!hf_http_same_origin("http://a/x", "https://a/x"));
  CHECK(!hf_http_same_origin("http://127.0.0.1:5/x", "http://127.0.0.2:5/x"));
}

static void test_resumed_download(void) {
  char url[512], hex[HF_SHA256_HEX_SIZE];
  hf_http_response res;
  payload_sha256(300000, hex);

  snprintf(url, sizeof url, "%s/cut?n=300000&key=resume", fx.a);
  CHECK(get(url, HF_SINK_SHA256, NULL, &res) == 0);
  CHECK(res.status == 206 && res.resumes == 1 && res.bytes == 300000);
  CHECK_STR(res.sha256, hex);
  hf_http_response_free(&res);

  /* Resumed through a redirect to another host: the resume goes to that host. */
  snprintf(url, sizeof url, "%s/redirect?to=%s/cut%%3Fn%%3D300000%%26key%%3Dcdn", fx.a, fx.b);
  hf_http_request req = {.url = url,
                         .sink = HF_SINK_SHA256,
                         .follow_redirects = 1,
                         .follow_cross_host = 1,
                         .max_resumes = 2};
  CHECK(hf_http_perform(client, &req, &res) == 0);
  CHECK(res.resumes == 1);
  CHECK_STR(res.sha256, hex);
  hf_http_response_free(&res);

  /* A server that answers 200 to the Range request restarts the hash cleanly. */
  snprintf(url, sizeof url, "%s/cut200?n=300000&key=restart", fx.a);
  CHECK(get(url, HF_SINK_SHA256, NULL, &res) == 0);
  CHECK(res.status == 200 && res.resumes == 1 && res.bytes == 300000);
  CHECK_STR(res.sha256, hex);
  hf_http_response_free(&res);

  /* A 206 from the wrong offset is an error, never a wrong hash. */
  snprintf(url, sizeof url, "%s/badrange?n=300000&key=bad", fx.a);
  CHECK(get(url, HF_SINK_SHA256, NULL, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_HTTP);
  CHECK(res.sha256[0] == '\0');
  hf_http_response_free(&res);

  /* Without resumes the cut is reported as a reset. */
  snprintf(url, sizeof url, "%s/cut?n=300000&key=noresume", fx.a);
  hf_http_request once = {.url = url, .sink = HF_SINK_SHA256, .max_resumes = 0};
  CHECK(hf_http_perform(client, &once, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_RESET);
  hf_http_response_free(&res);
}

/* "<url>: <why>", the form of every error message. */
static void check_message(const hf_http_response *res, const char *url, const char *why) {
  char want[600];
  snprintf(want, sizeof want, "%s: %s", url, why);
  CHECK_STR(res->error_message, want);
}

static void test_failures(void) {
  char url[256];
  hf_http_response res;
  snprintf(url, sizeof url, "%s/stall?after=0&s=4", fx.a);
  hf_http_request stall = {.url = url, .low_speed_timeout_s = 1};
  CHECK(hf_http_perform(client, &stall, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  check_message(&res, url, "slower than 1024 bytes/s for 1 s");
  hf_http_response_free(&res);

  snprintf(url, sizeof url, "%s/slowheaders?s=3", fx.a);
  hf_http_request slow = {.url = url, .total_timeout_ms = 500};
  CHECK(hf_http_perform(client, &slow, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  check_message(&res, url, "not done within the request's deadline of 0.5 s");
  hf_http_response_free(&res);

  hf_http_request refused = {.url = "http://127.0.0.1:1/"};
  CHECK(hf_http_perform(client, &refused, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_CONNECT);
  hf_http_response_free(&res);

  /* An HTTP error status is a response, with its body kept for the message. */
  snprintf(url, sizeof url, "%s/status?code=404&error=EntryNotFound", fx.a);
  CHECK(get(url, HF_SINK_SHA256, NULL, &res) == 0);
  CHECK(res.status == 404 && res.sha256[0] == '\0');
  CHECK_STR(res.body, "{\"error\":\"Entry not found\"}");
  CHECK_STR(hf_headers_get(&res.headers, "x-error-code"), "EntryNotFound");
  hf_http_response_free(&res);
}

static void test_429_feeds_the_limiter(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/ratelimited", fx.a);
  hf_http_response res;
  CHECK(get(url, HF_SINK_MEMORY, NULL, &res) == 0);
  CHECK(res.status == 429);
  hf_ratelimit *rl = hf_ratelimit_new();
  hf_ratelimit_reserve(rl, "api", 0, NULL);
  hf_ratelimit_observe(rl, "api", res.status, &res.headers, 0);
  hf_bucket_state s;
  CHECK(hf_ratelimit_state(rl, "api", 0, &s) == 0);
  CHECK(s.quota == 500 && s.window == 300 && s.remaining == 0 && s.throttled == 1);
  CHECK_NEAR(s.blocked_for, 7, 1e-6);
  CHECK_NEAR(hf_ratelimit_reserve(rl, "api", 0, NULL), 7, 1e-6);
  hf_ratelimit_release(rl);
  hf_http_response_free(&res);
}

/* A server that takes the connection and never answers costs the time to first
 * byte, not curl's minutes. (The upper bounds on times are loose: a loaded or
 * sanitized build is slow; what they rule out is waiting for minutes.) */
static void test_no_answer(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/silent?tag=first-byte", fx.hostile);
  hf_http_request req = {.url = url, .first_byte_timeout_ms = 300};
  hf_http_response res;
  double start = hf_monotonic_seconds();
  CHECK(hf_http_perform(client, &req, &res) == -1);
  double took = hf_monotonic_seconds() - start;
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  check_message(&res, url, "no answer within 0.3 s");
  CHECK(took >= 0.29 && took < 5);
  hf_http_response_free(&res);
}

/* A body that drips is stopped at the end of the first window below the minimum rate. */
static void test_drip_is_stopped(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/drip?n=100000&ms=20", fx.hostile);
  hf_http_request drip = {.url = url, .low_speed_timeout_s = 1};
  hf_http_response res;
  double start = hf_monotonic_seconds();
  CHECK(hf_http_perform(client, &drip, &res) == -1);
  double took = hf_monotonic_seconds() - start;
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  check_message(&res, url, "slower than 1024 bytes/s for 1 s");
  CHECK(took >= 0.99 && took < 5);
  CHECK(res.bytes > 0 && res.bytes <= 60); /* one byte per 20 ms for a second */
  hf_http_response_free(&res);
}

/* A slow body that keeps the minimum rate goes on past the window. */
static void test_steady_rate_outlasts_a_window(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/drip?n=40&ms=30", fx.hostile);
  hf_http_request steady = {.url = url, .low_speed_timeout_s = 1, .min_bytes_per_s = 10};
  hf_http_response res;
  double start = hf_monotonic_seconds();
  CHECK(hf_http_perform(client, &steady, &res) == 0);
  CHECK(res.status == 200 && res.body_len == 40);
  CHECK(hf_monotonic_seconds() - start > 1.1); /* it did outlast a window */
  hf_http_response_free(&res);
}

/* The whole request's deadline counts from its start: a server that drops the
 * transfer every 100 ms wins no fresh time with each resume. */
static void test_deadline_spans_resumes(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/drip?n=100000&ms=10&cut=10", fx.hostile);
  hf_http_request req = {.url = url,
                         .sink = HF_SINK_SHA256,
                         .max_resumes = 1000,
                         .min_bytes_per_s = 1,
                         .total_timeout_ms = 500};
  hf_http_response res;
  double start = hf_monotonic_seconds();
  CHECK(hf_http_perform(client, &req, &res) == -1);
  double took = hf_monotonic_seconds() - start;
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  check_message(&res, url, "not done within the request's deadline of 0.5 s");
  CHECK(res.resumes >= 2 && res.resumes <= 6);
  CHECK(took >= 0.49 && took < 5);
  CHECK(res.sha256[0] == '\0');
  hf_http_response_free(&res);
}

/* The deadline scales with the size: a minute at least, or the time at 256 KiB/s. */
static void test_total_budget(void) {
  CHECK(hf_http_total_budget_ms(0, 0) == 60000);
  CHECK(hf_http_total_budget_ms(0, 1024) == 60000);
  CHECK(hf_http_total_budget_ms(0, (uint64_t)120 << 18) == 120000);
  CHECK(hf_http_total_budget_ms(0, (uint64_t)1 << 40) == 4194304000LL);
  CHECK(hf_http_total_budget_ms(500, (uint64_t)1 << 40) == 500);
  CHECK(hf_http_total_budget_ms(0, UINT64_MAX) == 1000000000000000LL);
}

/* A 500 whose body never ends is read up to the cap, then the transfer stops; the
 * answer is still the 500, whatever the sink. */
static void test_endless_error_body(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/endless?code=500&chunked=1", fx.hostile);
  hf_http_sink sinks[] = {HF_SINK_MEMORY, HF_SINK_SHA256, HF_SINK_DISCARD};
  for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++) {
    hf_http_request req = {.url = url, .sink = sinks[i], .max_resumes = 3};
    hf_http_response res;
    double start = hf_monotonic_seconds();
    CHECK(hf_http_perform(client, &req, &res) == 0);
    CHECK(hf_monotonic_seconds() - start < 1);
    CHECK(res.status == 500 && res.error_code == NULL && res.resumes == 0);
    CHECK(res.body_len == 65536 && res.bytes == 65536 && res.body[65535] == 'x');
    CHECK(res.sha256[0] == '\0' && res.partial == NULL);
    hf_http_response_free(&res);
  }
}

/* A 302 announcing a 1 TB body: followed as any redirect, or reported with its
 * Location and the first 64 KiB of its body. */
static void test_endless_redirect_body(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/endless?code=302&location=/conn", fx.hostile);
  hf_http_request follow = {.url = url, .follow_redirects = 1};
  hf_http_response res;
  CHECK(hf_http_perform(client, &follow, &res) == 0);
  CHECK(res.status == 200 && res.redirects == 1);
  CHECK_STR(res.body, "ok");
  hf_http_response_free(&res);

  hf_http_request stay = {.url = url};
  CHECK(hf_http_perform(client, &stay, &res) == 0);
  CHECK(res.status == 302 && res.redirects == 0 && res.body_len == 65536);
  CHECK_STR(hf_headers_get(&res.headers, "Location"), "/conn");
  hf_http_response_free(&res);
}

static long connection_of(const char *url) {
  hf_http_request req = {.url = url, .first_byte_timeout_ms = 1000};
  hf_http_response res;
  long id = -1;
  if (hf_http_perform(client, &req, &res) == 0 && hf_headers_get(&res.headers, "X-Connection"))
    id = strtol(hf_headers_get(&res.headers, "X-Connection"), NULL, 10);
  hf_http_response_free(&res);
  return id;
}

/* A transfer stopped part-way leaves its connection closed: the next request on a
 * reused one would read the rest of the endless body as its answer, or wait on
 * the silent server. */
static void test_stopped_connection_is_not_reused(void) {
  char conn[256], endless[256], silent[256];
  snprintf(conn, sizeof conn, "%s/conn", fx.hostile);
  snprintf(endless, sizeof endless, "%s/endless?code=500", fx.hostile);
  snprintf(silent, sizeof silent, "%s/silent?tag=reuse", fx.hostile);
  long first = connection_of(conn);
  CHECK(first > 0 && connection_of(conn) == first); /* kept alive when all went well */
  long stopped = connection_of(endless);            /* stopped at the body cap */
  CHECK(stopped > 0);
  long next = connection_of(conn);
  CHECK(next > 0 && next != stopped);
  CHECK(connection_of(conn) == next);

  /* The silent request goes on the kept connection, which the deadline then ends. */
  hf_http_request wait = {.url = silent, .first_byte_timeout_ms = 100};
  hf_http_response res;
  CHECK(hf_http_perform(client, &wait, &res) == -1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_TIMEOUT);
  hf_http_response_free(&res);
  long after = connection_of(conn);
  CHECK(after > next);
}

static void *interrupt_once_asked(void *prefix) {
  if (fixture_wait_request(prefix, 5) == 0)
    hf_interrupt_request();
  return NULL;
}

/* Ctrl-C stops a request that waits for an answer, long before its deadlines. */
static void test_interrupt_while_waiting(void) {
  char url[256];
  snprintf(url, sizeof url, "%s/silent?tag=interrupt", fx.hostile);
  pthread_t thread;
  pthread_create(&thread, NULL, interrupt_once_asked, "/silent?tag=interrupt");
  hf_http_request req = {.url = url, .first_byte_timeout_ms = 5000};
  hf_http_response res;
  double start = hf_monotonic_seconds();
  CHECK(hf_http_perform(client, &req, &res) == -1);
  CHECK(hf_monotonic_seconds() - start < 1);
  CHECK_STR(res.error_code, HF_HTTP_ERR_INTERRUPTED);
  check_message(&res, url, "interrupted");
  hf_http_response_free(&res);
  pthread_join(thread, NULL);
  hf_interrupt_clear();
}

int main(void) {
  hf_http_global_init();
  if (fixture_start(&fx) != 0 || fixture_start_hostile(&fx) != 0) {
    fprintf(stderr, "cannot start the fixture server\n");
    return 1;
  }
  client = hf_http_client_new("hfscan-test");
  test_memory_and_sha256_sinks();
  test_memory_cap();
  test_git_blob_sha1_and_cap();
  test_git_blob_size_from_the_response();
  test_partial_hash_continues_elsewhere();
  test_paced_requests_feed_the_limiter();
  test_head_post_and_headers();
  test_redirects();
  test_resumed_download();
  test_failures();
  test_429_feeds_the_limiter();
  test_no_answer();
  test_drip_is_stopped();
  test_steady_rate_outlasts_a_window();
  test_deadline_spans_resumes();
  test_total_budget();
  test_endless_error_body();
  test_endless_redirect_body();
  test_stopped_connection_is_not_reused();
  test_interrupt_while_waiting();
  hf_http_client_free(client);
  return check_report("test_http");
}
