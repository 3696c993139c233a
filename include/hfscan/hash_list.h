/* The body of a bulk lookup, {"hashes": ["<sha256>", ...]} (CIRCL hashlookup's
 * convention), parsed strictly: the JSON must be whole and well formed, other
 * keys are skipped, and each hash must be 64 hex digits (any case; handed
 * back in lower case). A server reads this from any client, so nesting and
 * the count of hashes are bounded. */
#ifndef HFSCAN_HASH_LIST_H
#define HFSCAN_HASH_LIST_H

#include <stddef.h>

typedef enum {
  HF_HASH_LIST_OK,
  HF_HASH_LIST_MALFORMED, /* not JSON, or not an object */
  HF_HASH_LIST_NO_HASHES, /* no "hashes" key, or it is not an array */
  HF_HASH_LIST_TOO_MANY,  /* more than max_hashes */
  HF_HASH_LIST_BAD_HASH,  /* an element that is not a SHA-256 string */
  HF_HASH_LIST_NO_MEMORY
} hf_hash_list_status;

typedef struct {
  size_t count;
  char (*hashes)[65]; /* count NUL-terminated lower-case hashes */
  size_t bad_index;   /* with HF_HASH_LIST_BAD_HASH: the element's index */
} hf_hash_list;

/* Whether text (len bytes) is a SHA-256 in hex (any case); if so, writes it
 * in lower case, NUL-terminated, to out. */
int hf_sha256_hex_lower(const char *text, size_t len, char out[65]);

hf_hash_list_status hf_hash_list_parse(const char *body, size_t len, size_t max_hashes,
                                       hf_hash_list *out);
void hf_hash_list_free(hf_hash_list *list);
/* A message for a status (static text). */
const char *hf_hash_list_message(hf_hash_list_status status);

#endif
