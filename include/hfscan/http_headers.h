/* An ordered list of HTTP header fields; repeated names are kept. */
#ifndef HFSCAN_HTTP_HEADERS_H
#define HFSCAN_HTTP_HEADERS_H

#include <stddef.h>

typedef struct hf_header {
  char *name;
  char *value;
} hf_header;

typedef struct hf_headers {
  hf_header *items;
  size_t count;
  size_t capacity;
} hf_headers;

/* Returns 0, or -1 when memory runs out. */
int hf_headers_add(hf_headers *h, const char *name, const char *value);
/* Parses one "Name: value" line (CRLF optional); other lines are ignored. */
int hf_headers_add_line(hf_headers *h, const char *line, size_t len);
/* First value of a field, matching the name case-insensitively, or NULL. */
const char *hf_headers_get(const hf_headers *h, const char *name);
void hf_headers_remove(hf_headers *h, const char *name);
int hf_headers_copy(hf_headers *dst, const hf_headers *src);
void hf_headers_clear(hf_headers *h);

#endif
