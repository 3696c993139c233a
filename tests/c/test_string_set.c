/* The string set: membership of exactly what was added (prefixes, empty and
 * binary strings, many colliding buckets), across the table's growth. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "hfscan/string_set.h"

static void test_members(void) {
  hf_string_set *s = hf_string_set_new();
  CHECK(hf_string_set_add(s, "org/model", 9) == 1);
  CHECK(hf_string_set_add(s, "org/model", 9) == 0);
  CHECK(hf_string_set_add(s, "", 0) == 1);
  CHECK(hf_string_set_add(s, "a\0b", 3) == 1);
  CHECK(hf_string_set_has(s, "org/model", 9));
  CHECK(!hf_string_set_has(s, "org/mode", 8));
  CHECK(!hf_string_set_has(s, "org/model2", 10));
  CHECK(hf_string_set_has(s, "", 0));
  CHECK(hf_string_set_has(s, "a\0b", 3));
  CHECK(!hf_string_set_has(s, "a", 1));
  CHECK(hf_string_set_count(s) == 3);
  hf_string_set_free(s);
}

/* Enough keys to grow the table many times: every one is found, and keys that
 * differ only in their last digits are not confused. */
static void test_growth(void) {
  enum { N = 300000 };
  hf_string_set *s = hf_string_set_new();
  char key[64];
  for (int i = 0; i < N; i++) {
    int n = snprintf(key, sizeof key, "org-%d/model-%d", i % 977, i);
    CHECK(hf_string_set_add(s, key, (size_t)n) == 1);
  }
  CHECK(hf_string_set_count(s) == N);
  int found = 0, absent = 0;
  for (int i = 0; i < N; i++) {
    int n = snprintf(key, sizeof key, "org-%d/model-%d", i % 977, i);
    found += hf_string_set_has(s, key, (size_t)n);
    n = snprintf(key, sizeof key, "org-%d/model-%d", (i + 1) % 977, i);
    absent += !hf_string_set_has(s, key, (size_t)n);
  }
  CHECK(found == N);
  CHECK(absent == N);
  hf_string_set_free(s);
}

int main(void) {
  test_members();
  test_growth();
  return check_report("test_string_set");
}
