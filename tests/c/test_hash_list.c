/* The bulk lookup body: exact hashes in order and lower case, other keys
 * skipped, and each kind of bad body refused with its own status. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "hfscan/hash_list.h"

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "BbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBb"

static hf_hash_list_status parse(const char *body, size_t max, hf_hash_list *out) {
  return hf_hash_list_parse(body, strlen(body), max, out);
}

static void test_hashes_in_order(void) {
  hf_hash_list l;
  const char *body = " {\"note\": {\"x\": [1, -2.5e3, true, null, \"\\u00e9\\n\"]},\n"
                     "  \"hashes\": [\"" A64 "\", \"" B64 "\"], \"other\": false} ";
  CHECK(parse(body, 10, &l) == HF_HASH_LIST_OK);
  CHECK(l.count == 2);
  CHECK(strcmp(l.hashes[0], A64) == 0);
  CHECK(strcmp(l.hashes[1], "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") ==
        0);
  hf_hash_list_free(&l);
  CHECK(parse("{\"hashes\": []}", 10, &l) == HF_HASH_LIST_OK);
  CHECK(l.count == 0);
  hf_hash_list_free(&l);
}

static void test_refusals(void) {
  hf_hash_list l;
  CHECK(parse("", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("[\"" A64 "\"]", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("{\"hashes\": [\"" A64 "\"]", 10, &l) == HF_HASH_LIST_MALFORMED); /* unclosed */
  CHECK(parse("{\"hashes\": [\"" A64 "\"]} x", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("{\"hashes\": [\"" A64 "\",]}", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("{\"a\": tru}", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("{\"a\": \"\\x\"}", 10, &l) == HF_HASH_LIST_MALFORMED);
  CHECK(parse("{\"a\": 1}", 10, &l) == HF_HASH_LIST_NO_HASHES);
  CHECK(parse("{\"hashes\": \"" A64 "\"}", 10, &l) == HF_HASH_LIST_NO_HASHES);
  CHECK(parse("{\"hashes\": [\"" A64 "\", 7]}", 10, &l) == HF_HASH_LIST_BAD_HASH);
  CHECK(l.bad_index == 1);
  CHECK(parse("{\"hashes\": [\"" A64 "\", \"" A64 "\", \"abc\"]}", 10, &l) ==
        HF_HASH_LIST_BAD_HASH);
  CHECK(l.bad_index == 2);
  CHECK(parse("{\"hashes\": [\"" A64 "\", \"" A64 "\"]}", 1, &l) == HF_HASH_LIST_TOO_MANY);
  CHECK(l.hashes == NULL);
  char deep[200] = "{\"a\": ";
  for (int i = 0; i < 40; i++)
    strcat(deep, "[");
  for (int i = 0; i < 40; i++)
    strcat(deep, "]");
  strcat(deep, ", \"hashes\": []}");
  CHECK(parse(deep, 10, &l) == HF_HASH_LIST_MALFORMED); /* nesting is bounded */
  CHECK(strstr(hf_hash_list_message(HF_HASH_LIST_TOO_MANY), "too many") != NULL);
}

int main(void) {
  test_hashes_in_order();
  test_refusals();
  return check_report("test_hash_list");
}
