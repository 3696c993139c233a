/* libFuzzer target: the CSV reader (src/core/csv.c). Every input must read to an
 * end or to a clean error, every record it yields must survive a round trip
 * through the writer's quoting (what we write, we read back the same), and a
 * read in blocks of one byte must give what a read in the default blocks gives,
 * record for record and error for error. */
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

static int same_record(const hf_csv_record *a, const hf_csv_record *b) {
  return a->is_comment == b->is_comment && a->terminated == b->terminated && a->line == b->line &&
         same_fields(a, b);
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
  hf_csv_reader *bytewise = hf_csv_reader_from_string((const char *)data, size);
  if (!reader || !bytewise || hf_csv_reader_set_block_size(bytewise, 1) != 0)
    abort();
  hf_csv_record rec = {0}, rec1 = {0};
  char err[128], err1[128];
  long last_line = 0;
  for (;;) {
    int rc = hf_csv_reader_next(reader, &rec, err, sizeof err);
    if (hf_csv_reader_next(bytewise, &rec1, err1, sizeof err1) != rc)
      abort(); /* a block boundary changed what was read */
    if (rc < 0 && strcmp(err, err1) != 0)
      abort();
    if (rc != 1)
      break;
    if (!same_record(&rec, &rec1))
      abort();
    if (rec.count == 0 || rec.line <= last_line)
      abort(); /* a record has a field, and records move forward through the lines */
    last_line = rec.line;
    if (writable(&rec))
      check_round_trip(&rec);
  }
  hf_csv_record_free(&rec);
  hf_csv_record_free(&rec1);
  hf_csv_reader_close(reader);
  hf_csv_reader_close(bytewise);
  return 0;
}
