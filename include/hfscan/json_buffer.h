/* A growable buffer that the server writes its JSON answers into. A failed
 * allocation is remembered (failed), not reported at every append: the caller
 * checks once, before handing the text out. */
#ifndef HFSCAN_JSON_BUFFER_H
#define HFSCAN_JSON_BUFFER_H

#include <stddef.h>

typedef struct {
  char *data;
  size_t len, cap;
  int failed;
} hf_json_buffer;

void hf_json_append(hf_json_buffer *b, const char *bytes, size_t len);
void hf_json_append_text(hf_json_buffer *b, const char *text);
/* A JSON string of len bytes: quotes, and escapes for '"', '\\' and control
 * characters. Bytes that are not UTF-8 are written as U+FFFD, so the answer
 * stays valid JSON whatever a name holds. */
void hf_json_append_string(hf_json_buffer *b, const char *bytes, size_t len);
void hf_json_append_integer(hf_json_buffer *b, long long value);
/* Takes back what was appended after the first len bytes (an answer begun
 * before it was known to exist). */
void hf_json_cut(hf_json_buffer *b, size_t len);
/* Hands the text out (NUL-terminated, the caller frees it), or NULL when an
 * allocation failed; the buffer is empty afterwards. */
char *hf_json_take(hf_json_buffer *b, size_t *len);
void hf_json_free(hf_json_buffer *b);

#endif
