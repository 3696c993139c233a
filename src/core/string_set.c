#include "hfscan/string_set.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A slot holds a string's hash and where its bytes begin in the arena (+1, so
 * that 0 marks an empty slot); each string is stored as its length (4 bytes)
 * then its bytes. The table is kept at most half full. */
typedef struct {
  uint64_t hash;
  uint32_t at;
} slot;

struct hf_string_set {
  slot *slots;
  size_t capacity, count; /* capacity: a power of two */
  char *arena;
  size_t used, size;
};

static uint64_t fnv1a(const char *key, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 1099511628211ull;
  }
  return h;
}

hf_string_set *hf_string_set_new(void) {
  hf_string_set *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->capacity = 1024;
  s->slots = calloc(s->capacity, sizeof *s->slots);
  if (!s->slots) {
    free(s);
    return NULL;
  }
  return s;
}

void hf_string_set_free(hf_string_set *s) {
  if (!s)
    return;
  free(s->slots);
  free(s->arena);
  free(s);
}

static int same(const hf_string_set *s, uint32_t at, const char *key, size_t len) {
  uint32_t stored;
  memcpy(&stored, s->arena + at - 1, sizeof stored);
  return stored == len && memcmp(s->arena + at - 1 + sizeof stored, key, len) == 0;
}

/* The slot key is in, or the empty slot where it would go. */
static slot *find(const slot *slots, size_t capacity, const hf_string_set *s, uint64_t hash,
                  const char *key, size_t len) {
  size_t i = (size_t)hash & (capacity - 1);
  while (slots[i].at != 0 && !(slots[i].hash == hash && same(s, slots[i].at, key, len)))
    i = (i + 1) & (capacity - 1);
  return (slot *)&slots[i];
}

static int grow_table(hf_string_set *s) {
  size_t capacity = s->capacity * 2;
  slot *slots = calloc(capacity, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i < s->capacity; i++) {
    if (s->slots[i].at == 0)
      continue;
    /* Every string is distinct: the first empty slot is its place. */
    size_t j = (size_t)s->slots[i].hash & (capacity - 1);
    while (slots[j].at != 0)
      j = (j + 1) & (capacity - 1);
    slots[j] = s->slots[i];
  }
  free(s->slots);
  s->slots = slots;
  s->capacity = capacity;
  return 0;
}

static int reserve_arena(hf_string_set *s, size_t more) {
  if (s->used + more <= s->size)
    return 0;
  size_t size = s->size ? s->size : 1 << 16;
  while (size < s->used + more)
    size *= 2;
  if (size > UINT32_MAX)
    return -1;
  char *arena = realloc(s->arena, size);
  if (!arena)
    return -1;
  s->arena = arena;
  s->size = size;
  return 0;
}

int hf_string_set_add(hf_string_set *s, const char *key, size_t len) {
  uint64_t hash = fnv1a(key, len);
  slot *at = find(s->slots, s->capacity, s, hash, key, len);
  if (at->at != 0)
    return 0;
  uint32_t stored = (uint32_t)len;
  if (len > UINT32_MAX / 2 || reserve_arena(s, sizeof stored + len) != 0)
    return -1;
  if ((s->count + 1) * 2 > s->capacity) {
    if (grow_table(s) != 0)
      return -1;
    at = find(s->slots, s->capacity, s, hash, key, len);
  }
  memcpy(s->arena + s->used, &stored, sizeof stored);
  memcpy(s->arena + s->used + sizeof stored, key, len);
  at->hash = hash;
  at->at = (uint32_t)s->used + 1;
  s->used += sizeof stored + len;
  s->count++;
  return 1;
}

int hf_string_set_has(const hf_string_set *s, const char *key, size_t len) {
  return find(s->slots, s->capacity, s, fnv1a(key, len), key, len)->at != 0;
}

size_t hf_string_set_count(const hf_string_set *s) { return s->count; }
