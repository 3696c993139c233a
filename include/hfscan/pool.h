/* A pool of worker threads that run jobs and hand them back, completed, to the
 * thread that submitted them. Each worker owns one HTTP client, so connections
 * are reused; jobs never touch a lua_State. */
#ifndef HFSCAN_POOL_H
#define HFSCAN_POOL_H

#include <stdint.h>

#include "hfscan/http.h"

typedef struct hf_worker {
  int index;
  hf_http_client *http; /* created on first use by the worker */
  const char *user_agent;
  const double *spacing; /* the pool's per-worker delay between requests */
  double last_request;   /* monotonic start of this worker's last request, -1 before */
} hf_worker;

/* Waits until this worker may start its next request (the pool's spacing after
 * its previous one) and records the start. Returns -1 if interrupted. */
int hf_worker_pace(hf_worker *worker);

typedef struct hf_job hf_job;
struct hf_job {
  void (*run)(hf_job *job, hf_worker *worker); /* on a worker thread */
  void (*destroy)(hf_job *job);                /* frees the job */
  uint64_t id;                                 /* set by hf_pool_submit */
  hf_job *next;
};

typedef struct hf_pool hf_pool;

/* Returns NULL if threads cannot be started. user_agent is copied. */
hf_pool *hf_pool_new(int workers, const char *user_agent);
/* Queues a job (the pool owns it until it comes back from hf_pool_wait). Returns
 * its id, or 0 when the pool is closed. */
uint64_t hf_pool_submit(hf_pool *pool, hf_job *job);
/* Waits up to timeout seconds (negative: forever) for a completed job. Returns it,
 * or NULL on timeout, when nothing is pending, or when a stop was requested. */
hf_job *hf_pool_wait(hf_pool *pool, double timeout);
/* Jobs submitted and not yet returned by hf_pool_wait. */
int hf_pool_pending(hf_pool *pool);
int hf_pool_size(const hf_pool *pool);
/* Each worker waits this long between the starts of its own requests (the
 * user's --rate-limit); 0 (the default) means no fixed delay. */
void hf_pool_set_worker_spacing(hf_pool *pool, double seconds);
/* Stops the workers after their current job, drops queued and completed jobs. */
void hf_pool_free(hf_pool *pool);

/* Built-in job: hash a file with hf_sha256_file. */
typedef struct hf_hash_job {
  hf_job base;
  char *path;
  char hex[HF_SHA256_HEX_SIZE];
  uint64_t bytes;
  int error; /* errno, 0 on success */
  char message[512];
} hf_hash_job;
hf_hash_job *hf_hash_job_new(const char *path);

#endif
