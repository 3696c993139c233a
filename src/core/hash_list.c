/* The bulk lookup body parser (see hash_list.h): a recursive-descent walk over
 * exactly the JSON grammar, which keeps the "hashes" array and skips the rest. */
#include "hfscan/hash_list.h"

#include <stdlib.h>
#include <string.h>

/* Deeper nesting than any real body, shallow enough for the stack. */
#define MAX_DEPTH 32

typedef struct {
  const char *p, *end;
  size_t max_hashes;
  hf_hash_list *out;
  hf_hash_list_status status; /* the first failure */
  int seen_hashes;            /* the top object had a "hashes" key */
} parser;

static int fail(parser *ps, hf_hash_list_status status) {
  if (ps->status == HF_HASH_LIST_OK)
    ps->status = status;
  return 0;
}

static void skip_space(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hf_sha256_hex_lower(const char *text, size_t len, char out[65]) {
  if (len != 64)
    return 0;
  for (size_t i = 0; i < 64; i++) {
    if (!is_hex(text[i]))
      return 0;
    out[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] + 32 : text[i]);
  }
  out[64] = '\0';
  return 1;
}

/* A string at p ('"' first): its raw bytes between the quotes (escapes left
 * as they are; they are checked, not decoded: a hash has none). */
static int read_string(parser *ps, const char **start, size_t *len) {
  if (ps->p >= ps->end || *ps->p != '"')
    return fail(ps, HF_HASH_LIST_MALFORMED);
  const char *s = ++ps->p;
  while (ps->p < ps->end && *ps->p != '"') {
    unsigned char c = (unsigned char)*ps->p;
    if (c < 0x20)
      return fail(ps, HF_HASH_LIST_MALFORMED);
    if (c == '\\') {
      if (++ps->p >= ps->end)
        return fail(ps, HF_HASH_LIST_MALFORMED);
      if (*ps->p == 'u') {
        for (int i = 0; i < 4; i++)
          if (++ps->p >= ps->end || !is_hex(*ps->p))
            return fail(ps, HF_HASH_LIST_MALFORMED);
      } else if (!strchr("\"\\/bfnrt", *ps->p)) {
        return fail(ps, HF_HASH_LIST_MALFORMED);
      }
    }
    ps->p++;
  }
  if (ps->p >= ps->end)
    return fail(ps, HF_HASH_LIST_MALFORMED);
  *start = s;
  *len = (size_t)(ps->p - s);
  ps->p++;
  return 1;
}

static int skip_value(parser *ps, int depth);

static int skip_literal(parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return fail(ps, HF_HASH_LIST_MALFORMED);
  ps->p += n;
  return 1;
}

static int skip_digits(parser *ps) {
  const char *s = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
    ps->p++;
  return ps->p > s ? 1 : fail(ps, HF_HASH_LIST_MALFORMED);
}

static int skip_number(parser *ps) {
  if (ps->p < ps->end && *ps->p == '-')
    ps->p++;
  if (!skip_digits(ps))
    return 0;
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (!skip_digits(ps))
      return 0;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
      ps->p++;
    if (!skip_digits(ps))
      return 0;
  }
  return 1;
}

/* Walks "[ v, v ]" or "{ "k": v, ... }", calling each(ps, key, key_len,
 * index, depth) at every element (key NULL in an array). */
typedef int (*element_fn)(parser *ps, const char *key, size_t key_len, size_t index, int depth);

static int walk(parser *ps, char open, char close, int depth, element_fn each) {
  if (depth > MAX_DEPTH)
    return fail(ps, HF_HASH_LIST_MALFORMED);
  ps->p++; /* open */
  skip_space(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return 1;
  }
  for (size_t index = 0;; index++) {
    const char *key = NULL;
    size_t key_len = 0;
    skip_space(ps);
    if (open == '{') {
      if (!read_string(ps, &key, &key_len))
        return 0;
      skip_space(ps);
      if (ps->p >= ps->end || *ps->p++ != ':')
        return fail(ps, HF_HASH_LIST_MALFORMED);
      skip_space(ps);
    }
    if (!each(ps, key, key_len, index, depth))
      return 0;
    skip_space(ps);
    if (ps->p >= ps->end)
      return fail(ps, HF_HASH_LIST_MALFORMED);
    if (*ps->p == close) {
      ps->p++;
      return 1;
    }
    if (*ps->p++ != ',')
      return fail(ps, HF_HASH_LIST_MALFORMED);
  }
}

static int skip_element(parser *ps, const char *key, size_t key_len, size_t index, int depth) {
  (void)key, (void)key_len, (void)index;
  return skip_value(ps, depth + 1);
}

static int skip_value(parser *ps, int depth) {
  if (ps->p >= ps->end)
    return fail(ps, HF_HASH_LIST_MALFORMED);
  const char *s;
  size_t n;
  switch (*ps->p) {
  case '{':
    return walk(ps, '{', '}', depth, skip_element);
  case '[':
    return walk(ps, '[', ']', depth, skip_element);
  case '"':
    return read_string(ps, &s, &n);
  case 't':
    return skip_literal(ps, "true");
  case 'f':
    return skip_literal(ps, "false");
  case 'n':
    return skip_literal(ps, "null");
  default:
    return skip_number(ps);
  }
}

static int take_hash(parser *ps, const char *key, size_t key_len, size_t index, int depth) {
  (void)key, (void)key_len;
  const char *s;
  size_t n;
  if (ps->p >= ps->end || *ps->p != '"') {
    if (!skip_value(ps, depth + 1))
      return 0;
    ps->out->bad_index = index;
    return fail(ps, HF_HASH_LIST_BAD_HASH);
  }
  if (!read_string(ps, &s, &n))
    return 0;
  char lower[65];
  if (!hf_sha256_hex_lower(s, n, lower)) {
    ps->out->bad_index = index;
    return fail(ps, HF_HASH_LIST_BAD_HASH);
  }
  if (ps->out->count >= ps->max_hashes)
    return fail(ps, HF_HASH_LIST_TOO_MANY);
  memcpy(ps->out->hashes[ps->out->count++], lower, sizeof lower);
  return 1;
}

static int top_element(parser *ps, const char *key, size_t key_len, size_t index, int depth) {
  (void)index;
  if (key_len == 6 && memcmp(key, "hashes", 6) == 0)
    ps->seen_hashes = 1;
  if (key_len == 6 && memcmp(key, "hashes", 6) == 0 && ps->p < ps->end && *ps->p == '[') {
    ps->out->count = 0; /* a repeated key: the last one counts, as most parsers do */
    return walk(ps, '[', ']', depth + 1, take_hash);
  }
  if (key_len == 6 && memcmp(key, "hashes", 6) == 0) {
    if (!skip_value(ps, depth + 1))
      return 0;
    return fail(ps, HF_HASH_LIST_NO_HASHES);
  }
  return skip_value(ps, depth + 1);
}

hf_hash_list_status hf_hash_list_parse(const char *body, size_t len, size_t max_hashes,
                                       hf_hash_list *out) {
  memset(out, 0, sizeof *out);
  /* Each hash takes at least 67 bytes of the body ("...",), so this bounds
   * what may be needed by the body itself and by max_hashes. */
  size_t room = len / 67 + 1;
  if (room > max_hashes)
    room = max_hashes;
  out->hashes = malloc((room ? room : 1) * sizeof *out->hashes);
  if (!out->hashes)
    return HF_HASH_LIST_NO_MEMORY;
  parser ps = {body, body + len, room, out, HF_HASH_LIST_OK, 0};
  skip_space(&ps);
  if (ps.p >= ps.end || *ps.p != '{') {
    fail(&ps, HF_HASH_LIST_MALFORMED);
  } else if (walk(&ps, '{', '}', 0, top_element)) {
    skip_space(&ps);
    if (ps.p != ps.end)
      fail(&ps, HF_HASH_LIST_MALFORMED);
    else if (!ps.seen_hashes)
      fail(&ps, HF_HASH_LIST_NO_HASHES);
  }
  /* Room cut by the body's length is never reached (each hash takes 67 bytes
   * of it), so running out of room means more than max_hashes. */
  if (ps.status != HF_HASH_LIST_OK) {
    hf_hash_list_status status = ps.status;
    size_t bad = out->bad_index;
    hf_hash_list_free(out);
    out->bad_index = bad;
    return status;
  }
  return HF_HASH_LIST_OK;
}

void hf_hash_list_free(hf_hash_list *list) {
  free(list->hashes);
  list->hashes = NULL;
  list->count = 0;
}

const char *hf_hash_list_message(hf_hash_list_status status) {
  switch (status) {
  case HF_HASH_LIST_OK:
    return "ok";
  case HF_HASH_LIST_MALFORMED:
    return "the body is not a JSON object";
  case HF_HASH_LIST_NO_HASHES:
    return "the body has no \"hashes\" array";
  case HF_HASH_LIST_TOO_MANY:
    return "too many hashes";
  case HF_HASH_LIST_BAD_HASH:
    return "an element of \"hashes\" is not a SHA-256 (64 hex digits)";
  case HF_HASH_LIST_NO_MEMORY:
    return "out of memory";
  }
  return "unknown status";
}
