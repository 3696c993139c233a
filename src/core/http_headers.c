/* Header lists for requests and responses. */
#include "hfscan/http_headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int hf_headers_add(hf_headers *h, const char *name, const char *value) {
  if (h->count == h->capacity) {
    size_t cap = h->capacity ? h->capacity * 2 : 16;
    hf_header *items = realloc(h->items, cap * sizeof *items);
    if (!items)
      return -1;
    h->items = items;
    h->capacity = cap;
  }
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return -1;
  }
  h->items[h->count++] = (hf_header){n, v};
  return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int hf_headers_add_line(hf_headers *h, const char *line, size_t len) {
  const char *colon = memchr(line, ':', len);
  if (!colon || colon == line)
    return 0;
  const char *value = colon + 1, *end = line + len;
  while (value < end && is_space(*value))
    value++;
  while (end > value && is_space(end[-1]))
    end--;
  char *name = strndup(line, (size_t)(colon - line));
  char *val = strndup(value, (size_t)(end - value));
  int rc = (name && val) ? hf_headers_add(h, name, val) : -1;
  free(name);
  free(val);
  return rc;
}

const char *hf_headers_get(const hf_headers *h, const char *name) {
  for (size_t i = 0; i < h->count; i++)
    if (strcasecmp(h->items[i].name, name) == 0)
      return h->items[i].value;
  return NULL;
}

void hf_headers_remove(hf_headers *h, const char *name) {
  size_t kept = 0;
  for (size_t i = 0; i < h->count; i++) {
    if (strcasecmp(h->items[i].name, name) == 0) {
      free(h->items[i].name);
      free(h->items[i].value);
    } else {
      h->items[kept++] = h->items[i];
    }
  }
  h->count = kept;
}

int hf_headers_copy(hf_headers *dst, const hf_headers *src) {
  for (size_t i = 0; src && i < src->count; i++)
    if (hf_headers_add(dst, src->items[i].name, src->items[i].value) != 0)
      return -1;
  return 0;
}

void hf_headers_clear(hf_headers *h) {
  for (size_t i = 0; i < h->count; i++) {
    free(h->items[i].name);
    free(h->items[i].value);
  }
  free(h->items);
  h->items = NULL;
  h->count = h->capacity = 0;
}
