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
  int name_column, size_column; /* of lookup's rows: what hashlookup's fields take */
};

static int column_named(sqlite3_stmt *s, const char *name) {
  for (int col = 0; col < sqlite3_column_count(s); col++)
    if (strcmp(sqlite3_column_name(s, col), name) == 0)
      return col;
  return -1;
}

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
  if (rc == SQLITE_OK) {
    a->name_column = column_named(a->lookup, "filename");
    a->size_column = column_named(a->lookup, "file_size");
  }
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

/* What hashlookup's clients read of a known file, taken from its first
 * occurrence (the rows are in a stable order): its name and its size, which
 * hashlookup gives as a string. */
typedef struct {
  char *file_name;
  long long file_size;
  int has_size;
} first_occurrence;

static void note_first(hf_answers *a, first_occurrence *f, sqlite3_stmt *s) {
  const char *text =
      a->name_column >= 0 ? (const char *)sqlite3_column_text(s, a->name_column) : NULL;
  if (text)
    f->file_name = strdup(text);
  if (a->size_column >= 0 && sqlite3_column_type(s, a->size_column) == SQLITE_INTEGER) {
    f->file_size = sqlite3_column_int64(s, a->size_column);
    f->has_size = 1;
  }
}

/* Runs s with ?1 = text, appending its rows to out as an array; returns their
 * number, or -1 on an SQLite error. first (may be NULL) notes the first row. */
static long append_rows(hf_answers *a, sqlite3_stmt *s, const char *text, hf_json_buffer *out,
                        first_occurrence *first) {
  sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
  long rows = 0;
  int rc;
  hf_json_append(out, "[", 1);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (rows == 0 && first)
      note_first(a, first, s);
    if (rows > 0)
      hf_json_append(out, ",", 1);
    append_row(out, s);
    rows++;
  }
  hf_json_append(out, "]", 1);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_DONE ? rows : -1;
}

static void append_hashlookup_fields(hf_json_buffer *out, const char *sha256,
                                     const first_occurrence *first) {
  char upper[65];
  for (int i = 0; i < 64; i++)
    upper[i] = (char)(sha256[i] >= 'a' ? sha256[i] - 'a' + 'A' : sha256[i]);
  upper[64] = '\0';
  hf_json_append_text(out, ",\"SHA-256\":\"");
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

/* Both answers are written straight into out, the rows as they are stepped;
 * when there are none, what was begun is taken back. */
hf_answer_status hf_answers_lookup(hf_answers *a, const char *sha256, hf_json_buffer *out) {
  size_t start = out->len;
  first_occurrence first = {0};
  hf_json_append_text(out, "{\"hash\":\"");
  hf_json_append(out, sha256, 64);
  hf_json_append_text(out, "\",\"known\":true,\"occurrences\":");
  hf_answer_status status = status_of(append_rows(a, a->lookup, sha256, out, &first));
  if (status == HF_ANSWER_FOUND) {
    append_hashlookup_fields(out, sha256, &first);
    hf_json_append(out, "}", 1);
  } else {
    hf_json_cut(out, start);
  }
  if (status == HF_ANSWER_UNKNOWN)
    hf_answers_message(out, "Non existing SHA-256", sha256);
  free(first.file_name);
  return status;
}

hf_answer_status hf_answers_repo(hf_answers *a, const char *repo, hf_json_buffer *out) {
  size_t start = out->len;
  hf_json_append_text(out, "{\"repo_id\":");
  hf_json_append_string(out, repo, strlen(repo));
  hf_json_append_text(out, ",\"files\":");
  hf_answer_status status = status_of(append_rows(a, a->repo, repo, out, NULL));
  if (status == HF_ANSWER_FOUND)
    hf_json_append(out, "}", 1);
  else
    hf_json_cut(out, start);
  if (status == HF_ANSWER_UNKNOWN)
    hf_answers_message(out, "Non existing repo", repo);
  return status;
}
