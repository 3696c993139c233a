/* RFC 4180 CSV writing and reading. */
#include "hfscan/csv.h"

#include "hfscan/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- buffers ---- */

int hf_buf_append(hf_buf *b, const char *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
      return -1;
    b->data = p;
    b->cap = cap;
  }
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void hf_buf_free(hf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- writing ---- */

static int needs_quotes(const char *s, size_t len) {
  if (len == 0)
    return 0;
  if (s[0] == ' ' || s[len - 1] == ' ')
    return 1;
  /* '#' too: readers told that '#' starts a comment (pandas comment='#') would
   * otherwise cut a file name such as "v2#final.bin" short. */
  for (size_t i = 0; i < len; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n' || s[i] == '#')
      return 1;
  return 0;
}

int hf_csv_append_field(hf_buf *out, const char *s, size_t len) {
  if (!needs_quotes(s, len))
    return hf_buf_append(out, s, len);
  if (hf_buf_append(out, "\"", 1) != 0)
    return -1;
  for (size_t start = 0, i = 0; i <= len; i++) {
    if (i == len || s[i] == '"') {
      /* Copy the run before this quote, then the quote doubled. */
      if (hf_buf_append(out, s + start, i - start) != 0)
        return -1;
      if (i < len && hf_buf_append(out, "\"\"", 2) != 0)
        return -1;
      start = i + 1;
    }
  }
  return hf_buf_append(out, "\"", 1);
}

int hf_csv_append_row(hf_buf *out, const char *const *fields, const size_t *lens, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && hf_buf_append(out, ",", 1) != 0)
      return -1;
    if (hf_csv_append_field(out, fields[i], lens[i]) != 0)
      return -1;
  }
  return hf_buf_append(out, "\r\n", 2);
}

struct hf_csv_writer {
  int fd;
  hf_csv_open_mode mode;
  char *path;
  char *temp_path;
  hf_buf pending;
  int broken; /* errno of a failed block that could not be cut off again; 0 when sound */
};

static int set_error(int code, const char *what, const char *path, char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(code));
  return code;
}

/* Creates "<path>.tmp.XXXXXX" in the target's folder, so the rename stays on one
 * file system and is atomic. */
static int open_temp(hf_csv_writer *w) {
  size_t len = strlen(w->path) + 12;
  w->temp_path = malloc(len);
  if (!w->temp_path) {
    errno = ENOMEM;
    return w->fd = -1;
  }
  snprintf(w->temp_path, len, "%s.tmpXXXXXX", w->path);
  w->fd = mkostemp(w->temp_path, O_CLOEXEC);
  if (w->fd >= 0)
    fchmod(w->fd, 0644);
  return w->fd;
}

hf_csv_writer *hf_csv_writer_open(const char *path, hf_csv_open_mode mode, char *err,
                                  size_t errlen) {
  hf_csv_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    set_error(ENOMEM, "cannot open", path, err, errlen);
    return NULL;
  }
  w->mode = mode;
  if (mode == HF_CSV_REWRITE) {
    open_temp(w);
  } else {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == HF_CSV_APPEND ? O_APPEND : O_TRUNC);
    w->fd = open(path, flags, 0644);
  }
  if (w->fd < 0) {
    set_error(errno, "cannot open", path, err, errlen);
    free(w->temp_path);
    free(w->path);
    free(w);
    return NULL;
  }
  return w;
}

int hf_csv_writer_comment(hf_csv_writer *w, const char *text) {
  if (hf_buf_append(&w->pending, "# ", 2) != 0 ||
      hf_buf_append(&w->pending, text, strlen(text)) != 0 ||
      hf_buf_append(&w->pending, "\r\n", 2) != 0)
    return ENOMEM;
  return 0;
}

int hf_csv_writer_row(hf_csv_writer *w, const char *const *fields, const size_t *lens, size_t n) {
  return hf_csv_append_row(&w->pending, fields, lens, n) == 0 ? 0 : ENOMEM;
}

int hf_csv_writer_row_raw(hf_csv_writer *w, const char *text, size_t len) {
  return hf_buf_append(&w->pending, text, len) == 0 ? 0 : ENOMEM;
}

/* A block that fails half-way (ENOSPC, EFBIG) leaves a torn row, so the file is cut
 * back to where the block began and the block stays queued: a later flush writes it
 * whole, once. If the cut fails too, the file can no longer be trusted to end on a
 * row, and every later write reports the first error instead of adding to it. */
int hf_csv_writer_flush(hf_csv_writer *w) {
  if (w->broken)
    return w->broken;
  if (w->pending.len == 0)
    return 0;
  struct stat before;
  if (fstat(w->fd, &before) != 0)
    return errno;
  int rc = hf_write_all(w->fd, w->pending.data, w->pending.len);
  if (rc != 0) {
    /* Without O_APPEND the offset must move back too, or the retry leaves a hole. */
    if (ftruncate(w->fd, before.st_size) != 0 || lseek(w->fd, before.st_size, SEEK_SET) < 0)
      w->broken = rc;
    return rc;
  }
  w->pending.len = 0;
  return 0;
}

int hf_csv_writer_sync(hf_csv_writer *w) {
  int rc = hf_csv_writer_flush(w);
  if (rc == 0 && fsync(w->fd) != 0)
    rc = errno;
  return rc;
}

static void free_writer(hf_csv_writer *w) {
  hf_buf_free(&w->pending);
  free(w->temp_path);
  free(w->path);
  free(w);
}

int hf_csv_writer_commit(hf_csv_writer *w, char *err, size_t errlen) {
  int rc = hf_csv_writer_sync(w);
  if (close(w->fd) != 0 && rc == 0)
    rc = errno;
  if (rc == 0 && w->mode == HF_CSV_REWRITE) {
    if (rename(w->temp_path, w->path) != 0)
      rc = errno;
    else
      rc = hf_sync_folder_of(w->path);
  }
  if (rc != 0) {
    set_error(rc, "cannot write", w->path, err, errlen);
    if (w->mode == HF_CSV_REWRITE)
      unlink(w->temp_path);
  }
  free_writer(w);
  return rc;
}

void hf_csv_writer_abort(hf_csv_writer *w) {
  if (!w)
    return;
  close(w->fd);
  if (w->mode == HF_CSV_REWRITE)
    unlink(w->temp_path);
  free_writer(w);
}

const char *hf_csv_writer_temp_path(const hf_csv_writer *w) { return w->temp_path; }
const char *hf_csv_writer_path(const hf_csv_writer *w) { return w->path; }

int hf_csv_writer_rename(hf_csv_writer *w, const char *new_path, char *err, size_t errlen) {
  if (w->mode == HF_CSV_REWRITE)
    return set_error(EINVAL, "cannot rename a rewrite of", w->path, err, errlen);
  char *copy = strdup(new_path);
  if (!copy)
    return set_error(ENOMEM, "cannot rename", w->path, err, errlen);
  if (rename(w->path, new_path) != 0) {
    int rc = errno;
    free(copy);
    return set_error(rc, "cannot rename", w->path, err, errlen);
  }
  free(w->path);
  w->path = copy;
  return 0;
}

/* ---- reading ---- */

struct hf_csv_reader {
  FILE *file;
  long line;
  int in_preamble; /* still before the column header: '#' lines are comments */
  hf_buf field;
};

hf_csv_reader *hf_csv_reader_open(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_error(errno, "cannot read", path, err, errlen);
    return NULL;
  }
  hf_csv_reader *r = calloc(1, sizeof *r);
  if (!r) {
    fclose(f);
    return NULL;
  }
  r->file = f;
  r->line = 1;
  r->in_preamble = 1;
  return r;
}

hf_csv_reader *hf_csv_reader_from_string(const char *data, size_t len) {
  hf_csv_reader *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  /* fmemopen rejects a zero size; an empty input is an empty stream anyway. */
  r->file = len ? fmemopen((void *)data, len, "rb") : fopen("/dev/null", "rb");
  if (!r->file) {
    free(r);
    return NULL;
  }
  r->line = 1;
  r->in_preamble = 1;
  return r;
}

void hf_csv_reader_close(hf_csv_reader *r) {
  if (!r)
    return;
  fclose(r->file);
  hf_buf_free(&r->field);
  free(r);
}

void hf_csv_record_free(hf_csv_record *rec) {
  for (size_t i = 0; i < rec->count; i++)
    free(rec->fields[i]);
  free(rec->fields);
  free(rec->lens);
  memset(rec, 0, sizeof *rec);
}

static void record_reset(hf_csv_record *rec) {
  for (size_t i = 0; i < rec->count; i++)
    free(rec->fields[i]);
  rec->count = 0;
  rec->is_comment = 0;
  rec->terminated = 0;
}

static int record_push(hf_csv_record *rec, const char *data, size_t len) {
  if (rec->count == rec->capacity) {
    size_t cap = rec->capacity ? rec->capacity * 2 : 16;
    char **fields = realloc(rec->fields, cap * sizeof *fields);
    if (!fields)
      return -1;
    rec->fields = fields;
    size_t *lens = realloc(rec->lens, cap * sizeof *lens);
    if (!lens)
      return -1;
    rec->lens = lens;
    rec->capacity = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy)
    return -1;
  memcpy(copy, data ? data : "", len);
  copy[len] = '\0';
  rec->fields[rec->count] = copy;
  rec->lens[rec->count++] = len;
  return 0;
}

/* Consumes "\n" or "\r\n" after c == '\r' or '\n'. */
static void end_of_line(hf_csv_reader *r, int c) {
  if (c == '\r') {
    int next = getc(r->file);
    if (next != '\n' && next != EOF)
      ungetc(next, r->file);
  }
  r->line++;
}

static int read_comment(hf_csv_reader *r, hf_csv_record *rec) {
  int c = getc(r->file);
  if (c == ' ')
    c = getc(r->file);
  r->field.len = 0;
  while (c != EOF && c != '\n' && c != '\r') {
    char ch = (char)c;
    hf_buf_append(&r->field, &ch, 1);
    c = getc(r->file);
  }
  rec->is_comment = 1;
  rec->terminated = c != EOF;
  if (c != EOF)
    end_of_line(r, c);
  return record_push(rec, r->field.data, r->field.len) == 0 ? 1 : -1;
}

/* Reads a quoted field's body after its opening quote. Returns the character that
 * follows the closing quote, or -2 when the input ends inside the quotes. */
static int read_quoted(hf_csv_reader *r) {
  for (;;) {
    int c = getc(r->file);
    if (c == EOF)
      return -2;
    if (c == '"') {
      int next = getc(r->file);
      if (next != '"')
        return next;
    }
    if (c == '\n')
      r->line++;
    char ch = (char)c;
    hf_buf_append(&r->field, &ch, 1);
  }
}

int hf_csv_reader_next(hf_csv_reader *r, hf_csv_record *rec, char *err, size_t errlen) {
  record_reset(rec);
  int c = getc(r->file);
  /* Blank lines carry no record. */
  while (c == '\n' || c == '\r') {
    end_of_line(r, c);
    c = getc(r->file);
  }
  if (c == EOF)
    return 0;
  rec->line = r->line;
  if (c == '#' && r->in_preamble)
    return read_comment(r, rec);
  r->in_preamble = 0;
  for (;;) {
    r->field.len = 0;
    if (c == '"') {
      c = read_quoted(r);
      if (c == -2) {
        if (err && errlen)
          snprintf(err, errlen, "line %ld: quoted field not closed before the end of the file",
                   rec->line);
        return -1;
      }
    }
    /* Unquoted text, or anything after a closing quote, runs to ',' or the line end. */
    while (c != EOF && c != ',' && c != '\n' && c != '\r') {
      char ch = (char)c;
      hf_buf_append(&r->field, &ch, 1);
      c = getc(r->file);
    }
    if (record_push(rec, r->field.data, r->field.len) != 0)
      return -1;
    if (c == ',') {
      c = getc(r->file);
      continue;
    }
    rec->terminated = c != EOF;
    if (c != EOF)
      end_of_line(r, c);
    return 1;
  }
}
