/* The server runs with a pipe as stdin; it exits when the pipe closes, which
 * happens when this test process ends, however it ends.
 *
 * The hostile server is C on threads of the test process: what it does is on the
 * wire (silence, drips, bodies without end), and a test can wait until it has seen
 * a request rather than sleep. Its endpoints, each answer with X-Connection: the
 * number of the connection it went on:
 *   /conn                  200 "ok", and the connection is kept for the next request
 *   /silent                reads the request and never answers
 *   /drip?n=N&ms=M[&cut=K] N payload bytes (a 206 from a Range start), one every M ms;
 *                          with cut, the connection closes after K of them
 *   /endless?code=C[&location=L][&chunked=1]
 *                          status C and a body without end: chunked, or announced as 1 TB
 */
#include "fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef HFSCAN_SOURCE_DIR
#error "HFSCAN_SOURCE_DIR must be defined"
#endif

static int read_url(const char *json, const char *key, char *out, size_t size) {
  char pattern[16];
  snprintf(pattern, sizeof pattern, "\"%s\": \"", key);
  const char *p = strstr(json, pattern);
  if (!p)
    return -1;
  p += strlen(pattern);
  const char *end = strchr(p, '"');
  if (!end || (size_t)(end - p) >= size)
    return -1;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 0;
}

int fixture_start(struct fixture *f) {
  char dir[] = "/tmp/hfscan-fixture-XXXXXX";
  if (!mkdtemp(dir))
    return -1;
  char ready[128], cmd[512];
  snprintf(ready, sizeof ready, "%s/ready.json", dir);
  snprintf(cmd, sizeof cmd, "python3 %s/tests/fixtures/http_server.py --ready-file %s",
           HFSCAN_SOURCE_DIR, ready);
  /* popen(..., "w") gives the child our pipe as its stdin; never pclose'd. */
  if (!popen(cmd, "w"))
    return -1;
  for (int i = 0; i < 200; i++) {
    FILE *r = fopen(ready, "r");
    if (r) {
      char json[512] = {0};
      size_t n = fread(json, 1, sizeof json - 1, r);
      fclose(r);
      json[n] = '\0';
      unlink(ready);
      rmdir(dir);
      return read_url(json, "a", f->a, sizeof f->a) || read_url(json, "b", f->b, sizeof f->b);
    }
    usleep(50000);
  }
  return -1;
}

/* ---------------------------------------------------------------- hostile server */

#define SEEN_MAX 64
/* Bounds a body "without end" should a client never stop reading: a test then
 * fails on the bytes it read instead of hanging. */
#define ENDLESS_LIMIT ((uint64_t)256 << 20)

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_changed = PTHREAD_COND_INITIALIZER;
static char seen[SEEN_MAX][256];
static int seen_count;

struct connection {
  int fd;
  int id;
};

static void note_request(const char *target) {
  pthread_mutex_lock(&seen_lock);
  snprintf(seen[seen_count % SEEN_MAX], sizeof seen[0], "%s", target);
  seen_count++;
  pthread_cond_broadcast(&seen_changed);
  pthread_mutex_unlock(&seen_lock);
}

static int seen_locked(const char *prefix) {
  int n = seen_count < SEEN_MAX ? seen_count : SEEN_MAX;
  for (int i = 0; i < n; i++)
    if (strncmp(seen[i], prefix, strlen(prefix)) == 0)
      return 1;
  return 0;
}

int fixture_wait_request(const char *prefix, double timeout_s) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  long long ns = until.tv_nsec + (long long)(timeout_s * 1e9);
  until.tv_sec += (time_t)(ns / 1000000000);
  until.tv_nsec = (long)(ns % 1000000000);
  pthread_mutex_lock(&seen_lock);
  int found = seen_locked(prefix), waited = 0;
  while (!found && waited == 0) {
    waited = pthread_cond_timedwait(&seen_changed, &seen_lock, &until); /* ETIMEDOUT ends it */
    found = seen_locked(prefix);
  }
  pthread_mutex_unlock(&seen_lock);
  return found ? 0 : -1;
}

static int send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n <= 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads one request head (no body: the tests only GET). Returns -1 at the end. */
static int read_request(int fd, char *buf, size_t size) {
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = recv(fd, buf + used, size - 1 - used, 0);
    if (n <= 0)
      return -1;
    used += (size_t)n;
    buf[used] = '\0';
    if (strstr(buf, "\r\n\r\n"))
      return 0;
  }
  return -1;
}

/* The value of name=... in the target's query, or -1 when absent. */
static int query_value(const char *target, const char *name, char *out, size_t size) {
  size_t name_len = strlen(name);
  for (const char *p = strchr(target, '?'); p; p = strchr(p + 1, '&')) {
    if (strncmp(p + 1, name, name_len) != 0 || p[1 + name_len] != '=')
      continue;
    const char *value = p + 2 + name_len;
    size_t len = strcspn(value, "&");
    if (len >= size)
      return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
  }
  return -1;
}

static long long query_number(const char *target, const char *name, long long fallback) {
  char value[32];
  return query_value(target, name, value, sizeof value) == 0 ? strtoll(value, NULL, 10) : fallback;
}

/* The same bytes as http_server.py's payload, so digests can be compared. */
static char payload_byte(long long i) { return (char)((i * 7 + i / 251) % 256); }

static void sleep_ms(long long ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static int serve_conn(const struct connection *c) {
  char head[128];
  int len = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Connection: %d\r\n\r\nok", c->id);
  return send_all(c->fd, head, (size_t)len) == 0;
}

/* Holds the connection, answering nothing, until the client gives up. */
static int serve_silent(const struct connection *c) {
  char byte;
  while (recv(c->fd, &byte, 1, 0) > 0)
    continue;
  return 0;
}

static long long range_start(const char *request) {
  const char *range = strcasestr(request, "\r\nRange: bytes=");
  return range ? strtoll(range + strlen("\r\nRange: bytes="), NULL, 10) : 0;
}

static int serve_drip(const struct connection *c, const char *target, const char *request) {
  long long n = query_number(target, "n", 1000), ms = query_number(target, "ms", 100);
  long long cut = query_number(target, "cut", -1), start = range_start(request);
  char head[256];
  int len = start > 0
                ? snprintf(head, sizeof head,
                           "HTTP/1.1 206 Partial Content\r\nContent-Length: %lld\r\n"
                           "Content-Range: bytes %lld-%lld/%lld\r\n",
                           n - start, start, n - 1, n)
                : snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n", n);
  len += snprintf(head + len, sizeof head - (size_t)len,
                  "Connection: close\r\nX-Connection: %d\r\n\r\n", c->id);
  if (send_all(c->fd, head, (size_t)len) != 0)
    return 0;
  for (long long i = start, sent = 0; i < n && sent != cut; i++, sent++) {
    char byte = payload_byte(i);
    if (send_all(c->fd, &byte, 1) != 0)
      break;
    sleep_ms(ms);
  }
  return 0;
}

static int send_endless_head(const struct connection *c, const char *target, int chunked) {
  char location[256], head[512];
  int len = snprintf(head, sizeof head, "HTTP/1.1 %lld Hostile\r\nX-Connection: %d\r\n",
                     query_number(target, "code", 500), c->id);
  if (query_value(target, "location", location, sizeof location) == 0)
    len += snprintf(head + len, sizeof head - (size_t)len, "Location: %s\r\n", location);
  len += snprintf(head + len, sizeof head - (size_t)len, "%s\r\n",
                  chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 1099511627776\r\n");
  return send_all(c->fd, head, (size_t)len);
}

/* Sends body blocks until the client stops reading (or ENDLESS_LIMIT). */
static int serve_endless(const struct connection *c, const char *target) {
  int chunked = query_number(target, "chunked", 0) != 0;
  if (send_endless_head(c, target, chunked) != 0)
    return 0;
  static const char chunk_head[] = "4000\r\n";
  char block[0x4000 + 2];
  memset(block, 'x', sizeof block);
  memcpy(block + 0x4000, "\r\n", 2);
  for (uint64_t sent = 0; sent < ENDLESS_LIMIT; sent += 0x4000) {
    if (chunked && send_all(c->fd, chunk_head, strlen(chunk_head)) != 0)
      break;
    if (send_all(c->fd, block, chunked ? sizeof block : 0x4000) != 0)
      break;
  }
  return 0;
}

/* Answers one request; nonzero when the connection may carry another. */
static int answer(const struct connection *c, const char *request) {
  char target[256] = "";
  sscanf(request, "%*s %255s", target);
  note_request(target);
  if (strncmp(target, "/conn", 5) == 0)
    return serve_conn(c);
  if (strncmp(target, "/silent", 7) == 0)
    return serve_silent(c);
  if (strncmp(target, "/drip", 5) == 0)
    return serve_drip(c, target, request);
  if (strncmp(target, "/endless", 8) == 0)
    return serve_endless(c, target);
  static const char not_found[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  send_all(c->fd, not_found, strlen(not_found));
  return 0;
}

static void *serve_connection(void *arg) {
  struct connection c = *(struct connection *)arg;
  free(arg);
  char request[8192];
  int keep = 1;
  while (keep && read_request(c.fd, request, sizeof request) == 0)
    keep = answer(&c, request);
  close(c.fd);
  return NULL;
}

static void *accept_connections(void *arg) {
  int listener = (int)(intptr_t)arg;
  for (int id = 1;; id++) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0)
      continue;
    struct connection *c = malloc(sizeof *c);
    pthread_t thread;
    if (c) {
      c->fd = fd;
      c->id = id;
    }
    if (!c || pthread_create(&thread, NULL, serve_connection, c) != 0) {
      close(fd);
      free(c);
      continue;
    }
    pthread_detach(thread);
  }
  return NULL;
}

int fixture_start_hostile(struct fixture *f) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t addr_len = sizeof addr;
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0)
    return -1;
  pthread_t thread;
  if (pthread_create(&thread, NULL, accept_connections, (void *)(intptr_t)listener) != 0)
    return -1;
  pthread_detach(thread);
  snprintf(f->hostile, sizeof f->hostile, "http://127.0.0.1:%d", ntohs(addr.sin_port));
  return 0;
}
