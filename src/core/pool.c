/* Worker pool: a FIFO of queued jobs and a FIFO of completed ones, each behind
 * one mutex. Workers block on the first, the submitting thread on the second. */
#include "hfscan/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hfscan/interrupt.h"

struct queue {
  hf_job *head, *tail;
};

struct hf_pool {
  pthread_mutex_t lock;
  pthread_cond_t work_ready;
  pthread_cond_t job_done;
  struct queue queued, completed;
  int pending;
  int stopping;
  uint64_t next_id;
  char *user_agent;
  int size;
  double spacing;
  pthread_t *threads;
  hf_worker *workers;
};

static void push(struct queue *q, hf_job *job) {
  job->next = NULL;
  if (q->tail)
    q->tail->next = job;
  else
    q->head = job;
  q->tail = job;
}

static hf_job *pop(struct queue *q) {
  hf_job *job = q->head;
  if (job) {
    q->head = job->next;
    if (!q->head)
      q->tail = NULL;
  }
  return job;
}

struct worker_start {
  hf_pool *pool;
  hf_worker *worker;
};

static void *worker_loop(void *arg) {
  struct worker_start start = *(struct worker_start *)arg;
  free(arg);
  hf_pool *pool = start.pool;
  for (;;) {
    pthread_mutex_lock(&pool->lock);
    while (!pool->queued.head && !pool->stopping)
      pthread_cond_wait(&pool->work_ready, &pool->lock);
    hf_job *job = pool->stopping ? NULL : pop(&pool->queued);
    pthread_mutex_unlock(&pool->lock);
    if (!job)
      break;
    job->run(job, start.worker);
    pthread_mutex_lock(&pool->lock);
    push(&pool->completed, job);
    pthread_cond_signal(&pool->job_done);
    pthread_mutex_unlock(&pool->lock);
  }
  hf_http_client_free(start.worker->http);
  start.worker->http = NULL;
  return NULL;
}

hf_pool *hf_pool_new(int workers, const char *user_agent) {
  if (workers < 1)
    workers = 1;
  hf_pool *pool = calloc(1, sizeof *pool);
  if (!pool)
    return NULL;
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->work_ready, NULL);
  pthread_cond_init(&pool->job_done, NULL);
  pool->user_agent = strdup(user_agent ? user_agent : "hfscan");
  pool->threads = calloc((size_t)workers, sizeof *pool->threads);
  pool->workers = calloc((size_t)workers, sizeof *pool->workers);
  if (!pool->user_agent || !pool->threads || !pool->workers) {
    hf_pool_free(pool);
    return NULL;
  }
  for (int i = 0; i < workers; i++) {
    struct worker_start *start = malloc(sizeof *start);
    pool->workers[i] = (hf_worker){
        .index = i, .user_agent = pool->user_agent, .spacing = &pool->spacing, .last_request = -1};
    if (!start)
      break;
    *start = (struct worker_start){pool, &pool->workers[i]};
    if (hf_interrupt_thread_create(&pool->threads[i], worker_loop, start) != 0) {
      free(start);
      break;
    }
    pool->size++;
  }
  if (pool->size == 0) {
    hf_pool_free(pool);
    return NULL;
  }
  return pool;
}

uint64_t hf_pool_submit(hf_pool *pool, hf_job *job) {
  pthread_mutex_lock(&pool->lock);
  uint64_t id = 0;
  if (!pool->stopping) {
    id = job->id = ++pool->next_id;
    push(&pool->queued, job);
    pool->pending++;
    pthread_cond_signal(&pool->work_ready);
  }
  pthread_mutex_unlock(&pool->lock);
  return id;
}

static struct timespec deadline_after(double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  double whole = (double)(long)seconds;
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((seconds - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

hf_job *hf_pool_wait(hf_pool *pool, double timeout) {
  double end = timeout >= 0 ? hf_monotonic_seconds() + timeout : -1;
  pthread_mutex_lock(&pool->lock);
  hf_job *job = NULL;
  while (pool->pending > 0 && !(job = pop(&pool->completed))) {
    if (hf_interrupt_requested())
      break;
    /* Wake at least every 100 ms to notice a Ctrl-C. */
    double slice = 0.1;
    if (end >= 0) {
      double left = end - hf_monotonic_seconds();
      if (left <= 0)
        break;
      if (left < slice)
        slice = left;
    }
    struct timespec ts = deadline_after(slice);
    pthread_cond_timedwait(&pool->job_done, &pool->lock, &ts);
  }
  if (job)
    pool->pending--;
  pthread_mutex_unlock(&pool->lock);
  return job;
}

int hf_pool_pending(hf_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  int n = pool->pending;
  pthread_mutex_unlock(&pool->lock);
  return n;
}

int hf_pool_size(const hf_pool *pool) { return pool->size; }

void hf_pool_set_worker_spacing(hf_pool *pool, double seconds) {
  pthread_mutex_lock(&pool->lock);
  pool->spacing = seconds > 0 ? seconds : 0;
  pthread_mutex_unlock(&pool->lock);
}

int hf_worker_pace(hf_worker *worker) {
  double now = hf_monotonic_seconds();
  double spacing = worker->spacing ? *worker->spacing : 0; /* set before jobs run */
  if (worker->last_request >= 0 && now < worker->last_request + spacing) {
    if (hf_sleep_interruptible(worker->last_request + spacing - now))
      return -1;
    now = hf_monotonic_seconds();
  }
  worker->last_request = now;
  return 0;
}

static void destroy_all(struct queue *q) {
  hf_job *job;
  while ((job = pop(q)) != NULL)
    job->destroy(job);
}

void hf_pool_free(hf_pool *pool) {
  if (!pool)
    return;
  pthread_mutex_lock(&pool->lock);
  pool->stopping = 1;
  pthread_cond_broadcast(&pool->work_ready);
  pthread_mutex_unlock(&pool->lock);
  for (int i = 0; i < pool->size; i++)
    pthread_join(pool->threads[i], NULL);
  destroy_all(&pool->queued);
  destroy_all(&pool->completed);
  pthread_mutex_destroy(&pool->lock);
  pthread_cond_destroy(&pool->work_ready);
  pthread_cond_destroy(&pool->job_done);
  free(pool->threads);
  free(pool->workers);
  free(pool->user_agent);
  free(pool);
}

static void run_hash(hf_job *job, hf_worker *worker) {
  hf_hash_job *h = (hf_hash_job *)job;
  h->error = hf_sha256_file(h->path, h->hex, &h->bytes, h->message, sizeof h->message);
}

static void destroy_hash(hf_job *job) {
  hf_hash_job *h = (hf_hash_job *)job;
  free(h->path);
  free(h);
}

hf_hash_job *hf_hash_job_new(const char *path) {
  hf_hash_job *h = calloc(1, sizeof *h);
  if (!h || !(h->path = strdup(path))) {
    free(h);
    return NULL;
  }
  h->base.run = run_hash;
  h->base.destroy = destroy_hash;
  return h;
}
