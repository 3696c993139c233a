/* A set of byte strings in two flat allocations (the strings' bytes, and an
 * open-addressing table of where each begins): a restart holds the ids of a
 * million finished repos in tens of megabytes, where a Lua table of them takes
 * several times that. */
#ifndef HFSCAN_STRING_SET_H
#define HFSCAN_STRING_SET_H

#include <stddef.h>

typedef struct hf_string_set hf_string_set;

hf_string_set *hf_string_set_new(void);
void hf_string_set_free(hf_string_set *s);
/* 1: added; 0: it was there; -1: out of memory (the set is unchanged). */
int hf_string_set_add(hf_string_set *s, const char *key, size_t len);
int hf_string_set_has(const hf_string_set *s, const char *key, size_t len);
size_t hf_string_set_count(const hf_string_set *s);

#endif
