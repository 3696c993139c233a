/* Streams a file through SHA-256. A reader thread fills a small ring of large
 * buffers while the calling thread hashes, so disk (or page-cache copy) time
 * hides behind hashing time; memory stays at RING_SLOTS blocks per file. */
#include "hfscan/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfscan/interrupt.h"

#define RING_SLOTS 3

struct slot {
  unsigned char *data;
  size_t len;
  int filled;
  int last; /* end of file (or error) after this block */
};

struct ring {
  struct slot slots[RING_SLOTS];
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int fd;
  int read_errno;
  int cancelled;
};

/* Reads until the block is full or the file ends, retrying short reads. */
static ssize_t read_block(int fd, unsigned char *buf, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static void *reader_main(void *arg) {
  struct ring *r = arg;
  for (unsigned i = 0;; i = (i + 1) % RING_SLOTS) {
    struct slot *s = &r->slots[i];
    pthread_mutex_lock(&r->lock);
    while (s->filled && !r->cancelled)
      pthread_cond_wait(&r->changed, &r->lock);
    int cancelled = r->cancelled;
    pthread_mutex_unlock(&r->lock);
    if (cancelled)
      return NULL;

    ssize_t n = read_block(r->fd, s->data, HF_SHA256_FILE_BLOCK);
    pthread_mutex_lock(&r->lock);
    if (n < 0) {
      r->read_errno = errno;
      n = 0;
    }
    s->len = (size_t)n;
    s->last = n < (ssize_t)HF_SHA256_FILE_BLOCK || r->read_errno;
    s->filled = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    if (s->last)
      return NULL;
  }
}

static int ring_init(struct ring *r, int fd) {
  memset(r, 0, sizeof *r);
  r->fd = fd;
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->changed, NULL);
  for (int i = 0; i < RING_SLOTS; i++) {
    r->slots[i].data = malloc(HF_SHA256_FILE_BLOCK);
    if (!r->slots[i].data)
      return ENOMEM;
  }
  return 0;
}

static void ring_destroy(struct ring *r) {
  for (int i = 0; i < RING_SLOTS; i++)
    free(r->slots[i].data);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->changed);
}

/* Hashes blocks in order as the reader fills them; returns the reader's errno. */
static int hash_ring(struct ring *r, hf_sha256 *h) {
  for (unsigned i = 0;; i = (i + 1) % RING_SLOTS) {
    struct slot *s = &r->slots[i];
    pthread_mutex_lock(&r->lock);
    while (!s->filled)
      pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);

    hf_sha256_update(h, s->data, s->len);
    int last = s->last;

    pthread_mutex_lock(&r->lock);
    s->filled = 0;
    pthread_cond_broadcast(&r->changed);
    int err = r->read_errno;
    pthread_mutex_unlock(&r->lock);
    if (last || err)
      return err;
  }
}

static int fail(int code, const char *path, char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", path, strerror(code));
  return code;
}

int hf_sha256_file(const char *path, char hex[HF_SHA256_HEX_SIZE], uint64_t *bytes,
                   char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(errno, path, err, errlen);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  struct ring ring;
  hf_sha256 *h = hf_sha256_new();
  int code = h ? ring_init(&ring, fd) : ENOMEM;
  pthread_t reader;
  if (code == 0 && (code = hf_interrupt_thread_create(&reader, reader_main, &ring)) == 0) {
    code = hash_ring(&ring, h);
    pthread_join(reader, NULL);
  }
  if (code == 0) {
    hf_sha256_peek_hex(h, hex);
    if (bytes)
      *bytes = hf_sha256_length(h);
  }
  if (h)
    ring_destroy(&ring);
  hf_sha256_free(h);
  close(fd);
  return code ? fail(code, path, err, errlen) : 0;
}
