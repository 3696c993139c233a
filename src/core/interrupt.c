/* Stop flag shared by signal handlers and worker threads. */
#include "hfscan/interrupt.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static atomic_int stop_requested;

void hf_interrupt_request(void) { atomic_store(&stop_requested, 1); }
int hf_interrupt_requested(void) { return atomic_load(&stop_requested); }
void hf_interrupt_clear(void) { atomic_store(&stop_requested, 0); }

static void on_signal(int sig) {
  (void)sig;
  hf_interrupt_request();
}

void hf_interrupt_install_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int hf_interrupt_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg) {
  sigset_t stop, previous;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  /* The new thread inherits the blocked mask; this thread gets its own back. */
  pthread_sigmask(SIG_BLOCK, &stop, &previous);
  int rc = pthread_create(thread, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  return rc;
}

double hf_monotonic_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hf_sleep_watching(double seconds, const atomic_int *flag) {
  /* Sleep in short slices so a Ctrl-C (or the flag) is noticed within 50 ms. */
  double end = hf_monotonic_seconds() + seconds;
  while (!hf_interrupt_requested()) {
    if (flag && atomic_load(flag))
      return HF_WOKE_BY_FLAG;
    double left = end - hf_monotonic_seconds();
    if (left <= 0)
      return 0;
    double slice = left < 0.05 ? left : 0.05;
    struct timespec ts = {(time_t)slice, (long)((slice - (time_t)slice) * 1e9)};
    nanosleep(&ts, NULL);
  }
  return HF_WOKE_BY_STOP;
}

int hf_sleep_interruptible(double seconds) { return hf_sleep_watching(seconds, NULL) != 0; }
