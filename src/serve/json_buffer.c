/* The server's JSON writer (see json_buffer.h). */
#include "hfscan/json_buffer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(hf_json_buffer *b, size_t more) {
  if (b->failed)
    return 0;
  if (b->len + more + 1 <= b->cap)
    return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *grown = realloc(b->data, cap);
  if (!grown) {
    b->failed = 1;
    return 0;
  }
  b->data = grown;
  b->cap = cap;
  return 1;
}

void hf_json_append(hf_json_buffer *b, const char *bytes, size_t len) {
  if (!reserve(b, len))
    return;
  memcpy(b->data + b->len, bytes, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void hf_json_append_text(hf_json_buffer *b, const char *text) {
  hf_json_append(b, text, strlen(text));
}

/* The length of the well-formed UTF-8 sequence at s (at most left bytes), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t left) {
  size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
  if (s[0] > 0xF4 || n == 0 || n > left)
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  /* Overlong three- and four-byte forms, surrogates, and beyond U+10FFFF. */
  if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
      (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
    return 0;
  return n;
}

void hf_json_append_string(hf_json_buffer *b, const char *bytes, size_t len) {
  const unsigned char *s = (const unsigned char *)bytes;
  hf_json_append(b, "\"", 1);
  size_t plain = 0; /* the start of the run of bytes copied as they are */
  for (size_t i = 0; i < len;) {
    const char *escape = NULL;
    char control[8];
    size_t width = 1;
    if (s[i] == '"')
      escape = "\\\"";
    else if (s[i] == '\\')
      escape = "\\\\";
    else if (s[i] < 0x20) {
      snprintf(control, sizeof control, "\\u%04x", s[i]);
      escape = control;
    } else if (s[i] >= 0x80) {
      width = utf8_sequence(s + i, len - i);
      if (width == 0) {
        escape = "\xEF\xBF\xBD";
        width = 1;
      }
    }
    if (escape) {
      hf_json_append(b, bytes + plain, i - plain);
      hf_json_append_text(b, escape);
      plain = i + width;
    }
    i += width;
  }
  hf_json_append(b, bytes + plain, len - plain);
  hf_json_append(b, "\"", 1);
}

void hf_json_append_integer(hf_json_buffer *b, long long value) {
  char text[24];
  int n = snprintf(text, sizeof text, "%lld", value);
  hf_json_append(b, text, (size_t)n);
}

void hf_json_cut(hf_json_buffer *b, size_t len) {
  if (len < b->len) {
    b->len = len;
    b->data[len] = '\0';
  }
}

char *hf_json_take(hf_json_buffer *b, size_t *len) {
  char *text = b->failed ? NULL : b->data;
  if (!text && !b->failed)
    text = calloc(1, 1);
  if (text && len)
    *len = b->len;
  if (b->failed)
    free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
  return text;
}

void hf_json_free(hf_json_buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}
