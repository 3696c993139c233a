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
  test_append_and_blocks(dir);
  test_atomic_rewrite(dir);
  test_rename_keeps_writing(dir);
  test_failed_block(dir);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  return check_report("test_csv");
}
