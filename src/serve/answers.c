/* The database answers of `hfscan serve` (see serve_answers.h). */
#include "hfscan/serve_answers.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hf_answers {
  sqlite3 *db;
  sqlite3_stmt *lookup, *repo;
};

/* A reader waits this long for a writer's lock (a rollback-journal commit)
 * before the request fails with 503: every wait has a bound. */
#define BUSY_TIMEOUT_MS 2000
/* Pages are read through a mapping of the file rather than a pread(2) and a
 * copy each: a lookup touches a few pages scattered over the index, and at
 * tens of thousands of lookups a second the syscalls were a tenth of the time.
 * A bound, not a reservation: the mapping costs address space only. hfscan
 * never shrinks a database in place (db build renames a new one over it),
 * which a mapping must not see. */
#define MMAP_BYTES "4294967296"

/* How many virtual-machine steps run between two looks at the cut flag. */
#define PROGRESS_STEPS 1000

static int cut_requested(void *flag) { return atomic_load((const atomic_int *)flag); }

hf_answers *hf_answers_open(const char *database_uri, const char *lookup_sql, const char *repo_sql,
                            const atomic_int *cut, char *err, size_t err_len) {
  hf_answers *a = calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(database_uri, &a->db, flags, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(a->db, BUSY_TIMEOUT_MS);
    sqlite3_progress_handler(a->db, PROGRESS_STEPS, cut_requested, (void *)cut);
    rc = sqlite3_exec(a->db, "PRAGMA mmap_size=" MMAP_BYTES, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(a->db, lookup_sql, -1, SQLITE_PREPARE_PERSISTENT, &a->lookup, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v3(a->db, repo_sql, -1, SQLITE_PREPARE_PERSISTENT, &a->repo, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, err_len, "%s", a->db ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
    hf_answers_close(a);
    return NULL;
  }
  return a;
}

void hf_answers_close(hf_answers *a) {
  if (!a)
    return;
  sqlite3_finalize(a->lookup);
  sqlite3_finalize(a->repo);
  sqlite3_close(a->db);
  free(a);
}

const char *hf_answers_error(hf_answers *a) { return sqlite3_errmsg(a->db); }

int hf_answers_begin(hf_answers *a) {
  return sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

void hf_answers_end(hf_answers *a) {
  if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

void hf_answers_message(hf_json_buffer *out, const char *message, const char *query) {
  hf_json_append_text(out, "{\"message\":");
  hf_json_append_string(out, message, strlen(message));
  hf_json_append_text(out, ",\"query\":");
  hf_json_append_string(out, query, strlen(query));
  hf_json_append_text(out, "}");
}

static void append_value(hf_json_buffer *out, sqlite3_stmt *s, int col) {
  switch (sqlite3_column_type(s, col)) {
  case SQLITE_INTEGER:
    hf_json_append_integer(out, sqlite3_column_int64(s, col));
    break;
  case SQLITE_FLOAT: {
    double value = sqlite3_column_double(s, col);
    char text[32];
    int n = snprintf(text, sizeof text, "%.17g", value);
    if (isfinite(value))
      hf_json_append(out, text, (size_t)n);
    else
      hf_json_append_text(out, "null"); /* JSON has no infinity nor NaN */
    break;
  }
  default: {
    const char *text = (const char *)sqlite3_column_text(s, col);
    hf_json_append_string(out, text ? text : "", (size_t)sqlite3_column_bytes(s, col));
  }
  }
}

/* The current row as an object of its non-NULL columns. */
static void append_row(hf_json_buffer *out, sqlite3_stmt *s) {
  int first = 1;
  for (int col = 0; col < sqlite3_column_count(s); col++) {
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
      continue;
    hf_json_append_text(out, first ? "{" : ",");
    const char *name = sqlite3_column_name(s, col);
    hf_json_append_string(out, name, strlen(name));
    hf_json_append(out, ":", 1);
    append_value(out, s, col);
    first = 0;
  }
  hf_json_append_text(out, first ? "{}" : "}");
}

static int column_named(sqlite3_stmt *s, const char *name) {
  for (int col = 0; col < sqlite3_column_count(s); col++)
    if (strcmp(sqlite3_column_name(s, col), name) == 0)
      return col;
  return -1;
}

/* What hashlookup's clients read of a known file, taken from its first
 * occurrence (the rows are in a stable order): its name and its size, which
 * hashlookup gives as a string. */
typedef struct {
  char *file_name;
  long long file_size;
  int has_size;
} first_occurrence;

static void note_first(first_occurrence *f, sqlite3_stmt *s) {
  int name = column_named(s, "filename"), size = column_named(s, "file_size");
  const char *text = name >= 0 ? (const char *)sqlite3_column_text(s, name) : NULL;
  if (text)
    f->file_name = strdup(text);
  if (size >= 0 && sqlite3_column_type(s, size) == SQLITE_INTEGER) {
    f->file_size = sqlite3_column_int64(s, size);
    f->has_size = 1;
  }
}

/* Steps s, appending each row to out as an array element; returns the number
 * of rows, or -1 on an SQLite error. first (may be NULL) gets the first row. */
static long append_rows(hf_json_buffer *out, sqlite3_stmt *s, first_occurrence *first) {
  long rows = 0;
  int rc;
  hf_json_append(out, "[", 1);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (rows == 0 && first)
      note_first(first, s);
    if (rows > 0)
      hf_json_append(out, ",", 1);
    append_row(out, s);
    rows++;
  }
  hf_json_append(out, "]", 1);
  return rc == SQLITE_DONE ? rows : -1;
}

/* Runs statement s with ?1 = text into scratch; the row count or -1. */
static long run_into(sqlite3_stmt *s, const char *text, hf_json_buffer *scratch,
                     first_occurrence *first) {
  sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
  long rows = append_rows(scratch, s, first);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rows;
}

static void append_hashlookup_fields(hf_json_buffer *out, const char *sha256,
                                     const first_occurrence *first) {
  char upper[65];
  for (int i = 0; i < 64; i++)
    upper[i] = (char)(sha256[i] >= 'a' ? sha256[i] - 'a' + 'A' : sha256[i]);
  upper[64] = '\0';
  hf_json_append_text(out, "{\"SHA-256\":\"");
  hf_json_append(out, upper, 64);
  hf_json_append_text(out, "\",\"source\":\"hfscan\"");
  if (first->file_name) {
    hf_json_append_text(out, ",\"FileName\":");
    hf_json_append_string(out, first->file_name, strlen(first->file_name));
  }
  if (first->has_size) {
    hf_json_append_text(out, ",\"FileSize\":\"");
    hf_json_append_integer(out, first->file_size);
    hf_json_append_text(out, "\"");
  }
}

static hf_answer_status status_of(long rows) {
  return rows < 0 ? HF_ANSWER_FAILED : rows == 0 ? HF_ANSWER_UNKNOWN : HF_ANSWER_FOUND;
}

hf_answer_status hf_answers_lookup(hf_answers *a, const char *sha256, hf_json_buffer *out) {
  hf_json_buffer occurrences = {0};
  first_occurrence first = {0};
  long rows = run_into(a->lookup, sha256, &occurrences, &first);
  hf_answer_status status = status_of(rows);
  if (status == HF_ANSWER_UNKNOWN)
    hf_answers_message(out, "Non existing SHA-256", sha256);
  if (status == HF_ANSWER_FOUND) {
    append_hashlookup_fields(out, sha256, &first);
    hf_json_append_text(out, ",\"hash\":\"");
    hf_json_append(out, sha256, 64);
    hf_json_append_text(out, "\",\"known\":true,\"occurrences\":");
    hf_json_append(out, occurrences.data, occurrences.len);
    hf_json_append(out, "}", 1);
  }
  if (occurrences.failed)
    out->failed = 1;
  free(first.file_name);
  hf_json_free(&occurrences);
  return status;
}

hf_answer_status hf_answers_repo(hf_answers *a, const char *repo, hf_json_buffer *out) {
  hf_json_buffer files = {0};
  long rows = run_into(a->repo, repo, &files, NULL);
  hf_answer_status status = status_of(rows);
  if (status == HF_ANSWER_UNKNOWN)
    hf_answers_message(out, "Non existing repo", repo);
  if (status == HF_ANSWER_FOUND) {
    hf_json_append_text(out, "{\"repo_id\":");
    hf_json_append_string(out, repo, strlen(repo));
    hf_json_append_text(out, ",\"files\":");
    hf_json_append(out, files.data, files.len);
    hf_json_append(out, "}", 1);
  }
  if (files.failed)
    out->failed = 1;
  hf_json_free(&files);
  return status;
}
