/* A minimal test harness: CHECK records a failure and goes on; main returns the
 * failure count, so ctest reports the file as failed. */
#ifndef HFSCAN_TEST_CHECK_H
#define HFSCAN_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    check_count++;                                                                                 \
    if (!(cond)) {                                                                                 \
      check_failures++;                                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECK_STR(actual, expected)                                                                \
  do {                                                                                             \
    const char *a_ = (actual), *e_ = (expected);                                                   \
    check_count++;                                                                                 \
    if (!a_ || strcmp(a_, e_) != 0) {                                                              \
      check_failures++;                                                                            \
      fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, e_,              \
              a_ ? a_ : "(null)");                                                                 \
    }                                                                                              \
  } while (0)

#define CHECK_NEAR(actual, expected, tolerance)                                                    \
  do {                                                                                             \
    double a_ = (actual), e_ = (expected);                                                         \
    check_count++;                                                                                 \
    if (a_ < e_ - (tolerance) || a_ > e_ + (tolerance)) {                                          \
      check_failures++;                                                                            \
      fprintf(stderr, "%s:%d: expected %g (+-%g), got %g\n", __FILE__, __LINE__, e_,               \
              (double)(tolerance), a_);                                                            \
    }                                                                                              \
  } while (0)

static inline int check_report(const char *name) {
  printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
