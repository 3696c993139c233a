/* A process-wide "stop requested" flag, set by the host's SIGINT/SIGTERM handler
 * and polled by long-running primitives (transfers, limiter waits, pool waits). */
#ifndef HFSCAN_INTERRUPT_H
#define HFSCAN_INTERRUPT_H

#include <pthread.h>
#include <stdatomic.h>

void hf_interrupt_request(void);
int hf_interrupt_requested(void);
void hf_interrupt_clear(void);
/* Installs handlers for SIGINT and SIGTERM that call hf_interrupt_request. */
void hf_interrupt_install_handlers(void);

/* pthread_create for the library's threads (workers, readers, hashers): they never
 * take SIGINT or SIGTERM, so the handler always runs on the thread that runs Lua. */
int hf_interrupt_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Sleeps up to seconds, waking early (returning nonzero) when a stop is requested. */
int hf_sleep_interruptible(double seconds);
/* The same, also waking when *flag (unless flag is NULL) is nonzero, which a
 * signal handler sets. Returns HF_WOKE_BY_STOP, HF_WOKE_BY_FLAG (the flag is
 * left as it is), or 0 when the time is up. */
enum { HF_WOKE_BY_STOP = 1, HF_WOKE_BY_FLAG = 2 };
int hf_sleep_watching(double seconds, const atomic_int *flag);
/* Monotonic clock in seconds. */
double hf_monotonic_seconds(void);

#endif
