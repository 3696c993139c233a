/* The server's JSON writer: escapes, bytes that are not UTF-8, growth, take. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hfscan/json_buffer.h"

static char *string_of(const char *bytes, size_t len) {
  hf_json_buffer b = {0};
  hf_json_append_string(&b, bytes, len);
  return hf_json_take(&b, NULL);
}

static void check_string(const char *bytes, size_t len, const char *want) {
  char *got = string_of(bytes, len);
  CHECK(got && strcmp(got, want) == 0);
  free(got);
}

static void test_escapes(void) {
  check_string("plain/path.bin", 14, "\"plain/path.bin\"");
  check_string("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
  check_string("tab\tnl\n\x01", 8, "\"tab\\u0009nl\\u000a\\u0001\"");
  check_string("nul\0end", 7, "\"nul\\u0000end\"");
  check_string("", 0, "\"\"");
}

static void test_utf8(void) {
  check_string("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");           /* kept as it is */
  check_string("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""); /* four bytes */
  check_string("a\xff"
               "b",
               3,
               "\"a\xef\xbf\xbd"
               "b\"");                                                         /* not UTF-8 */
  check_string("\xc3", 1, "\"\xef\xbf\xbd\"");                                 /* cut short */
  check_string("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* overlong */
  check_string("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
}

static void test_growth_and_take(void) {
  hf_json_buffer b = {0};
  for (int i = 0; i < 10000; i++) {
    hf_json_append_integer(&b, i);
    hf_json_append_text(&b, ",");
  }
  size_t len = 0;
  char *text = hf_json_take(&b, &len);
  CHECK(text && len == strlen(text) && strncmp(text, "0,1,2,", 6) == 0);
  CHECK(strcmp(text + len - 5, "9999,") == 0);
  free(text);
  CHECK(b.data == NULL && b.len == 0);
  text = hf_json_take(&b, &len); /* empty: "" rather than NULL */
  CHECK(text && len == 0 && text[0] == '\0');
  free(text);
  hf_json_append_integer(&b, -9223372036854775807LL - 1);
  CHECK(strcmp(b.data, "-9223372036854775808") == 0);
  hf_json_cut(&b, 3); /* an answer begun, then taken back */
  CHECK(b.len == 3 && strcmp(b.data, "-92") == 0);
  hf_json_cut(&b, 10); /* past the end: nothing to take back */
  CHECK(b.len == 3);
  hf_json_free(&b);
}

int main(void) {
  test_escapes();
  test_utf8();
  test_growth_and_take();
  return check_report("test_json_buffer");
}
