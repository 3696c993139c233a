/* HTTP on libcurl. Redirects are followed here rather than by curl, because the
 * rules differ by target: same-host hops keep every header, hops to another host
 * happen only when asked and never carry Authorization.
 *
 * Every exchange has deadlines, checked here between rounds of curl's work so that
 * each says what expired: a time to the status line, a minimum rate after it, and
 * one deadline for the whole request (hops and resumes included). A body that is
 * not a 2xx's is read only up to a small cap, then the transfer stops: a broken
 * or hostile server can neither hold a worker nor fill its memory. */
#include "hfscan/http.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hfscan/hash_pipeline.h"
#include "hfscan/interrupt.h"

#define DEFAULT_MAX_BODY ((size_t)64 << 20)
/* A non-2xx body is read for its message only: this much, then the transfer stops. */
#define ERROR_BODY_CAP ((size_t)64 << 10)
#define MAX_REDIRECTS 10
#define DEFAULT_CONNECT_MS 10000L
#define DEFAULT_FIRST_BYTE_MS 30000L
/* Any CDN or Hub answer runs at MB/s; a server below 1 KiB/s for a whole window
 * is broken (or dripping on purpose), and the Lua layer retries or resumes. */
#define DEFAULT_MIN_BYTES_PER_S 1024L
#define DEFAULT_RATE_WINDOW_S 30L
/* The whole request's deadline: at least a minute, or the time the body takes at
 * 256 KiB/s, far below a working server, so only a crawling one runs out of it. */
#define TOTAL_FLOOR_MS 60000LL
#define TOTAL_BUDGET_BYTES_PER_S (256.0 * 1024)
/* The limits (and Ctrl-C) are checked at least this often. */
#define POLL_MS 100

struct hf_http_client {
  CURL *curl;
  CURLM *multi; /* runs the exchanges; holds the connection cache */
  char *user_agent;
};

/* State of one transfer (one hop, or one resume attempt). */
struct transfer {
  const hf_http_request *req;
  hf_http_response *res;
  hf_hash_pipeline *hasher; /* sha256 sink (and git blob SHA-1 when asked); survives resumes */
  uint64_t hashed;          /* bytes of the file fed to the hasher, earlier requests' included */
  uint64_t resume_offset;   /* first byte asked for with Range, 0 when none */
  int body_started;
  int hashing; /* this body goes through the hasher */
  size_t cap;  /* memory cap for this body */
  int too_large;
  int bad_range;
  int body_capped; /* a non-2xx body reached ERROR_BODY_CAP and the transfer stopped */
  /* The whole request's deadline (hf_monotonic_seconds), shared by hops and resumes. */
  double started;
  double deadline;
  double total_s;
  int deadline_from_answer; /* no size known yet: the first 2xx's Content-Length sets it */
  int deadline_passed;
  /* This exchange (one hop, or one resume attempt). */
  double exchange_start;
  int answered;            /* its status line arrived */
  uint64_t arrived;        /* header and body bytes so far */
  double window_start;     /* the current window of the minimum rate */
  uint64_t window_arrived; /* arrived at its start */
  char why[160];           /* why it was stopped here (a limit, Ctrl-C); "" otherwise */
};

int hf_http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

hf_http_client *hf_http_client_new(const char *user_agent) {
  hf_http_client *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->curl = curl_easy_init();
  c->multi = curl_multi_init();
  c->user_agent = strdup(user_agent ? user_agent : "hfscan");
  if (!c->curl || !c->multi || !c->user_agent) {
    hf_http_client_free(c);
    return NULL;
  }
  return c;
}

void hf_http_client_free(hf_http_client *c) {
  if (!c)
    return;
  if (c->multi)
    curl_multi_cleanup(c->multi);
  if (c->curl)
    curl_easy_cleanup(c->curl);
  free(c->user_agent);
  free(c);
}

void hf_http_response_free(hf_http_response *res) {
  hf_hash_pipeline_free(res->partial);
  hf_headers_clear(&res->headers);
  free(res->effective_url);
  free(res->body);
  memset(res, 0, sizeof *res);
}

static int is_success(long status) { return status >= 200 && status < 300; }

/* The body size a fresh 2xx announces, -1 when it does not say. */
static long long announced_size(const hf_headers *h) {
  const char *cl = hf_headers_get(h, "Content-Length");
  char *end;
  long long n = cl ? strtoll(cl, &end, 10) : -1;
  return cl && end != cl && *end == '\0' && n >= 0 ? n : -1;
}

/* The size a git blob id is computed for: the request's, or else the one the
 * response announces (a cached HEAD may not have said it, hub-api.md section 12;
 * the GET does). -1 without a git blob check, or before any response. */
static long long git_blob_size(const struct transfer *t) {
  if (!t->req->git_blob_check)
    return -1;
  return t->req->git_blob_size >= 0 ? t->req->git_blob_size : announced_size(&t->res->headers);
}

static int git_blob_unsized(const struct transfer *t) {
  return t->req->git_blob_check && t->req->git_blob_size < 0;
}

/* Starts the sink's digests over; git names a blob by sha1("blob <size>\0" +
 * content), which proves a download of a plain git file is the listed file. */
static void restart_hash(struct transfer *t) {
  t->hashed = 0;
  if (t->hasher)
    hf_hash_pipeline_restart(t->hasher, git_blob_size(t));
}

long long hf_http_total_budget_ms(long total_timeout_ms, uint64_t expected_size) {
  if (total_timeout_ms > 0)
    return total_timeout_ms;
  double scaled = (double)expected_size / TOTAL_BUDGET_BYTES_PER_S * 1000;
  if (scaled > 1e15) /* some thirty thousand years: keeps the cast defined */
    scaled = 1e15;
  return scaled > TOTAL_FLOOR_MS ? (long long)scaled : TOTAL_FLOOR_MS;
}

static void set_deadline(struct transfer *t, long long budget_ms) {
  t->total_s = (double)budget_ms / 1000;
  t->deadline = t->started + t->total_s;
}

/* The size the whole request's deadline is scaled to: the caller's, else a bound it
 * set (the git blob size, a body cap); 0 when nothing says. */
static uint64_t size_for_deadline(const hf_http_request *req) {
  uint64_t size = 0;
  if (req->expected_size > 0)
    size = req->expected_size;
  else if (req->git_blob_check && req->git_blob_size > 0)
    size = (uint64_t)req->git_blob_size;
  else if (req->max_body > 0)
    size = req->max_body;
  else if (req->sink == HF_SINK_MEMORY)
    size = DEFAULT_MAX_BODY;
  /* A continued hash asks only for the rest. */
  return req->continue_hash && size > req->continue_offset ? size - req->continue_offset : size;
}

/* Counts from hf_http_perform's start: a server that keeps dropping the transfer
 * wins no fresh time with each resume. */
static void start_deadline(struct transfer *t) {
  const hf_http_request *req = t->req;
  uint64_t size = size_for_deadline(req);
  t->started = hf_monotonic_seconds();
  t->deadline_from_answer = req->total_timeout_ms <= 0 && size == 0;
  set_deadline(t, hf_http_total_budget_ms(req->total_timeout_ms, size));
}

/* A request that knew no size takes the one its first 2xx announces: a hashed
 * download of unknown size must not be cut at the floor. */
static void deadline_from_answer(struct transfer *t) {
  if (!t->deadline_from_answer || !is_success(t->res->status))
    return;
  t->deadline_from_answer = 0;
  long long size = announced_size(&t->res->headers);
  if (size > 0)
    set_deadline(t, hf_http_total_budget_ms(0, (uint64_t)size));
}

/* A new response begins (an interim 100, or the real one): start over. The
 * minimum rate counts from the first status line on; the wait for it has its own
 * limit. */
static void begin_response(struct transfer *t, const char *line, size_t len) {
  hf_headers_clear(&t->res->headers);
  const char *sp = memchr(line, ' ', len);
  t->res->status = sp ? strtol(sp + 1, NULL, 10) : 0;
  if (t->answered)
    return;
  t->answered = 1;
  t->window_start = hf_monotonic_seconds();
  t->window_arrived = t->arrived;
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata) {
  struct transfer *t = userdata;
  size_t len = size * n;
  t->arrived += len;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    begin_response(t, line, len);
    return len;
  }
  if (len > 0 && len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
    deadline_from_answer(t); /* the blank line: this response's headers are all in */
    return len;
  }
  if (hf_headers_add_line(&t->res->headers, line, len) != 0)
    return 0;
  return len;
}

/* Reads the first byte position of "Content-Range: bytes N-M/T". */
static int content_range_start(const hf_headers *h, uint64_t *start) {
  const char *cr = hf_headers_get(h, "Content-Range");
  return cr && sscanf(cr, "bytes %" SCNu64 "-", start) == 1 ? 0 : -1;
}

/* Decides, at the first body byte, where this body goes. */
static void start_body(struct transfer *t) {
  hf_http_response *res = t->res;
  t->body_started = 1;
  t->hashing = t->req->sink == HF_SINK_SHA256 && is_success(res->status);
  t->cap = is_success(res->status) ? (t->req->max_body ? t->req->max_body : DEFAULT_MAX_BODY)
                                   : ERROR_BODY_CAP;
  if (!t->hashing)
    return;
  if (t->resume_offset > 0) {
    uint64_t start = 0;
    if (res->status == 206 && content_range_start(&res->headers, &start) == 0 &&
        start == t->resume_offset)
      return; /* continue the same hash */
    if (res->status == 206) {
      t->bad_range = 1;
      return;
    }
    res->bytes = 0; /* a 200 to a Range request is the whole body again */
  } else if (!git_blob_unsized(t)) {
    return; /* the hop began the hash, with all it needs */
  }
  restart_hash(t); /* with the size this response announces, when the request gave none */
}

static int append_memory(struct transfer *t, const char *data, size_t len) {
  hf_http_response *res = t->res;
  char *body = realloc(res->body, res->body_len + len + 1);
  if (!body)
    return -1;
  memcpy(body + res->body_len, data, len);
  res->body = body;
  res->body_len += len;
  body[res->body_len] = '\0';
  return 0;
}

/* A non-2xx body (an error's message, a redirect's note) is kept up to its cap,
 * whatever the sink; past the cap the short count stops the transfer, since the
 * status and headers are what a caller acts on and a hostile server may send
 * such a body without end. */
static size_t keep_error_body(struct transfer *t, const char *data, size_t len) {
  size_t room = t->cap - t->res->body_len;
  size_t kept = len < room ? len : room;
  if (kept > 0 && append_memory(t, data, kept) != 0)
    return 0;
  t->res->bytes += kept;
  t->body_capped = kept < len;
  return kept;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
  struct transfer *t = userdata;
  size_t len = size * n;
  t->arrived += len;
  if (!t->body_started)
    start_body(t);
  if (t->bad_range)
    return 0;
  if (!is_success(t->res->status))
    return keep_error_body(t, data, len);
  if (t->hashing && t->req->max_body && t->res->bytes + len > t->req->max_body) {
    t->too_large = 1;
    return 0;
  }
  if (t->hashing) {
    hf_hash_pipeline_feed(t->hasher, data, len);
    t->hashed += len;
  } else if (t->req->sink != HF_SINK_DISCARD) {
    if (t->res->body_len + len > t->cap) {
      t->too_large = 1;
      return 0;
    }
    if (append_memory(t, data, len) != 0)
      return 0;
  }
  t->res->bytes += len;
  return len;
}

static struct curl_slist *build_header_list(const hf_headers *h) {
  struct curl_slist *list = NULL;
  for (size_t i = 0; h && i < h->count; i++) {
    size_t len = strlen(h->items[i].name) + strlen(h->items[i].value) + 3;
    char *line = malloc(len);
    if (!line)
      break;
    snprintf(line, len, "%s: %s", h->items[i].name, h->items[i].value);
    struct curl_slist *next = curl_slist_append(list, line);
    free(line);
    if (!next)
      break;
    list = next;
  }
  return list;
}

static const char *classify(CURLcode rc, const struct transfer *t) {
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return HF_HTTP_ERR_DNS;
  case CURLE_COULDNT_CONNECT:
    return HF_HTTP_ERR_CONNECT;
  case CURLE_OPERATION_TIMEDOUT:
    return HF_HTTP_ERR_TIMEOUT;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2_STREAM:
    return HF_HTTP_ERR_RESET;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
    return HF_HTTP_ERR_TLS;
  case CURLE_ABORTED_BY_CALLBACK:
    return HF_HTTP_ERR_INTERRUPTED;
  case CURLE_WRITE_ERROR:
    return t->too_large ? HF_HTTP_ERR_TOO_LARGE : HF_HTTP_ERR_HTTP;
  default:
    return HF_HTTP_ERR_HTTP;
  }
}

static void set_method(CURL *curl, const char *method, const char *body, size_t body_len) {
  if (strcasecmp(method, "HEAD") == 0) {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (strcasecmp(method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
  } else if (strcasecmp(method, "GET") != 0) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body)
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (body)
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  }
}

__attribute__((format(printf, 3, 4))) static CURLcode stop(struct transfer *t, CURLcode code,
                                                           const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->why, sizeof t->why, fmt, ap);
  va_end(ap);
  return code;
}

static long first_byte_ms(const hf_http_request *req) {
  return req->first_byte_timeout_ms > 0 ? req->first_byte_timeout_ms : DEFAULT_FIRST_BYTE_MS;
}

/* The minimum rate holds over back-to-back windows from the status line on: a
 * stall is caught within two windows, and no history need be kept. */
static CURLcode check_rate(struct transfer *t, double now) {
  const hf_http_request *req = t->req;
  long rate = req->min_bytes_per_s > 0 ? req->min_bytes_per_s : DEFAULT_MIN_BYTES_PER_S;
  long window = req->low_speed_timeout_s > 0 ? req->low_speed_timeout_s : DEFAULT_RATE_WINDOW_S;
  if (now - t->window_start < (double)window)
    return CURLE_OK;
  if (t->arrived - t->window_arrived < (uint64_t)rate * (uint64_t)window)
    return stop(t, CURLE_OPERATION_TIMEDOUT, "slower than %ld bytes/s for %ld s", rate, window);
  t->window_start = now;
  t->window_arrived = t->arrived;
  return CURLE_OK;
}

/* Whether the exchange must stop now: Ctrl-C, or a limit ran out. */
static CURLcode check_limits(struct transfer *t) {
  double now = hf_monotonic_seconds();
  if (hf_interrupt_requested())
    return stop(t, CURLE_ABORTED_BY_CALLBACK, "interrupted");
  if (now >= t->deadline) {
    t->deadline_passed = 1;
    return stop(t, CURLE_OPERATION_TIMEDOUT, "not done within the request's deadline of %g s",
                t->total_s);
  }
  if (t->answered)
    return check_rate(t, now);
  double first_byte_s = (double)first_byte_ms(t->req) / 1000;
  if (now - t->exchange_start >= first_byte_s)
    return stop(t, CURLE_OPERATION_TIMEDOUT, "no answer within %g s", first_byte_s);
  return CURLE_OK;
}

/* The result of the exchange curl finished. */
static CURLcode finished_result(CURLM *multi) {
  CURLcode rc = CURLE_FAILED_INIT; /* should curl ever finish without saying how */
  for (;;) {
    int left = 0;
    CURLMsg *msg = curl_multi_info_read(multi, &left);
    if (!msg)
      return rc;
    if (msg->msg == CURLMSG_DONE)
      rc = msg->data.result;
  }
}

/* Runs the exchange set up on the client's handle, checking the limits between
 * rounds: curl's own progress callback can come a second apart while nothing
 * arrives, too coarse for a short deadline. A handle removed mid-transfer has
 * its connection closed by curl, never reused. */
static CURLcode run_exchange(hf_http_client *c, struct transfer *t) {
  if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK)
    return CURLE_FAILED_INIT;
  CURLcode rc;
  for (;;) {
    int running = 0;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
      rc = CURLE_OUT_OF_MEMORY;
      break;
    }
    if (!running) {
      rc = finished_result(c->multi);
      break;
    }
    rc = check_limits(t);
    if (rc != CURLE_OK)
      break;
    curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL);
  }
  curl_multi_remove_handle(c->multi, c->curl);
  /* An error body stopped at its cap is a whole answer: the caller acts on its status. */
  if (rc == CURLE_WRITE_ERROR && t->body_capped)
    rc = CURLE_OK;
  return rc;
}

static void begin_exchange(struct transfer *t) {
  t->exchange_start = hf_monotonic_seconds();
  t->answered = 0;
  t->arrived = t->window_arrived = 0;
  t->body_capped = 0;
  t->why[0] = '\0';
}

/* One request/response exchange, with no redirect following. */
static CURLcode perform_once(hf_http_client *c, struct transfer *t, const char *method,
                             const char *url, const hf_headers *headers, const char *body,
                             size_t body_len, char *errbuf) {
  const hf_http_request *req = t->req;
  CURL *curl = c->curl;
  curl_easy_reset(curl); /* keeps the connection cache */
  struct curl_slist *list = build_header_list(headers);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  /* Only the web: a URL from a script or a server never reaches file:// and the like. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  set_method(curl, method, body, body_len);
  errbuf[0] = '\0';
  begin_exchange(t);
  CURLcode rc = run_exchange(c, t);
  curl_slist_free_all(list);
  return rc;
}

__attribute__((format(printf, 3, 4))) static int fail(hf_http_response *res, const char *code,
                                                      const char *fmt, ...) {
  res->error_code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error_message, sizeof res->error_message, fmt, ap);
  va_end(ap);
  return -1;
}

static int fail_curl(hf_http_response *res, CURLcode rc, const struct transfer *t, const char *url,
                     const char *errbuf) {
  res->error_code = classify(rc, t);
  if (t->too_large)
    snprintf(res->error_message, sizeof res->error_message,
             "%s: response body larger than %zu bytes", url,
             t->hashing ? t->req->max_body : t->cap);
  else if (t->why[0])
    snprintf(res->error_message, sizeof res->error_message, "%s: %s", url, t->why);
  else
    snprintf(res->error_message, sizeof res->error_message, "%s: %s", url,
             errbuf[0] ? errbuf : curl_easy_strerror(rc));
  return -1;
}

/* Resolves a Location against the URL it came from. Caller frees. */
static char *resolve_location(const char *base, const char *location) {
  CURLU *u = curl_url();
  char *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location, CURLU_URLENCODE) == CURLUE_OK)
    curl_url_get(u, CURLUPART_URL, &out, 0);
  curl_url_cleanup(u);
  if (!out)
    return NULL;
  char *copy = strdup(out);
  curl_free(out);
  return copy;
}

static char *url_part(CURLU *u, CURLUPart part) {
  char *v = NULL;
  curl_url_get(u, part, &v, CURLU_DEFAULT_PORT);
  return v;
}

/* The scheme of a URL, lower case ("" when it has none); caller frees with curl_free. */
static char *scheme_of(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_cleanup(u);
  return scheme;
}

/* A server (or a CDN it sends us to) must not lead the client to file://, to other
 * protocols libcurl speaks, or from https down to plain http. */
const char *hf_http_redirect_refusal(const char *from, const char *to) {
  char *from_scheme = scheme_of(from), *to_scheme = scheme_of(to);
  const char *why = NULL;
  if (!to_scheme || (strcasecmp(to_scheme, "http") != 0 && strcasecmp(to_scheme, "https") != 0))
    why = "only http and https redirects are followed";
  else if (from_scheme && strcasecmp(from_scheme, "https") == 0 &&
           strcasecmp(to_scheme, "http") == 0)
    why = "a redirect from https to plain http is not followed";
  curl_free(from_scheme);
  curl_free(to_scheme);
  return why;
}

int hf_http_same_origin(const char *a, const char *b) {
  CURLU *ua = curl_url(), *ub = curl_url();
  int same = 0;
  if (curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
      curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK) {
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    same = 1;
    for (size_t i = 0; i < 3; i++) {
      char *pa = url_part(ua, parts[i]), *pb = url_part(ub, parts[i]);
      if (!pa || !pb || strcasecmp(pa, pb) != 0)
        same = 0;
      curl_free(pa);
      curl_free(pb);
    }
  }
  curl_url_cleanup(ua);
  curl_url_cleanup(ub);
  return same;
}

static int is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The method a redirect asks for: 303 (and 301/302 after a POST) become GET. */
static const char *method_after(long status, const char *method) {
  if (strcasecmp(method, "HEAD") == 0)
    return method;
  if (status == 303 || ((status == 301 || status == 302) && strcasecmp(method, "POST") == 0))
    return "GET";
  return method;
}

static void reset_for_hop(hf_http_response *res, struct transfer *t) {
  free(res->body);
  res->body = NULL;
  res->body_len = 0;
  res->bytes = 0;
  res->status = 0;
  hf_headers_clear(&res->headers);
  t->body_started = t->too_large = t->bad_range = 0;
  t->resume_offset = 0;
  restart_hash(t);
}

/* Asks for the body from offset on (from the start: no Range at all). */
static void set_range(hf_headers *h, uint64_t offset) {
  hf_headers_remove(h, "Range");
  if (offset == 0)
    return;
  char range[48];
  snprintf(range, sizeof range, "bytes=%" PRIu64 "-", offset);
  hf_headers_add(h, "Range", range);
}

/* The first hop of a continued hash: the bytes already hashed are not asked again. */
static void continue_hop(hf_http_response *res, struct transfer *t, hf_headers *headers) {
  uint64_t offset = t->req->continue_offset;
  set_range(headers, offset);
  res->bytes = t->hashed = t->resume_offset = offset;
}

/* A body hashed part-way is kept for a later request to finish (a refused resume,
 * an expired signed URL); anything else about the transfer is over. */
static void keep_partial(hf_http_response *res, struct transfer *t, int rc) {
  int complete = rc == 0 && is_success(res->status);
  int interrupted = res->error_code && strcmp(res->error_code, HF_HTTP_ERR_INTERRUPTED) == 0;
  if (t->hasher && !complete && !interrupted && !t->too_large && t->hashed > 0) {
    res->partial = t->hasher;
    res->partial_bytes = t->hashed;
    t->hasher = NULL;
  }
}

/* Is this failure a dropped transfer of a body that a Range request can finish
 * (within the request's deadline)? */
static int resumable(const hf_http_request *req, const hf_http_response *res, CURLcode rc,
                     const struct transfer *t) {
  const char *code = classify(rc, t);
  return req->sink == HF_SINK_SHA256 && is_success(res->status) && !t->bad_range &&
         !t->deadline_passed &&
         (strcmp(code, HF_HTTP_ERR_RESET) == 0 || strcmp(code, HF_HTTP_ERR_TIMEOUT) == 0) &&
         res->resumes < req->max_resumes;
}

/* Retries the last hop from the first byte not yet hashed. */
static CURLcode resume(hf_http_client *c, struct transfer *t, const char *url,
                       const hf_headers *headers, char *errbuf) {
  hf_http_response *res = t->res;
  uint64_t offset = res->bytes;
  hf_headers with_range = {0};
  hf_headers_copy(&with_range, headers);
  set_range(&with_range, offset);
  res->resumes++;
  res->status = 0;
  t->body_started = 0;
  t->resume_offset = offset;
  CURLcode rc = perform_once(c, t, "GET", url, &with_range, NULL, 0, errbuf);
  hf_headers_clear(&with_range);
  return rc;
}

static CURLcode perform_with_resumes(hf_http_client *c, struct transfer *t, const char *method,
                                     const char *url, const hf_headers *headers, const char *body,
                                     size_t body_len, char *errbuf) {
  CURLcode rc = perform_once(c, t, method, url, headers, body, body_len, errbuf);
  while (rc != CURLE_OK && resumable(t->req, t->res, rc, t))
    rc = resume(c, t, url, headers, errbuf);
  return rc;
}

int hf_http_perform(hf_http_client *c, hf_http_request *req, hf_http_response *res) {
  memset(res, 0, sizeof *res);
  struct transfer t = {.req = req, .res = res};
  start_deadline(&t);
  int continuing = req->continue_hash != NULL && req->sink == HF_SINK_SHA256;
  if (continuing)
    t.hasher = req->continue_hash;
  else
    hf_hash_pipeline_free(req->continue_hash); /* not needed without the sink */
  req->continue_hash = NULL;                   /* taken over, whatever happens next */
  if (req->sink == HF_SINK_SHA256 && !t.hasher && !(t.hasher = hf_hash_pipeline_new()))
    return fail(res, HF_HTTP_ERR_HTTP, "out of memory");

  const char *method = req->method ? req->method : "GET";
  const char *body = req->body;
  size_t body_len = req->body_len;
  hf_headers headers = {0};
  hf_headers_copy(&headers, req->headers);
  char *url = strdup(req->url);
  char errbuf[CURL_ERROR_SIZE];
  int rc = 0;

  for (int hop = 0;; hop++) {
    if (continuing && hop == 0) {
      continue_hop(res, &t, &headers);
    } else {
      if (continuing && hop == 1) /* a redirect of a continued request: the whole body, from 0 */
        set_range(&headers, 0);
      reset_for_hop(res, &t);
    }
    CURLcode cc = perform_with_resumes(c, &t, method, url, &headers, body, body_len, errbuf);
    if (cc == CURLE_OK && !t.body_started && is_success(res->status))
      start_body(&t); /* an empty body never reached on_body; its hash starts as any other */
    free(res->effective_url);
    res->effective_url = strdup(url);
    if (t.bad_range) {
      rc = fail(res, HF_HTTP_ERR_HTTP, "%s: resumed download answered the wrong range", url);
      break;
    }
    if (cc != CURLE_OK) {
      rc = fail_curl(res, cc, &t, url, errbuf);
      break;
    }
    const char *location = hf_headers_get(&res->headers, "Location");
    if (!is_redirect(res->status) || !location || !req->follow_redirects)
      break;
    char *next = resolve_location(url, location);
    if (!next) {
      rc = fail(res, HF_HTTP_ERR_HTTP, "bad redirect location: %s", location);
      break;
    }
    const char *refusal = hf_http_redirect_refusal(url, next);
    if (refusal) {
      rc = fail(res, HF_HTTP_ERR_HTTP, "%s: %s (to %s)", url, refusal, next);
      free(next);
      break;
    }
    int same_host = hf_http_same_origin(url, next);
    if (!same_host && !req->follow_cross_host) {
      free(next);
      break; /* the caller sees the redirect and decides */
    }
    if (res->redirects++ >= MAX_REDIRECTS) {
      free(next);
      rc = fail(res, HF_HTTP_ERR_HTTP, "%s: too many redirects", url);
      break;
    }
    if (!same_host)
      hf_headers_remove(&headers, "Authorization"); /* and it stays off for later hops */
    const char *next_method = method_after(res->status, method);
    if (next_method != method) {
      body = NULL;
      body_len = 0;
      method = next_method;
    }
    free(url);
    url = next;
  }
  if (rc == 0 && t.hasher && is_success(res->status) && req->sink == HF_SINK_SHA256)
    hf_hash_pipeline_result(t.hasher, res->sha256, res->git_sha1);
  keep_partial(res, &t, rc);
  hf_hash_pipeline_free(t.hasher);
  hf_headers_clear(&headers);
  free(url);
  return rc;
}
