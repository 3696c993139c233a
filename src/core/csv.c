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

long long hf_csv_writer_size(const hf_csv_writer *w) {
  struct stat st;
  if (fstat(w->fd, &st) != 0)
    return -1;
  return (long long)st.st_size;
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

/* Large enough that the read(2) calls cost nothing beside the scanning. */
#define DEFAULT_BLOCK_SIZE (256 * 1024)

/* The reader scans a window of bytes: a block read from the file into buf, or the
 * next block-sized piece of the caller's memory (no copy). Everything a record
 * needs is copied into the record before the window moves on, so a block can be
 * replaced whole. */
struct hf_csv_reader {
  int fd;          /* -1 for a reader over memory */
  const char *mem; /* memory input: what is not yet in the window */
  size_t mem_left;
  char *buf;           /* a file's current block */
  size_t block;        /* bytes per read */
  const char *p, *end; /* the unread part of the window */
  int at_end;          /* the input is used up (like stdio's sticky EOF) */
  int started;         /* a block was read: the block size is fixed */
  long line;
  int in_preamble;     /* still before the column header: '#' lines are comments */
  long long window_at; /* the input offset of the window's end */
};

/* Bytes that end an unquoted field, and a comment's text. */
static const unsigned char ENDS_FIELD[256] = {[','] = 1, ['\r'] = 1, ['\n'] = 1};
static const unsigned char ENDS_LINE[256] = {['\r'] = 1, ['\n'] = 1};

static hf_csv_reader *new_reader(int fd, const char *data, size_t len) {
  hf_csv_reader *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->fd = fd;
  r->mem = data;
  r->mem_left = len;
  r->block = DEFAULT_BLOCK_SIZE;
  r->line = 1;
  r->in_preamble = 1;
  if (fd >= 0 && !(r->buf = malloc(r->block))) {
    free(r);
    return NULL;
  }
  return r;
}

hf_csv_reader *hf_csv_reader_open(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_error(errno, "cannot read", path, err, errlen);
    return NULL;
  }
  hf_csv_reader *r = new_reader(fd, NULL, 0);
  if (!r) {
    set_error(ENOMEM, "cannot read", path, err, errlen);
    close(fd);
  }
  return r;
}

hf_csv_reader *hf_csv_reader_from_string(const char *data, size_t len) {
  return new_reader(-1, data, len);
}

int hf_csv_reader_set_block_size(hf_csv_reader *r, size_t size) {
  if (r->started || size == 0)
    return -1;
  if (r->fd >= 0) {
    char *buf = realloc(r->buf, size);
    if (!buf)
      return -1;
    r->buf = buf;
  }
  r->block = size;
  return 0;
}

void hf_csv_reader_close(hf_csv_reader *r) {
  if (!r)
    return;
  if (r->fd >= 0)
    close(r->fd);
  free(r->buf);
  free(r);
}

/* Moves the window to the next block. Returns 0 at the end of the input. A read
 * error ends the input too, as getc's EOF did before the reader read blocks. */
static int refill(hf_csv_reader *r) {
  r->started = 1;
  if (r->at_end)
    return 0;
  size_t n = 0;
  if (r->fd < 0) {
    n = r->mem_left < r->block ? r->mem_left : r->block;
    r->p = r->mem;
    r->mem += n;
    r->mem_left -= n;
  } else {
    ssize_t got;
    do {
      got = read(r->fd, r->buf, r->block);
    } while (got < 0 && errno == EINTR);
    n = got > 0 ? (size_t)got : 0;
    r->p = r->buf;
  }
  r->end = r->p + n;
  r->at_end = n == 0;
  r->window_at += (long long)n;
  return n > 0;
}

long long hf_csv_reader_offset(const hf_csv_reader *r) {
  return r->window_at - (long long)(r->end - r->p);
}

int hf_csv_reader_seek(hf_csv_reader *r, long long offset) {
  if (r->fd < 0 || offset < 0)
    return EINVAL;
  if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0)
    return errno;
  r->p = r->end = r->buf;
  r->at_end = 0;
  r->window_at = offset;
  r->line = 1;
  r->in_preamble = 0;
  return 0;
}

/* The next byte, not consumed, or EOF. */
static int peek_byte(hf_csv_reader *r) {
  if (r->p == r->end && !refill(r))
    return EOF;
  return (unsigned char)*r->p;
}

/* Consumes the line break at the window's start: "\n", "\r\n" or a lone "\r". */
static void end_of_line(hf_csv_reader *r) {
  int c = (unsigned char)*r->p++;
  if (c == '\r' && peek_byte(r) == '\n')
    r->p++;
  r->line++;
}

/* ---- records ---- */

void hf_csv_record_free(hf_csv_record *rec) {
  free(rec->fields);
  free(rec->lens);
  hf_buf_free(&rec->text);
  memset(rec, 0, sizeof *rec);
}

static void record_reset(hf_csv_record *rec) {
  rec->count = 0;
  rec->text.len = 0;
  rec->is_comment = 0;
  rec->terminated = 0;
}

/* Starts a field at the end of the record's text. The text may move while the
 * record grows, so until record_finish lens[i] holds where field i starts. */
static int record_open_field(hf_csv_record *rec) {
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
  rec->lens[rec->count++] = rec->text.len;
  return 0;
}

/* Ends the open field with a NUL, so that each field is a C string too. */
static int record_close_field(hf_csv_record *rec) { return hf_buf_append(&rec->text, "", 1); }

/* Points the fields into the text, now that it no longer moves. */
static void record_finish(hf_csv_record *rec) {
  for (size_t i = 0; i < rec->count; i++) {
    size_t start = rec->lens[i];
    size_t next = i + 1 < rec->count ? rec->lens[i + 1] : rec->text.len;
    rec->fields[i] = rec->text.data + start;
    rec->lens[i] = next - start - 1; /* less the NUL */
  }
}

/* ---- parsing ---- */

/* What the scanning helpers return besides a byte or EOF (-1). */
#define OUT_OF_MEMORY (-2)
#define QUOTE_NOT_CLOSED (-3)
#define READ_FAILED (-4) /* a message is in err */

/* Copies bytes into text up to the next byte that stops marks (not consumed),
 * across blocks. Returns that byte, EOF or OUT_OF_MEMORY. */
static int copy_until(hf_csv_reader *r, const unsigned char *stops, hf_buf *text) {
  for (;;) {
    if (r->p == r->end && !refill(r))
      return EOF;
    const char *s = r->p;
    while (s < r->end && !stops[(unsigned char)*s])
      s++;
    if (hf_buf_append(text, r->p, (size_t)(s - r->p)) != 0)
      return OUT_OF_MEMORY;
    r->p = s;
    if (s < r->end)
      return (unsigned char)*s;
  }
}

static long count_newlines(const char *s, const char *end) {
  long n = 0;
  for (const char *nl = memchr(s, '\n', (size_t)(end - s)); nl;
       nl = memchr(nl + 1, '\n', (size_t)(end - nl - 1)))
    n++;
  return n;
}

/* Copies a quoted field's body (its opening quote consumed) with each doubled
 * quote made one, and consumes the closing quote. Line breaks inside count as
 * lines. Returns 0, QUOTE_NOT_CLOSED or OUT_OF_MEMORY. */
static int copy_quoted(hf_csv_reader *r, hf_buf *text) {
  for (;;) {
    if (r->p == r->end && !refill(r))
      return QUOTE_NOT_CLOSED;
    const char *quote = memchr(r->p, '"', (size_t)(r->end - r->p));
    const char *stop = quote ? quote : r->end;
    r->line += count_newlines(r->p, stop);
    if (hf_buf_append(text, r->p, (size_t)(stop - r->p)) != 0)
      return OUT_OF_MEMORY;
    r->p = stop;
    if (!quote)
      continue;
    r->p++;
    if (peek_byte(r) != '"')
      return 0;
    r->p++;
    if (hf_buf_append(text, "\"", 1) != 0)
      return OUT_OF_MEMORY;
  }
}

static void say(char *err, size_t errlen, long line, const char *what) {
  if (err && errlen)
    snprintf(err, errlen, "line %ld: %s", line, what);
}

/* The end of a record at c (a line break or EOF, not consumed). */
static int end_record(hf_csv_reader *r, hf_csv_record *rec, int c) {
  rec->terminated = c != EOF;
  if (c != EOF)
    end_of_line(r);
  record_finish(rec);
  return 1;
}

/* A '#' line of the leading block, its '#' consumed: one space after it is
 * dropped, the rest up to the line break is the comment. */
static int read_comment(hf_csv_reader *r, hf_csv_record *rec, char *err, size_t errlen) {
  rec->is_comment = 1;
  if (peek_byte(r) == ' ')
    r->p++;
  int c = OUT_OF_MEMORY;
  if (record_open_field(rec) == 0)
    c = copy_until(r, ENDS_LINE, &rec->text);
  if (c == OUT_OF_MEMORY || record_close_field(rec) != 0) {
    say(err, errlen, rec->line, "out of memory");
    rec->count = 0; /* its field is not a pointer yet */
    return -1;
  }
  return end_record(r, rec, c);
}

/* One field at the window's start: a quoted part if it begins with a quote, then
 * anything up to ',' or the line end taken as it is. Returns the byte that ends
 * it (not consumed), EOF or READ_FAILED. */
static int read_field(hf_csv_reader *r, hf_csv_record *rec, char *err, size_t errlen) {
  int c = 0;
  if (record_open_field(rec) != 0)
    c = OUT_OF_MEMORY;
  if (c == 0 && peek_byte(r) == '"') {
    r->p++;
    c = copy_quoted(r, &rec->text);
  }
  if (c == 0)
    c = copy_until(r, ENDS_FIELD, &rec->text);
  if (c != OUT_OF_MEMORY && c != QUOTE_NOT_CLOSED && record_close_field(rec) != 0)
    c = OUT_OF_MEMORY;
  if (c == QUOTE_NOT_CLOSED)
    say(err, errlen, rec->line, "quoted field not closed before the end of the file");
  if (c == OUT_OF_MEMORY)
    say(err, errlen, rec->line, "out of memory");
  return c == QUOTE_NOT_CLOSED || c == OUT_OF_MEMORY ? READ_FAILED : c;
}

int hf_csv_reader_next(hf_csv_reader *r, hf_csv_record *rec, char *err, size_t errlen) {
  record_reset(rec);
  int c = peek_byte(r);
  /* Blank lines carry no record. */
  while (c == '\n' || c == '\r') {
    end_of_line(r);
    c = peek_byte(r);
  }
  if (c == EOF)
    return 0;
  rec->line = r->line;
  if (c == '#' && r->in_preamble) {
    r->p++;
    return read_comment(r, rec, err, errlen);
  }
  r->in_preamble = 0;
  for (;;) {
    c = read_field(r, rec, err, errlen);
    if (c == READ_FAILED) {
      rec->count = 0; /* its fields are not pointers yet */
      return -1;
    }
    if (c != ',')
      return end_record(r, rec, c);
    r->p++;
  }
}
