/* libFuzzer target: the bulk lookup body parser (src/core/hash_list.c). Any
 * input ends in a status; an accepted one hands back at most max_hashes
 * hashes, each 64 lower-case hex digits that appear (in some case) in it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hfscan/hash_list.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  hf_hash_list list;
  size_t max = size % 5 + 1;
  hf_hash_list_status status = hf_hash_list_parse((const char *)data, size, max, &list);
  if (status != HF_HASH_LIST_OK) {
    if (list.hashes != NULL || list.count != 0)
      abort();
    return 0;
  }
  if (list.count > max)
    abort();
  for (size_t i = 0; i < list.count; i++) {
    const char *h = list.hashes[i];
    if (strlen(h) != 64)
      abort();
    for (size_t k = 0; k < 64; k++)
      if (!isxdigit((unsigned char)h[k]) || isupper((unsigned char)h[k]))
        abort();
  }
  hf_hash_list_free(&list);
  return 0;
}
