/* HTTP requests on libcurl, with the redirect, resume and sink rules a Hub
 * scanner needs. One hf_http_client owns one curl handle (and so one connection
 * cache); use one client per thread. */
#ifndef HFSCAN_HTTP_H
#define HFSCAN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "hfscan/hash_pipeline.h"
#include "hfscan/http_headers.h"
#include "hfscan/sha256.h"

typedef enum hf_http_sink {
  HF_SINK_MEMORY,  /* body kept in memory, up to max_body bytes */
  HF_SINK_SHA256,  /* body hashed as it streams and never stored */
  HF_SINK_DISCARD, /* body counted and dropped */
} hf_http_sink;

typedef struct hf_http_request {
  const char *method; /* GET, HEAD, POST...; NULL means GET */
  const char *url;
  const hf_headers *headers;
  const char *body; /* request body (POST) */
  size_t body_len;
  hf_http_sink sink;
  size_t max_body;         /* cap on a 2xx body: 0 means 64 MiB in memory, none otherwise */
  int git_blob_check;      /* sha256 sink: also compute the git blob SHA-1 of the body, */
  long long git_blob_size; /* sha1("blob <git_blob_size>\0" + body); -1: the size the
                              response announces (its Content-Length; none without one) */
  /* Deadlines; each that runs out fails the request with HF_HTTP_ERR_TIMEOUT. */
  long connect_timeout_ms;    /* 0 means 10 s */
  long first_byte_timeout_ms; /* from each exchange's start to its status line; 0: 30 s */
  /* From the status line on, fewer than min_bytes_per_s over a window of
   * low_speed_timeout_s fails; 0 means 1024 bytes/s, and 30 s. */
  long min_bytes_per_s;
  long low_speed_timeout_s;
  /* The whole request, hops and resumes included, from hf_http_perform's start: this
   * when set, else hf_http_total_budget_ms of expected_size, or when that is 0 of the
   * git blob size, max_body, the memory cap, or else of the first 2xx's Content-Length. */
  long total_timeout_ms;
  uint64_t expected_size; /* bytes the body should have; 0 when unknown */
  int follow_redirects;   /* follow redirects on the same host (with the same headers) */
  int follow_cross_host;  /* also follow to other hosts, without Authorization */
  int max_resumes;        /* sha256 sink: Range resumes after a dropped transfer */
  /* sha256 sink: goes on with a hash an earlier request began (its response's partial),
   * asking for the rest from continue_offset with Range. hf_http_perform takes it over
   * (sets it to NULL), whatever happens: it frees it, or hands it on in the response's
   * partial. */
  hf_hash_pipeline *continue_hash;
  uint64_t continue_offset;
} hf_http_request;

/* Error codes a caller can act on. */
#define HF_HTTP_ERR_DNS "dns"
#define HF_HTTP_ERR_CONNECT "connect"
#define HF_HTTP_ERR_TIMEOUT "timeout"
#define HF_HTTP_ERR_RESET "reset"
#define HF_HTTP_ERR_TLS "tls"
#define HF_HTTP_ERR_TOO_LARGE "too_large"
#define HF_HTTP_ERR_HTTP "http"
#define HF_HTTP_ERR_INTERRUPTED "interrupted"

typedef struct hf_http_response {
  long status;
  hf_headers headers;  /* of the last response received */
  char *effective_url; /* the URL that gave that response */
  /* memory sink, or any non-2xx body: its first 64 KiB, where the transfer stops;
   * NUL-terminated */
  char *body;
  size_t body_len;
  uint64_t bytes;                  /* body bytes of the final response (all sinks) */
  char sha256[HF_SHA256_HEX_SIZE]; /* sha256 sink, 2xx responses */
  char git_sha1[41];               /* with git_blob_size, 2xx responses */
  int redirects;
  int resumes;
  const char *error_code; /* NULL on success; one of HF_HTTP_ERR_* */
  char error_message[512];
  /* sha256 sink: a body that stopped part-way (dropped after its resumes, or a resume
   * the server refused, as a CDN does once its signed URL expires) leaves its hash
   * here with the bytes hashed so far, for another request to continue
   * (continue_hash). Owned by the response until taken (set to NULL). */
  hf_hash_pipeline *partial;
  uint64_t partial_bytes;
} hf_http_response;

typedef struct hf_http_client hf_http_client;

/* Call once per process before any thread starts. */
int hf_http_global_init(void);
hf_http_client *hf_http_client_new(const char *user_agent);
void hf_http_client_free(hf_http_client *c);

/* Performs the request. Returns 0 when a response arrived (whatever its status,
 * a non-2xx body cut at its cap included), -1 on failure with error_code and
 * error_message set. Always free the response. */
int hf_http_perform(hf_http_client *c, hf_http_request *req, hf_http_response *res);
void hf_http_response_free(hf_http_response *res);

/* The whole request's deadline in ms: total_timeout_ms when set, else a minute or
 * the time expected_size bytes take at 256 KiB/s, whichever is longer. */
long long hf_http_total_budget_ms(long total_timeout_ms, uint64_t expected_size);

/* NULL when a redirect from one absolute URL to the other may be followed, else the
 * reason it is not: only http and https, and never from https down to http. */
const char *hf_http_redirect_refusal(const char *from, const char *to);
/* Nonzero when two absolute URLs share scheme, host and port. */
int hf_http_same_origin(const char *a, const char *b);

#endif
