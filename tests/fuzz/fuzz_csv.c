/* libFuzzer target: the CSV reader (src/core/csv.c). Every input must read to an
 * end or to a clean error, and every record it yields must survive a round trip
 * through the writer's quoting: what we write, we read back the same. */
#include <stdlib.h>
#include <string.h>

#include "hfscan/csv.h"

static int same_fields(const hf_csv_record *a, const hf_csv_record *b) {
  if (a->count != b->count)
    return 0;
  for (size_t i = 0; i < a->count; i++)
    if (a->lens[i] != b->lens[i] || memcmp(a->fields[i], b->fields[i], a->lens[i]) != 0)
      return 0;
  return 1;
}

/* A lone empty field is written as an empty line, which reads as no record at
 * all: the one row the format cannot carry. */
static int writable(const hf_csv_record *rec) {
  return !rec->is_comment && !(rec->count == 1 && rec->lens[0] == 0);
}

static void check_round_trip(const hf_csv_record *rec) {
  hf_buf text = {0};
  if (hf_csv_append_row(&text, (const char *const *)rec->fields, rec->lens, rec->count) != 0)
    abort();
  hf_csv_reader *again = hf_csv_reader_from_string(text.data, text.len);
  hf_csv_record copy = {0};
  char err[128];
  if (!again || hf_csv_reader_next(again, &copy, err, sizeof err) != 1)
    abort();
  if (!same_fields(rec, &copy) || !copy.terminated)
    abort();
  hf_csv_record_free(&copy);
  hf_csv_reader_close(again);
  hf_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  hf_csv_reader *reader = hf_csv_reader_from_string((const char *)data, size);
  if (!reader)
    return 0;
  hf_csv_record rec = {0};
  char err[128];
  long last_line = 0;
  while (hf_csv_reader_next(reader, &rec, err, sizeof err) == 1) {
    if (rec.count == 0 || rec.line <= last_line)
      abort(); /* a record has a field, and records move forward through the lines */
    last_line = rec.line;
    if (writable(&rec))
      check_round_trip(&rec);
  }
  hf_csv_record_free(&rec);
  hf_csv_reader_close(reader);
  return 0;
}
