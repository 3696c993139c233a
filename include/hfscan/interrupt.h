/* A process-wide "stop requested" flag, set by the host's SIGINT/SIGTERM handler
 * and polled by long-running primitives (transfers, limiter waits, pool waits). */
#ifndef HFSCAN_INTERRUPT_H
#define HFSCAN_INTERRUPT_H

void hf_interrupt_request(void);
int hf_interrupt_requested(void);
void hf_interrupt_clear(void);
/* Installs handlers for SIGINT and SIGTERM that call hf_interrupt_request. */
void hf_interrupt_install_handlers(void);
/* Also call fn from the signal handler, after setting the flag (NULL: none). fn
 * must be async-signal-safe: the host uses it to stop Lua code that never polls. */
void hf_interrupt_on_signal(void (*fn)(void));

/* Sleeps up to seconds, waking early (returning nonzero) when a stop is requested. */
int hf_sleep_interruptible(double seconds);
/* Monotonic clock in seconds. */
double hf_monotonic_seconds(void);

#endif
