/* The producer fills slots in order; the hashing thread takes them in the same
 * order. A slot is free, being filled, or full; "drain" hands over a partly
 * filled slot and waits until every full slot is hashed. */
#include "hfscan/hash_pipeline.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evp_hex.h"
#include "hfscan/interrupt.h"

struct slot {
  unsigned char *data;
  size_t len;
  int full;
};

struct hf_hash_pipeline {
  struct slot slots[HF_PIPELINE_SLOTS];
  unsigned fill; /* slot the producer writes */
  unsigned hash; /* slot the thread reads */
  int stopping;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  pthread_t thread;
  hf_sha256 *sha256;
  EVP_MD_CTX *git; /* NULL when the git blob id is not wanted */
};

static void *hash_main(void *arg) {
  hf_hash_pipeline *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    struct slot *s = &p->slots[p->hash];
    while (!s->full && !p->stopping)
      pthread_cond_wait(&p->changed, &p->lock);
    if (!s->full)
      break; /* stopping, nothing left */
    pthread_mutex_unlock(&p->lock);
    hf_sha256_update(p->sha256, s->data, s->len);
    if (p->git)
      EVP_DigestUpdate(p->git, s->data, s->len);
    pthread_mutex_lock(&p->lock);
    s->full = 0;
    s->len = 0;
    p->hash = (p->hash + 1) % HF_PIPELINE_SLOTS;
    pthread_cond_broadcast(&p->changed);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

hf_hash_pipeline *hf_hash_pipeline_new(void) {
  hf_hash_pipeline *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  for (int i = 0; i < HF_PIPELINE_SLOTS; i++)
    if (!(p->slots[i].data = malloc(HF_PIPELINE_SLOT_SIZE)))
      goto fail;
  if (!(p->sha256 = hf_sha256_new()))
    goto fail;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->changed, NULL);
  if (hf_interrupt_thread_create(&p->thread, hash_main, p) != 0) {
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    goto fail;
  }
  return p;
fail:
  for (int i = 0; i < HF_PIPELINE_SLOTS; i++)
    free(p->slots[i].data);
  hf_sha256_free(p->sha256);
  free(p);
  return NULL;
}

/* Hands the slot being filled to the thread (caller holds the lock). */
static void hand_over(hf_hash_pipeline *p) {
  struct slot *s = &p->slots[p->fill];
  if (s->len == 0)
    return;
  s->full = 1;
  p->fill = (p->fill + 1) % HF_PIPELINE_SLOTS;
  pthread_cond_broadcast(&p->changed);
}

unsigned char *hf_hash_pipeline_space(hf_hash_pipeline *p, size_t *room) {
  pthread_mutex_lock(&p->lock);
  struct slot *s = &p->slots[p->fill];
  while (s->full)
    pthread_cond_wait(&p->changed, &p->lock);
  pthread_mutex_unlock(&p->lock);
  /* Writing there without the lock is safe: the thread never touches a slot
   * until it is handed over. */
  *room = HF_PIPELINE_SLOT_SIZE - s->len;
  return s->data + s->len;
}

void hf_hash_pipeline_commit(hf_hash_pipeline *p, size_t len) {
  pthread_mutex_lock(&p->lock);
  struct slot *s = &p->slots[p->fill];
  s->len += len;
  if (s->len == HF_PIPELINE_SLOT_SIZE)
    hand_over(p);
  pthread_mutex_unlock(&p->lock);
}

void hf_hash_pipeline_feed(hf_hash_pipeline *p, const void *data, size_t len) {
  const unsigned char *in = data;
  while (len > 0) {
    size_t room;
    unsigned char *space = hf_hash_pipeline_space(p, &room);
    size_t n = len < room ? len : room;
    memcpy(space, in, n);
    hf_hash_pipeline_commit(p, n);
    in += n;
    len -= n;
  }
}

static void drain(hf_hash_pipeline *p) {
  pthread_mutex_lock(&p->lock);
  hand_over(p);
  while (p->slots[p->hash].full)
    pthread_cond_wait(&p->changed, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

void hf_hash_pipeline_restart(hf_hash_pipeline *p, long long git_blob_size) {
  drain(p);
  hf_sha256_reset(p->sha256);
  if (git_blob_size >= 0) {
    if (!p->git)
      p->git = EVP_MD_CTX_new();
    char prefix[48];
    int n = snprintf(prefix, sizeof prefix, "blob %lld", git_blob_size);
    EVP_DigestInit_ex(p->git, EVP_sha1(), NULL);
    EVP_DigestUpdate(p->git, prefix, (size_t)n + 1); /* git hashes the NUL too */
  } else if (p->git) {
    EVP_MD_CTX_free(p->git);
    p->git = NULL;
  }
}

void hf_hash_pipeline_result(hf_hash_pipeline *p, char sha256[HF_SHA256_HEX_SIZE],
                             char git_sha1[41]) {
  drain(p);
  hf_sha256_peek_hex(p->sha256, sha256);
  git_sha1[0] = '\0';
  if (p->git)
    hf_evp_peek_hex(p->git, git_sha1);
}

void hf_hash_pipeline_free(hf_hash_pipeline *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  pthread_join(p->thread, NULL);
  for (int i = 0; i < HF_PIPELINE_SLOTS; i++)
    free(p->slots[i].data);
  hf_sha256_free(p->sha256);
  EVP_MD_CTX_free(p->git);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->changed);
  free(p);
}
