/* libFuzzer target: the response header-line parser (src/core/http_headers.c), fed
 * line by line as libcurl hands a server's header block over. */
#include <stdlib.h>
#include <string.h>

#include "hfscan/http_headers.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* For a line without NUL bytes (libcurl refuses those) the parse is exact: the
 * name is all before the first ':', the value the rest without surrounding blanks. */
static void check_line(const hf_headers *h, size_t before, const char *line, size_t len) {
  const char *colon = memchr(line, ':', len);
  int has_nul = memchr(line, '\0', len) != NULL;
  if (!colon || colon == line) {
    if (h->count != before)
      abort(); /* not a header line: nothing added */
    return;
  }
  if (h->count != before + 1)
    abort();
  const hf_header *added = &h->items[before];
  size_t value_len = strlen(added->value);
  if (value_len && is_space(added->value[0]))
    abort();
  if (has_nul)
    return;
  if (strlen(added->name) != (size_t)(colon - line) || memcmp(added->name, line, colon - line))
    abort();
  if (value_len && is_space(added->value[value_len - 1]))
    abort();
}

/* Every name finds a value, a copy holds the same, and a removed name is gone. */
static void check_list(hf_headers *h) {
  for (size_t i = 0; i < h->count; i++)
    if (!hf_headers_get(h, h->items[i].name))
      abort();
  hf_headers copy = {0};
  if (hf_headers_copy(&copy, h) != 0 || copy.count != h->count)
    abort();
  if (copy.count > 0) {
    char *name = strdup(copy.items[0].name);
    hf_headers_remove(&copy, name);
    if (hf_headers_get(&copy, name))
      abort();
    free(name);
  }
  hf_headers_clear(&copy);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  hf_headers h = {0};
  const char *text = (const char *)data, *end = text + size;
  while (text < end) {
    const char *nl = memchr(text, '\n', (size_t)(end - text));
    size_t len = nl ? (size_t)(nl - text) + 1 : (size_t)(end - text);
    /* A copy of just the line, so that reading past it is caught. */
    char *line = malloc(len ? len : 1);
    memcpy(line, text, len);
    size_t before = h.count;
    if (hf_headers_add_line(&h, line, len) != 0)
      abort();
    check_line(&h, before, line, len);
    free(line);
    text += len;
  }
  check_list(&h);
  hf_headers_clear(&h);
  return 0;
}
