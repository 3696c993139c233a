/* Worker pool: many jobs in flight, every one handed back once, results copied,
 * and a clean shutdown with work still queued. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "hfscan/pool.h"

typedef struct {
  hf_job base;
  int input, output;
  int worker;
} square_job;

static void run_square(hf_job *job, hf_worker *w) {
  square_job *s = (square_job *)job;
  usleep(1000);
  s->output = s->input * s->input;
  s->worker = w->index;
}

static int destroyed;
static void destroy_square(hf_job *job) {
  __atomic_add_fetch(&destroyed, 1, __ATOMIC_SEQ_CST);
  free(job);
}

static square_job *new_square(int input) {
  square_job *s = calloc(1, sizeof *s);
  s->base.run = run_square;
  s->base.destroy = destroy_square;
  s->input = input;
  return s;
}

static void test_many_jobs(void) {
  hf_pool *pool = hf_pool_new(4, "test");
  CHECK(hf_pool_size(pool) == 4);
  enum { N = 200 };
  int seen[N] = {0}, workers_used[4] = {0};
  for (int i = 0; i < N; i++)
    CHECK(hf_pool_submit(pool, &new_square(i)->base) == (uint64_t)i + 1);
  CHECK(hf_pool_pending(pool) == N);
  hf_job *job;
  int count = 0;
  while ((job = hf_pool_wait(pool, 5)) != NULL) {
    square_job *s = (square_job *)job;
    CHECK(s->output == s->input * s->input);
    CHECK(job->id == (uint64_t)s->input + 1);
    seen[s->input]++;
    workers_used[s->worker] = 1;
    job->destroy(job);
    count++;
  }
  CHECK(count == N);
  for (int i = 0; i < N; i++)
    CHECK(seen[i] == 1);
  CHECK(workers_used[0] + workers_used[1] + workers_used[2] + workers_used[3] >= 2);
  CHECK(hf_pool_pending(pool) == 0);
  CHECK(hf_pool_wait(pool, 0.01) == NULL); /* nothing pending: returns at once */
  hf_pool_free(pool);
}

static void test_free_with_queued_work(void) {
  destroyed = 0;
  hf_pool *pool = hf_pool_new(1, "test");
  for (int i = 0; i < 50; i++)
    hf_pool_submit(pool, &new_square(i)->base);
  hf_pool_free(pool); /* every job, queued, done or running, is destroyed once */
  CHECK(destroyed == 50);
}

static void test_hash_jobs(void) {
  hf_pool *pool = hf_pool_new(2, "test");
  FILE *f = fopen("/tmp/hfscan-pool-abc", "wb");
  fputs("abc", f);
  fclose(f);
  hf_pool_submit(pool, &hf_hash_job_new("/tmp/hfscan-pool-abc")->base);
  hf_pool_submit(pool, &hf_hash_job_new("/tmp/hfscan-pool-missing")->base);
  for (int i = 0; i < 2; i++) {
    hf_hash_job *h = (hf_hash_job *)hf_pool_wait(pool, 5);
    CHECK(h != NULL);
    if (!h)
      break;
    if (h->base.id == 1) {
      CHECK(h->error == 0 && h->bytes == 3);
      CHECK_STR(h->hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    } else {
      CHECK(h->error != 0);
      CHECK_STR(h->message, "/tmp/hfscan-pool-missing: No such file or directory");
    }
    h->base.destroy(&h->base);
  }
  unlink("/tmp/hfscan-pool-abc");
  hf_pool_free(pool);
}

int main(void) {
  test_many_jobs();
  test_free_with_queued_work();
  test_hash_jobs();
  return check_report("test_pool");
}
