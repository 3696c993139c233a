/* CSV: hostile values round-trip, the comment block, torn rows, the atomic
 * rewrite, and a block the file system refuses half-way. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hfscan/csv.h"

static const char *hostile[] = {
    "plain",  "with,comma", "with \"quotes\"", "line\nbreak",       "cr\r\nlf", "",  " lead",
    "trail ", "=SUM(A1)",   "v2#final.bin",    "ünïcødé/模型.gguf", "\"",       ",",
};
#define N_HOSTILE (sizeof hostile / sizeof *hostile)

static void test_field_quoting(void) {
  hf_buf b = {0};
  const char *fields[] = {"a", "b,c", "d\"e", ""};
  size_t lens[] = {1, 3, 3, 0};
  CHECK(hf_csv_append_row(&b, fields, lens, 4) == 0);
  CHECK_STR(b.data, "a,\"b,c\",\"d\"\"e\",\r\n");
  hf_buf_free(&b);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

static void test_round_trip(const char *dir) {
  char path[256];
  snprintf(path, sizeof path, "%s/round.csv", dir);
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_CREATE, NULL, 0);
  CHECK(w != NULL);
  hf_csv_writer_comment(w, "SCAN_PARAMETERS");
  hf_csv_writer_comment(w, "download_threshold: 10");
  const char *header[] = {"hash", "filename"};
  size_t header_lens[] = {4, 8};
  hf_csv_writer_row(w, header, header_lens, 2);
  for (size_t i = 0; i < N_HOSTILE; i++) {
    const char *row[] = {hostile[i], "#not-a-comment"};
    size_t lens[] = {strlen(hostile[i]), 14};
    hf_csv_writer_row(w, row, lens, 2);
  }
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);

  char err[256];
  hf_csv_reader *r = hf_csv_reader_open(path, err, sizeof err);
  hf_csv_record rec = {0};
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(rec.is_comment && strcmp(rec.fields[0], "SCAN_PARAMETERS") == 0);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK_STR(rec.fields[0], "download_threshold: 10");
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(!rec.is_comment && rec.count == 2);
  CHECK_STR(rec.fields[1], "filename");
  for (size_t i = 0; i < N_HOSTILE; i++) {
    CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
    CHECK(rec.count == 2 && !rec.is_comment && rec.terminated);
    CHECK(rec.lens[0] == strlen(hostile[i]) && memcmp(rec.fields[0], hostile[i], rec.lens[0]) == 0);
    CHECK_STR(rec.fields[1], "#not-a-comment");
  }
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 0);
  hf_csv_record_free(&rec);
  hf_csv_reader_close(r);
}

static void test_torn_rows(const char *dir) {
  char path[256], err[256];
  snprintf(path, sizeof path, "%s/torn.csv", dir);
  hf_csv_record rec = {0};

  /* A last line without its line break reads, marked unterminated. */
  write_text(path, "a,b\r\n1,2\r\n3,");
  hf_csv_reader *r = hf_csv_reader_open(path, err, sizeof err);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1 && rec.terminated);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1 && rec.terminated);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(!rec.terminated && rec.count == 2 && rec.line == 3);
  hf_csv_reader_close(r);

  /* A quoted field cut off is an error naming the line. */
  write_text(path, "a,b\r\n\"x,y\r\n");
  r = hf_csv_reader_open(path, err, sizeof err);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == -1);
  CHECK_STR(err, "line 2: quoted field not closed before the end of the file");
  hf_csv_reader_close(r);

  /* '#' lines after the column header are data, not comments. */
  write_text(path, "# c\nh\n#x\n");
  r = hf_csv_reader_open(path, err, sizeof err);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1 && rec.is_comment);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1 && !rec.is_comment);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1 && !rec.is_comment);
  CHECK_STR(rec.fields[0], "#x");
  hf_csv_reader_close(r);
  hf_csv_record_free(&rec);
}

/* ---- reading in blocks ---- */

/* Appends s to out with CR and LF shown as \r and \n. */
static void append_shown(hf_buf *out, const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\r' || s[i] == '\n')
      hf_buf_append(out, s[i] == '\r' ? "\\r" : "\\n", 2);
    else
      hf_buf_append(out, s + i, 1);
  }
}

/* Everything a reader gives, one line per record: "<line> <c|r> <t|u> [field]...",
 * c for a comment, t for terminated; an error as "error: <message>". */
static char *read_all(hf_csv_reader *r) {
  hf_buf out = {0};
  hf_csv_record rec = {0};
  char err[256], head[64];
  int rc;
  while ((rc = hf_csv_reader_next(r, &rec, err, sizeof err)) != 0) {
    if (rc < 0) {
      snprintf(head, sizeof head, "error: ");
      hf_buf_append(&out, head, strlen(head));
      hf_buf_append(&out, err, strlen(err));
      hf_buf_append(&out, "\n", 1);
      break;
    }
    snprintf(head, sizeof head, "%ld %c %c", rec.line, rec.is_comment ? 'c' : 'r',
             rec.terminated ? 't' : 'u');
    hf_buf_append(&out, head, strlen(head));
    for (size_t i = 0; i < rec.count; i++) {
      CHECK(rec.fields[i][rec.lens[i]] == '\0');
      hf_buf_append(&out, " [", 2);
      append_shown(&out, rec.fields[i], rec.lens[i]);
      hf_buf_append(&out, "]", 1);
    }
    hf_buf_append(&out, "\n", 1);
  }
  hf_csv_record_free(&rec);
  hf_csv_reader_close(r);
  hf_buf_append(&out, "", 0);
  return out.data;
}

/* Reads text from memory and from a file, in the default blocks and in blocks of
 * 1 to 7 bytes (so that a boundary falls between every two bytes, among them
 * inside each CRLF and each doubled quote), and checks each read gives expected. */
static void check_every_split(const char *dir, const char *text, size_t len, const char *expected) {
  char path[256];
  snprintf(path, sizeof path, "%s/split.csv", dir);
  FILE *f = fopen(path, "wb");
  fwrite(text, 1, len, f);
  fclose(f);
  for (size_t block = 0; block <= 7; block++) {
    for (int from_file = 0; from_file <= 1; from_file++) {
      hf_csv_reader *r =
          from_file ? hf_csv_reader_open(path, NULL, 0) : hf_csv_reader_from_string(text, len);
      CHECK(r != NULL);
      if (block)
        CHECK(hf_csv_reader_set_block_size(r, block) == 0);
      char *got = read_all(r);
      if (strcmp(got, expected) != 0)
        fprintf(stderr, "blocks of %zu bytes (0: the default), %s:\n", block,
                from_file ? "file" : "memory");
      CHECK_STR(got, expected);
      free(got);
    }
  }
}

#define SPLIT(dir, text, expected) check_every_split(dir, text, sizeof text - 1, expected)

static void test_block_boundaries(const char *dir) {
  /* Quoted fields holding CRLF, a doubled quote and commas; the last line has no
   * line break. */
  SPLIT(dir, "a,b\r\n\"x\r\ny\",\"q\"\"q,\"\r\n3,\"\"\r\n4,5",
        "1 r t [a] [b]\n2 r t [x\\r\\ny] [q\"q,]\n4 r t [3] []\n5 r u [4] [5]\n");
  /* The comment block (one space after '#' dropped), blank lines, then '#' as data. */
  SPLIT(dir, "# c1\r\n#  c2\n\r\n\r\nh1,h2\r\n#x,\"#\"\r\n",
        "1 c t [c1]\n2 c t [ c2]\n5 r t [h1] [h2]\n6 r t [#x] [#]\n");
  /* Bare LF, a lone CR, text after a closing quote, a quote inside plain text,
   * and a trailing comma at the very end. */
  SPLIT(dir, "a\nb\rc\r\r\n\"q\"x,y\"z\n\"\",",
        "1 r t [a]\n2 r t [b]\n3 r t [c]\n5 r t [qx] [y\"z]\n6 r u [] []\n");
  /* A comment at the end without its line break, and an empty input. */
  SPLIT(dir, "# only", "1 c u [only]\n");
  SPLIT(dir, "", "");
  /* A torn row: the quoted field runs to the end; the line counts the break inside. */
  SPLIT(dir, "h\r\n\"abc\r\nde\r\n\"\"",
        "1 r t [h]\nerror: line 2: quoted field not closed before the end of the file\n");
  SPLIT(dir, "h\r\n\"a\nb\nc\",d\r\n\"e\"\r\n", "1 r t [h]\n2 r t [a\\nb\\nc] [d]\n5 r t [e]\n");
}

/* Fields longer than the default block, quoted and not, each read whole. */
static void test_long_fields(const char *dir) {
  enum { LONG = 600 * 1024 };
  char *text = malloc(2 * LONG + 16);
  size_t n = 0;
  memset(text, 'x', LONG);
  n += LONG;
  memcpy(text + n, ",\"", 2);
  n += 2;
  memset(text + n, 'y', LONG);
  text[n + LONG / 2] = '\n';
  n += LONG;
  memcpy(text + n, "\"\r\nz", 4);
  n += 4;
  char path[256];
  snprintf(path, sizeof path, "%s/long.csv", dir);
  FILE *f = fopen(path, "wb");
  fwrite(text, 1, n, f);
  fclose(f);
  hf_csv_reader *r = hf_csv_reader_open(path, NULL, 0);
  hf_csv_record rec = {0};
  char err[256];
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(rec.count == 2 && rec.line == 1 && rec.terminated);
  CHECK(rec.lens[0] == LONG && memcmp(rec.fields[0], text, LONG) == 0);
  CHECK(rec.lens[1] == LONG && memcmp(rec.fields[1], text + LONG + 2, LONG) == 0);
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 1);
  CHECK(rec.count == 1 && rec.line == 3 && !rec.terminated && rec.fields[0][0] == 'z');
  CHECK(hf_csv_reader_next(r, &rec, err, sizeof err) == 0);
  hf_csv_record_free(&rec);
  hf_csv_reader_close(r);
  free(text);
}

/* The block size is fixed once reading has begun. */
static void test_block_size_is_fixed(void) {
  hf_csv_reader *r = hf_csv_reader_from_string("a\r\nb\r\n", 6);
  CHECK(hf_csv_reader_set_block_size(r, 0) == -1);
  hf_csv_record rec = {0};
  CHECK(hf_csv_reader_next(r, &rec, NULL, 0) == 1);
  CHECK(hf_csv_reader_set_block_size(r, 2) == -1);
  CHECK(hf_csv_reader_next(r, &rec, NULL, 0) == 1 && rec.fields[0][0] == 'b');
  hf_csv_record_free(&rec);
  hf_csv_reader_close(r);
}

/* Each record's offset is where the next begins, in every block size (so a
 * block boundary falls inside each CRLF), and a seek to one of them reads on
 * from that record, counting lines from 1. */
static void test_offsets_and_seek(const char *dir) {
  static const char text[] = "# c\r\nh\r\n\"a\r\nb\",1\r\nc,2\nd,3\r\n";
  const long long after[] = {5, 8, 18, 22, 27};
  char path[256];
  snprintf(path, sizeof path, "%s/offsets.csv", dir);
  write_text(path, text);
  for (size_t block = 1; block <= 8; block++) {
    hf_csv_reader *r = hf_csv_reader_open(path, NULL, 0);
    CHECK(hf_csv_reader_set_block_size(r, block) == 0);
    CHECK(hf_csv_reader_offset(r) == 0);
    hf_csv_record rec = {0};
    for (int i = 0; i < 5; i++) {
      CHECK(hf_csv_reader_next(r, &rec, NULL, 0) == 1);
      CHECK(hf_csv_reader_offset(r) == after[i]);
    }
    CHECK(hf_csv_reader_next(r, &rec, NULL, 0) == 0);
    CHECK(hf_csv_reader_seek(r, after[2]) == 0);
    CHECK(hf_csv_reader_next(r, &rec, NULL, 0) == 1);
    CHECK(rec.count == 2 && rec.line == 1 && rec.fields[0][0] == 'c' && !rec.is_comment);
    CHECK(hf_csv_reader_offset(r) == after[3]);
    hf_csv_record_free(&rec);
    hf_csv_reader_close(r);
  }
  hf_csv_reader *m = hf_csv_reader_from_string(text, sizeof text - 1);
  CHECK(hf_csv_reader_seek(m, 0) == EINVAL);
  hf_csv_reader_close(m);
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_APPEND, NULL, 0);
  CHECK(hf_csv_writer_size(w) == (long long)sizeof text - 1);
  const char *f[] = {"e"};
  const size_t lens[] = {1};
  CHECK(hf_csv_writer_row(w, f, lens, 1) == 0);
  CHECK(hf_csv_writer_size(w) == (long long)sizeof text - 1); /* queued, not yet written */
  CHECK(hf_csv_writer_flush(w) == 0);
  CHECK(hf_csv_writer_size(w) == (long long)sizeof text + 2);
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);
}

static void test_append_and_blocks(const char *dir) {
  char path[256];
  snprintf(path, sizeof path, "%s/append.csv", dir);
  write_text(path, "h\r\n");
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_APPEND, NULL, 0);
  const char *f[] = {"x"};
  size_t l[] = {1};
  hf_csv_writer_row(w, f, l, 1);
  /* Queued rows are not in the file until the block is flushed. */
  CHECK_STR(read_file(path), "h\r\n");
  CHECK(hf_csv_writer_flush(w) == 0);
  CHECK_STR(read_file(path), "h\r\nx\r\n");
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);
}

/* A writer renamed part-way goes on writing to the same file, under its new name,
 * and names it so in its messages. */
static void test_rename_keeps_writing(const char *dir) {
  char path[256], final[256];
  snprintf(path, sizeof path, "%s/made.csv.tmp", dir);
  snprintf(final, sizeof final, "%s/made.csv", dir);
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_CREATE, NULL, 0);
  const char *f[] = {"h"};
  size_t l[] = {1};
  hf_csv_writer_row(w, f, l, 1);
  CHECK(hf_csv_writer_flush(w) == 0);
  CHECK(hf_csv_writer_rename(w, final, NULL, 0) == 0);
  CHECK(access(path, F_OK) != 0);
  CHECK_STR(hf_csv_writer_path(w), final);
  hf_csv_writer_row(w, f, l, 1);
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);
  CHECK_STR(read_file(final), "h\r\nh\r\n");
  char err[256];
  w = hf_csv_writer_open(path, HF_CSV_CREATE, NULL, 0);
  CHECK(hf_csv_writer_rename(w, "/nonexistent/dir/x.csv", err, sizeof err) != 0);
  CHECK(strstr(err, "cannot rename") != NULL);
  hf_csv_writer_abort(w);
}

/* A block that the file system refuses half-way (here RLIMIT_FSIZE: a partial
 * write, then EFBIG, as a full disk gives a partial write, then ENOSPC) must leave
 * no torn row, and the retry must write the block once. */
static void check_failed_block_is_cut_off(const char *path, hf_csv_open_mode mode) {
  write_text(path, "h\r\n");
  hf_csv_writer *w = hf_csv_writer_open(path, mode, NULL, 0);
  if (mode != HF_CSV_APPEND) { /* CREATE and REWRITE start empty: write the header first */
    CHECK(hf_csv_writer_row_raw(w, "h\r\n", 3) == 0 && hf_csv_writer_flush(w) == 0);
  }
  const char *f[] = {"first row", "0123456789"};
  size_t l[] = {9, 10};
  hf_csv_writer_row(w, f, l, 2);
  hf_csv_writer_row(w, f, l, 2);
  const char *written = mode == HF_CSV_REWRITE ? hf_csv_writer_temp_path(w) : path;

  struct rlimit saved, small;
  getrlimit(RLIMIT_FSIZE, &saved);
  small = saved;
  small.rlim_cur = 3 + 30; /* room for the header and most of the first row */
  setrlimit(RLIMIT_FSIZE, &small);
  CHECK(hf_csv_writer_flush(w) == EFBIG);
  setrlimit(RLIMIT_FSIZE, &saved);
  CHECK_STR(read_file(written), "h\r\n");

  CHECK(hf_csv_writer_flush(w) == 0);
  CHECK_STR(read_file(written), "h\r\nfirst row,0123456789\r\nfirst row,0123456789\r\n");
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);
  CHECK_STR(read_file(path), "h\r\nfirst row,0123456789\r\nfirst row,0123456789\r\n");
}

static void test_failed_block(const char *dir) {
  signal(SIGXFSZ, SIG_IGN); /* the over-limit write then fails with EFBIG instead */
  char path[256];
  snprintf(path, sizeof path, "%s/full.csv", dir);
  check_failed_block_is_cut_off(path, HF_CSV_APPEND);
  check_failed_block_is_cut_off(path, HF_CSV_CREATE);
  check_failed_block_is_cut_off(path, HF_CSV_REWRITE);
}

static void test_atomic_rewrite(const char *dir) {
  char path[256];
  snprintf(path, sizeof path, "%s/rewrite.csv", dir);
  write_text(path, "old\r\n");
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_REWRITE, NULL, 0);
  const char *f[] = {"new"};
  size_t l[] = {3};
  hf_csv_writer_row(w, f, l, 1);
  hf_csv_writer_flush(w);
  char temp[256];
  snprintf(temp, sizeof temp, "%s", hf_csv_writer_temp_path(w));
  CHECK(strncmp(temp, path, strlen(path)) == 0 && access(temp, F_OK) == 0);
  CHECK_STR(read_file(path), "old\r\n"); /* untouched until commit */
  CHECK(hf_csv_writer_commit(w, NULL, 0) == 0);
  CHECK_STR(read_file(path), "new\r\n");
  CHECK(access(temp, F_OK) != 0);

  w = hf_csv_writer_open(path, HF_CSV_REWRITE, NULL, 0);
  snprintf(temp, sizeof temp, "%s", hf_csv_writer_temp_path(w));
  hf_csv_writer_abort(w);
  CHECK(access(temp, F_OK) != 0);
  CHECK_STR(read_file(path), "new\r\n");

  char err[256];
  CHECK(hf_csv_writer_open("/nonexistent/dir/x.csv", HF_CSV_CREATE, err, sizeof err) == NULL);
  CHECK_STR(err, "cannot open /nonexistent/dir/x.csv: No such file or directory");
}

int main(void) {
  char dir[] = "/tmp/hfscan-csv-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  test_field_quoting();
  test_round_trip(dir);
  test_torn_rows(dir);
  test_block_boundaries(dir);
  test_long_fields(dir);
  test_block_size_is_fixed();
  test_append_and_blocks(dir);
  test_offsets_and_seek(dir);
  test_atomic_rewrite(dir);
  test_rename_keeps_writing(dir);
  test_failed_block(dir);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  return check_report("test_csv");
}
