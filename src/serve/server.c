/* `hfscan serve`'s HTTP server (see server.h): routing, request bodies,
 * editions, per-thread database connections, and the drain at the end. */
#include "hfscan/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hfscan/hash_list.h"
#include "hfscan/interrupt.h"
#include "hfscan/serve_answers.h"

/* An edition with the count of its holders: the server and each request that
 * took it; the last to let go frees it. */
typedef struct {
  hf_server_edition e;
  atomic_int holders;
} held_edition;

struct hf_server {
  struct MHD_Daemon *daemon;
  hf_server_config config;
  pthread_mutex_t lock; /* guards current */
  held_edition *current;
  pthread_key_t reader_key; /* each server thread's reader */
  atomic_int in_flight;
  atomic_int draining;
  atomic_int cutting;     /* the drain's time is up: running queries stop */
  atomic_size_t buffered; /* bytes of the bodies being kept, over all requests */
};

/* A server thread's database connection, the edition it was opened for, and
 * the last edition it could not open (tried again a second later, not at
 * every request). */
typedef struct {
  hf_answers *answers;
  unsigned long generation;
  unsigned long failed_generation;
  double failed_at;
} thread_reader;

#define REOPEN_RETRY_SECONDS 1.0

/* One request: its edition, and its body as it arrives. */
typedef struct {
  held_edition *edition;
  hf_json_buffer body;
  size_t body_bytes; /* read so far, kept or not */
  size_t kept;       /* of them, counted in the server's buffered bytes */
  int too_large;
  int too_busy; /* the server held too many bodies at once */
} request;

/* The one path that takes a body (POST); every other path is read (GET, HEAD). */
#define BULK_PATH "/bulk/sha256"

/* A body is read to its end to be refused (see refuse_unread) up to this many
 * times the limit; beyond, the connection is closed. */
#define READ_TO_REFUSE_FACTOR 16

void hf_server_edition_free(hf_server_edition *e) {
  if (!e)
    return;
  free(e->database_uri);
  free(e->lookup_sql);
  free(e->repo_sql);
  free(e->info);
  free(e->flagged);
  free(e->openapi);
  memset(e, 0, sizeof *e);
}

static held_edition *hold_new(hf_server_edition *e) {
  held_edition *h = calloc(1, sizeof *h);
  if (!h) {
    hf_server_edition_free(e);
    return NULL;
  }
  h->e = *e;
  memset(e, 0, sizeof *e);
  atomic_init(&h->holders, 1);
  return h;
}

static void let_go(held_edition *h) {
  if (h && atomic_fetch_sub(&h->holders, 1) == 1) {
    hf_server_edition_free(&h->e);
    free(h);
  }
}

static held_edition *take_current(hf_server *s) {
  pthread_mutex_lock(&s->lock);
  held_edition *h = s->current;
  atomic_fetch_add(&h->holders, 1);
  pthread_mutex_unlock(&s->lock);
  return h;
}

void hf_server_publish(hf_server *s, hf_server_edition *edition) {
  held_edition *h = hold_new(edition);
  if (!h)
    return; /* out of memory: the old edition stays */
  pthread_mutex_lock(&s->lock);
  held_edition *old = s->current;
  s->current = h;
  pthread_mutex_unlock(&s->lock);
  let_go(old);
}

static void close_reader(void *p) {
  thread_reader *r = p;
  hf_answers_close(r->answers);
  free(r);
}

/* This thread's connection for edition h: reopened when the edition is newer;
 * when that fails, the old connection (if any) goes on answering. */
static hf_answers *reader_for(hf_server *s, held_edition *h) {
  thread_reader *r = pthread_getspecific(s->reader_key);
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || pthread_setspecific(s->reader_key, r) != 0) {
      free(r);
      return NULL;
    }
  }
  /* A request of an older edition, still running, is answered by the newer
   * connection: going back would cost two reopens. */
  if (r->answers && r->generation >= h->e.generation)
    return r->answers;
  double now = hf_monotonic_seconds();
  if (r->failed_generation == h->e.generation && now - r->failed_at < REOPEN_RETRY_SECONDS)
    return r->answers;
  char err[256];
  hf_answers *fresh = hf_answers_open(h->e.database_uri, h->e.lookup_sql, h->e.repo_sql,
                                      &s->cutting, err, sizeof err);
  if (fresh) {
    hf_answers_close(r->answers);
    r->answers = fresh;
    r->generation = h->e.generation;
  } else {
    if (r->failed_generation != h->e.generation)
      fprintf(stderr, "hfscan serve: cannot open the database (%s)%s\n", err,
              r->answers ? "; answering from the one open before" : "");
    r->failed_generation = h->e.generation;
    r->failed_at = now;
  }
  return r->answers;
}

/* ---- responses ---------------------------------------------------------- */

/* Every response: JSON, closing the connection while draining; allow (or
 * NULL) names the method a 405 wants. */
static enum MHD_Result send_text(hf_server *s, struct MHD_Connection *c, unsigned status,
                                 char *text, size_t len, enum MHD_ResponseMemoryMode mode,
                                 const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, text, mode);
  if (!r) {
    if (mode == MHD_RESPMEM_MUST_FREE)
      free(text);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (allow)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  if (atomic_load(&s->draining))
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result queued = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return queued;
}

/* Sends what b holds (503 when writing it ran out of memory). */
static enum MHD_Result send_json(hf_server *s, struct MHD_Connection *c, unsigned status,
                                 hf_json_buffer *b, const char *allow) {
  size_t len;
  char *text = hf_json_take(b, &len);
  if (!text) {
    static char no_memory[] = "{\"message\":\"out of memory\"}";
    return send_text(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, no_memory, sizeof no_memory - 1,
                     MHD_RESPMEM_PERSISTENT, NULL);
  }
  return send_text(s, c, status, text, len, MHD_RESPMEM_MUST_FREE, allow);
}

static enum MHD_Result send_message(hf_server *s, struct MHD_Connection *c, unsigned status,
                                    const char *message, const char *query) {
  hf_json_buffer b = {0};
  hf_answers_message(&b, message, query);
  return send_json(s, c, status, &b, NULL);
}

/* A refusal for a size over a limit, which the answer names. */
static enum MHD_Result send_over_limit(hf_server *s, struct MHD_Connection *c, unsigned status,
                                       const char *message, size_t limit) {
  char text[32];
  snprintf(text, sizeof text, "%zu", limit);
  return send_message(s, c, status, message, text);
}

static enum MHD_Result send_document(hf_server *s, struct MHD_Connection *c, const char *doc) {
  return send_text(s, c, MHD_HTTP_OK, (char *)doc, strlen(doc), MHD_RESPMEM_MUST_COPY, NULL);
}

static enum MHD_Result send_unavailable(hf_server *s, struct MHD_Connection *c, hf_answers *a) {
  return send_message(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "the database cannot answer now",
                      a ? hf_answers_error(a) : "no database connection");
}

/* Sends an answer from the database: 200 found, 404 unknown, 503 when it failed. */
static enum MHD_Result send_answer(hf_server *s, struct MHD_Connection *c, hf_answers *a,
                                   hf_answer_status status, hf_json_buffer *b) {
  if (status == HF_ANSWER_FAILED) {
    hf_json_free(b);
    return send_unavailable(s, c, a);
  }
  return send_json(s, c, status == HF_ANSWER_FOUND ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, b, NULL);
}

/* An answer is bounded: a hash that occurs in a great many places, or many
 * such hashes in one bulk lookup, would otherwise cost memory without end. */
static enum MHD_Result send_too_large_answer(hf_server *s, struct MHD_Connection *c) {
  return send_over_limit(s, c, MHD_HTTP_CONTENT_TOO_LARGE,
                         "The answer would be over the limit (bytes); ask for fewer hashes",
                         s->config.answer_limit);
}

/* ---- the endpoints ---------------------------------------------------------- */

static enum MHD_Result lookup_one(hf_server *s, struct MHD_Connection *c, request *rq,
                                  const char *hash) {
  char lower[65];
  if (!hf_sha256_hex_lower(hash, strlen(hash), lower))
    return send_message(s, c, MHD_HTTP_BAD_REQUEST, "Malformed SHA-256 (64 hex digits)", hash);
  hf_answers *a = reader_for(s, rq->edition);
  hf_json_buffer b = {0};
  hf_answer_status status = a ? hf_answers_lookup(a, lower, &b) : HF_ANSWER_FAILED;
  if (b.len > s->config.answer_limit) {
    hf_json_free(&b);
    return send_too_large_answer(s, c);
  }
  return send_answer(s, c, a, status, &b);
}

static void drop_body(hf_server *s, request *rq) {
  atomic_fetch_sub(&s->buffered, rq->kept);
  rq->kept = 0;
  hf_json_free(&rq->body);
}

static enum MHD_Result lookup_bulk(hf_server *s, struct MHD_Connection *c, request *rq) {
  if (rq->too_large)
    return send_over_limit(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "Request body over the limit (bytes)",
                           s->config.body_limit);
  if (rq->too_busy)
    return send_message(s, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                        "Too many bulk bodies being received at once; try again", "");
  hf_hash_list list;
  hf_hash_list_status parsed = hf_hash_list_parse(rq->body.data ? rq->body.data : "", rq->body.len,
                                                  s->config.max_hashes, &list);
  drop_body(s, rq); /* parsed: its bytes no longer count against the others' */
  if (parsed != HF_HASH_LIST_OK) {
    char where[32] = "";
    if (parsed == HF_HASH_LIST_BAD_HASH)
      snprintf(where, sizeof where, "hashes[%zu]", list.bad_index);
    else if (parsed == HF_HASH_LIST_TOO_MANY)
      snprintf(where, sizeof where, "at most %zu", s->config.max_hashes);
    unsigned status =
        parsed == HF_HASH_LIST_NO_MEMORY ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST;
    return send_message(s, c, status, hf_hash_list_message(parsed), where);
  }
  hf_answers *a = reader_for(s, rq->edition);
  hf_json_buffer b = {0};
  hf_json_append(&b, "[", 1);
  int failed = !a || !hf_answers_begin(a), over = 0;
  for (size_t i = 0; i < list.count && !failed && !over; i++) {
    if (i > 0)
      hf_json_append(&b, ",", 1);
    failed = hf_answers_lookup(a, list.hashes[i], &b) == HF_ANSWER_FAILED;
    over = b.len > s->config.answer_limit;
  }
  if (a)
    hf_answers_end(a);
  hf_json_append(&b, "]", 1);
  hf_hash_list_free(&list);
  if (over) {
    hf_json_free(&b);
    return send_too_large_answer(s, c);
  }
  return send_answer(s, c, a, failed ? HF_ANSWER_FAILED : HF_ANSWER_FOUND, &b);
}

static enum MHD_Result repo_files(hf_server *s, struct MHD_Connection *c, request *rq,
                                  const char *repo) {
  hf_answers *a = reader_for(s, rq->edition);
  hf_json_buffer b = {0};
  hf_answer_status status = a ? hf_answers_repo(a, repo, &b) : HF_ANSWER_FAILED;
  return send_answer(s, c, a, status, &b);
}

static const char *after_prefix(const char *url, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(url, prefix, n) == 0 ? url + n : NULL;
}

static enum MHD_Result method_not_allowed(hf_server *s, struct MHD_Connection *c,
                                          const char *allowed) {
  hf_json_buffer b = {0};
  hf_answers_message(&b, "Method not allowed here; use this one", allowed);
  return send_json(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, &b, allowed);
}

static int is_read(const char *method) {
  return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* Answers a GET (or HEAD) of url. */
static enum MHD_Result answer_read(hf_server *s, struct MHD_Connection *c, request *rq,
                                   const char *url) {
  const hf_server_edition *e = &rq->edition->e;
  const char *rest;
  if ((rest = after_prefix(url, "/lookup/sha256/")))
    return lookup_one(s, c, rq, rest);
  if ((rest = after_prefix(url, "/repo/")) && *rest)
    return repo_files(s, c, rq, rest);
  if (strcmp(url, "/info") == 0)
    return send_document(s, c, e->info);
  if (strcmp(url, "/openapi.json") == 0)
    return send_document(s, c, e->openapi);
  if (strcmp(url, "/flagged") == 0) {
    if (e->flagged)
      return send_document(s, c, e->flagged);
    return send_message(s, c, MHD_HTTP_NOT_FOUND,
                        "No scan of this folder recorded the Hub's verdicts", "--security-status");
  }
  if (strcmp(url, BULK_PATH) == 0)
    return method_not_allowed(s, c, MHD_HTTP_METHOD_POST);
  return send_message(s, c, MHD_HTTP_NOT_FOUND, "Unknown path (see /openapi.json)", url);
}

/* Keeps a bulk body as it arrives, up to the limit; past it, the rest is
 * read and dropped, and the answer is 413. The body of any other request is
 * read and dropped too (the answer comes once the request is whole). Returns
 * 0 when the body has grown absurd: the connection is then closed. */
static int take_body(hf_server *s, request *rq, int bulk, const char *data, size_t len) {
  rq->body_bytes += len;
  if (rq->body_bytes / READ_TO_REFUSE_FACTOR > s->config.body_limit)
    return 0;
  if (!bulk || rq->too_large || rq->too_busy)
    return 1;
  if (rq->body_bytes > s->config.body_limit) {
    rq->too_large = 1;
    drop_body(s, rq);
    return 1;
  }
  /* All the bodies being received at once are bounded too: many clients each
   * sending just under the limit, slowly, would otherwise add up. */
  if (atomic_fetch_add(&s->buffered, len) + len > s->config.buffered_limit) {
    atomic_fetch_sub(&s->buffered, len);
    rq->too_busy = 1;
    drop_body(s, rq);
    return 1;
  }
  rq->kept += len;
  hf_json_append(&rq->body, data, len);
  return 1;
}

/* A body declared over the limit is refused before it is read when the client
 * waits to be told to send it (Expect: 100-continue), or when reading it to
 * the end would be absurd; other clients would not see an answer sent while
 * they still write (the connection is reset), so their body is read, dropped,
 * and then refused. */
static int refuse_unread(hf_server *s, struct MHD_Connection *c) {
  const char *length =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
  unsigned long long declared = length ? strtoull(length, NULL, 10) : 0;
  if (declared <= s->config.body_limit)
    return 0;
  return expect || declared / READ_TO_REFUSE_FACTOR > s->config.body_limit;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_context) {
  hf_server *s = cls;
  request *rq = *request_context;
  int bulk = strcmp(url, BULK_PATH) == 0 && strcmp(method, MHD_HTTP_METHOD_POST) == 0;
  if (!rq) {
    rq = calloc(1, sizeof *rq);
    if (!rq)
      return MHD_NO;
    rq->edition = take_current(s);
    atomic_fetch_add(&s->in_flight, 1);
    *request_context = rq;
    if (bulk && refuse_unread(s, c)) {
      rq->too_large = 1; /* the connection closes: its body is not read */
      return lookup_bulk(s, c, rq);
    }
    /* Answered at the next call, once the request is whole: a response queued
     * earlier would cost the connection its keep-alive. */
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    int go_on = take_body(s, rq, bulk, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return go_on ? MHD_YES : MHD_NO;
  }
  if (bulk)
    return lookup_bulk(s, c, rq);
  if (!is_read(method))
    return method_not_allowed(
        s, c, strcmp(url, BULK_PATH) == 0 ? MHD_HTTP_METHOD_POST : MHD_HTTP_METHOD_GET);
  return answer_read(s, c, rq, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **request_context,
                         enum MHD_RequestTerminationCode why) {
  hf_server *s = cls;
  request *rq = *request_context;
  if (!rq)
    return;
  let_go(rq->edition);
  drop_body(s, rq);
  free(rq);
  *request_context = NULL;
  atomic_fetch_sub(&s->in_flight, 1);
}

static void log_error(void *cls, const char *format, va_list ap) {
  fputs("hfscan serve: ", stderr);
  vfprintf(stderr, format, ap);
}

/* ---- starting and stopping ---------------------------------------------------- */

static int resolve(const char *address, unsigned port, struct sockaddr_storage *out, char *err,
                   size_t err_len) {
  struct addrinfo hints = {0}, *found = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char service[8];
  snprintf(service, sizeof service, "%u", port);
  int rc = getaddrinfo(address, service, &hints, &found);
  if (rc != 0) {
    snprintf(err, err_len, "cannot resolve the address %s: %s", address, gai_strerror(rc));
    return 0;
  }
  memcpy(out, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  return 1;
}

/* MHD's threads must not take the signals the Lua thread waits for. */
static struct MHD_Daemon *start_daemon(hf_server *s, struct sockaddr_storage *where) {
  sigset_t blocked, previous;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGHUP);
  sigaddset(&blocked, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &blocked, &previous);
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (where->ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, log_error, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)where, MHD_OPTION_THREAD_POOL_SIZE,
      s->config.threads, MHD_OPTION_CONNECTION_TIMEOUT, s->config.client_timeout,
      MHD_OPTION_CONNECTION_LIMIT, s->config.connection_limit, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, s, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  return d;
}

hf_server *hf_server_start(const hf_server_config *config, hf_server_edition *edition, char *err,
                           size_t err_len) {
  struct sockaddr_storage where;
  hf_server *s = calloc(1, sizeof *s);
  if (!s || !resolve(config->address, config->port, &where, err, err_len)) {
    if (!s)
      snprintf(err, err_len, "out of memory");
    free(s);
    hf_server_edition_free(edition);
    return NULL;
  }
  s->config = *config;
  s->config.address = NULL; /* not kept: the caller's string */
  s->current = hold_new(edition);
  pthread_mutex_init(&s->lock, NULL);
  if (!s->current || pthread_key_create(&s->reader_key, close_reader) != 0) {
    snprintf(err, err_len, "out of memory");
    let_go(s->current);
    free(s);
    return NULL;
  }
  s->daemon = start_daemon(s, &where);
  if (!s->daemon) {
    snprintf(err, err_len,
             "cannot listen on %s port %u (in use, or not an address of this machine)",
             config->address, config->port);
    pthread_key_delete(s->reader_key);
    let_go(s->current);
    free(s);
    return NULL;
  }
  return s;
}

unsigned hf_server_port(hf_server *s) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : 0;
}

unsigned hf_server_stop(hf_server *s, double seconds) {
  atomic_store(&s->draining, 1);
  MHD_socket listener = MHD_quiesce_daemon(s->daemon);
  struct timespec slice = {0, 10 * 1000 * 1000};
  for (double waited = 0; atomic_load(&s->in_flight) > 0 && waited < seconds; waited += 0.01)
    nanosleep(&slice, NULL);
  unsigned cut = (unsigned)atomic_load(&s->in_flight);
  atomic_store(&s->cutting, 1); /* a query still running stops at its next steps */
  MHD_stop_daemon(s->daemon);   /* its threads exit, closing their readers */
  /* Only now: MHD's threads may still name the listening socket until they stop. */
  if (listener != MHD_INVALID_SOCKET)
    close(listener);
  pthread_key_delete(s->reader_key);
  let_go(s->current);
  pthread_mutex_destroy(&s->lock);
  free(s);
  return cut;
}
