/* HTTP on libcurl. Redirects are followed here rather than by curl, because the
 * rules differ by target: same-host hops keep every header, hops to another host
 * happen only when asked and never carry Authorization. */
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
#define ERROR_BODY_CAP ((size_t)64 << 10)
#define MAX_REDIRECTS 10

struct hf_http_client {
  CURL *curl;
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
};

int hf_http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

hf_http_client *hf_http_client_new(const char *user_agent) {
  hf_http_client *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->curl = curl_easy_init();
  c->user_agent = strdup(user_agent ? user_agent : "hfscan");
  if (!c->curl || !c->user_agent) {
    hf_http_client_free(c);
    return NULL;
  }
  return c;
}

void hf_http_client_free(hf_http_client *c) {
  if (!c)
    return;
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

static size_t on_header(char *line, size_t size, size_t n, void *userdata) {
  struct transfer *t = userdata;
  size_t len = size * n;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* A new response begins (an interim 100, or the real one): start over. */
    hf_headers_clear(&t->res->headers);
    const char *sp = memchr(line, ' ', len);
    t->res->status = sp ? strtol(sp + 1, NULL, 10) : 0;
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
  if (res->body_len + len > t->cap) {
    if (is_success(res->status)) {
      t->too_large = 1;
      return -1;
    }
    len = t->cap - res->body_len; /* error bodies are only kept for their message */
  }
  char *body = realloc(res->body, res->body_len + len + 1);
  if (!body)
    return -1;
  memcpy(body + res->body_len, data, len);
  res->body = body;
  res->body_len += len;
  body[res->body_len] = '\0';
  return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
  struct transfer *t = userdata;
  size_t len = size * n;
  if (!t->body_started)
    start_body(t);
  if (t->bad_range)
    return 0;
  if (t->hashing && t->req->max_body && t->res->bytes + len > t->req->max_body) {
    t->too_large = 1;
    return 0;
  }
  if (t->hashing) {
    hf_hash_pipeline_feed(t->hasher, data, len);
    t->hashed += len;
  } else if (t->req->sink != HF_SINK_DISCARD || !is_success(t->res->status)) {
    if (append_memory(t, data, len) != 0)
      return 0;
  }
  t->res->bytes += len;
  return len;
}

static int on_progress(void *p, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  return hf_interrupt_requested() ? 1 : 0;
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
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   req->connect_timeout_ms ? req->connect_timeout_ms : 10000L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   req->low_speed_timeout_s ? req->low_speed_timeout_s : 30L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->total_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  set_method(curl, method, body, body_len);
  errbuf[0] = '\0';
  CURLcode rc = curl_easy_perform(curl);
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

/* Is this failure a dropped transfer of a body that a Range request can finish? */
static int resumable(const hf_http_request *req, const hf_http_response *res, CURLcode rc,
                     const struct transfer *t) {
  const char *code = classify(rc, t);
  return req->sink == HF_SINK_SHA256 && is_success(res->status) && !t->bad_range &&
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
  if (rc == 0 && !t.body_started && is_success(res->status)) {
    start_body(&t); /* an empty body never reached on_body; its hash starts as any other */
    if (t.bad_range)
      rc = fail(res, HF_HTTP_ERR_HTTP, "%s: resumed download answered the wrong range", url);
  }
  if (rc == 0 && t.hasher && is_success(res->status) && req->sink == HF_SINK_SHA256)
    hf_hash_pipeline_result(t.hasher, res->sha256, res->git_sha1);
  keep_partial(res, &t, rc);
  hf_hash_pipeline_free(t.hasher);
  hf_headers_clear(&headers);
  free(url);
  return rc;
}
