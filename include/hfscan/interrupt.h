/* A process-wide "stop requested" flag, set by the host's SIGINT/SIGTERM handler
 * and polled by long-running primitives (transfers, limiter waits, pool waits). */
#ifndef HFSCAN_INTERRUPT_H
#define HFSCAN_INTERRUPT_H

#include <pthread.h>

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
/* Monotonic clock in seconds. */
double hf_monotonic_seconds(void);

#endif
