/* RFC 4180 CSV: a writer that appends whole blocks of rows with a single write
 * (so a killed process leaves no torn row behind a completed block), optionally
 * into a temporary file renamed over the target on commit; and a reader of the
 * same format that hands back the leading '#' comment lines separately. */
#ifndef HFSCAN_CSV_H
#define HFSCAN_CSV_H

#include <stddef.h>
#include <stdio.h>

/* A growable byte buffer. */
typedef struct hf_buf {
  char *data;
  size_t len, cap;
} hf_buf;
int hf_buf_append(hf_buf *b, const char *data, size_t len);
void hf_buf_free(hf_buf *b);

/* Appends one field, quoted when it holds a comma, quote, CR, LF or '#', or
 * begins or ends with a space. */
int hf_csv_append_field(hf_buf *out, const char *field, size_t len);
/* Appends fields joined by commas and ended by CRLF. */
int hf_csv_append_row(hf_buf *out, const char *const *fields, const size_t *lens, size_t n);

typedef struct hf_csv_writer hf_csv_writer;

typedef enum hf_csv_open_mode {
  HF_CSV_CREATE,  /* create or truncate */
  HF_CSV_APPEND,  /* append to an existing (or new) file */
  HF_CSV_REWRITE, /* write a temporary beside path; commit renames it over path */
} hf_csv_open_mode;

hf_csv_writer *hf_csv_writer_open(const char *path, hf_csv_open_mode mode, char *err,
                                  size_t errlen);
/* Queues "# text" as a line. */
int hf_csv_writer_comment(hf_csv_writer *w, const char *text);
/* Queues one row. Nothing reaches the file before hf_csv_writer_flush. */
int hf_csv_writer_row(hf_csv_writer *w, const char *const *fields, const size_t *lens, size_t n);
/* Queues text that is already formatted CSV (whole rows). */
int hf_csv_writer_row_raw(hf_csv_writer *w, const char *text, size_t len);
/* Writes everything queued with one write(2). Returns 0 or an errno value. A block
 * refused half-way is cut back off the file and stays queued for the next flush. */
int hf_csv_writer_flush(hf_csv_writer *w);
/* flush + fsync. */
int hf_csv_writer_sync(hf_csv_writer *w);
/* Flushes, syncs and closes; for REWRITE also renames the temporary over the target
 * and syncs the folder. Frees w. Returns 0 or an errno value. */
int hf_csv_writer_commit(hf_csv_writer *w, char *err, size_t errlen);
/* Closes without committing; a REWRITE temporary is removed. Frees w. */
void hf_csv_writer_abort(hf_csv_writer *w);
const char *hf_csv_writer_temp_path(const hf_csv_writer *w);
/* The bytes the writer's file holds (what was queued and not yet flushed is not
 * counted), or -1 with errno set. */
long long hf_csv_writer_size(const hf_csv_writer *w);
/* The file the writer writes to (for REWRITE, the target the commit replaces). */
const char *hf_csv_writer_path(const hf_csv_writer *w);
/* Gives a CREATE or APPEND writer's file another name (rename(2)); the writer keeps
 * writing to it, and its messages name it so. Returns 0 or an errno value. */
int hf_csv_writer_rename(hf_csv_writer *w, const char *new_path, char *err, size_t errlen);

/* Reading. A record is reused from call to call: start it zeroed ({0}), pass it to
 * every hf_csv_reader_next, and free it once with hf_csv_record_free. Its fields
 * point into its own storage (each also ends with a NUL), valid until the next
 * hf_csv_reader_next or hf_csv_record_free on that record: copy what must live
 * longer. */
typedef struct hf_csv_record {
  char **fields;
  size_t *lens;
  size_t count, capacity;
  hf_buf text;    /* the fields' bytes, which fields point into */
  int is_comment; /* a '#' line of the leading block; fields[0] is the text after '#' */
  int terminated; /* the record ended with a line break (a file's last record may not) */
  long line;      /* line number where the record starts (1-based) */
} hf_csv_record;

typedef struct hf_csv_reader hf_csv_reader;
hf_csv_reader *hf_csv_reader_open(const char *path, char *err, size_t errlen);
/* Reads from memory instead of a file (the buffer must outlive the reader). */
hf_csv_reader *hf_csv_reader_from_string(const char *data, size_t len);
/* 1: a record was read; 0: end of input; -1: malformed (an unterminated quoted
 * field at the end, i.e. a torn row), or out of memory, with a message in err.
 * The file is read in blocks of 256 KiB; a read error ends the input. */
int hf_csv_reader_next(hf_csv_reader *r, hf_csv_record *rec, char *err, size_t errlen);
/* For tests: reads blocks of size bytes (at least 1), so that block boundaries
 * fall anywhere in a record. Only before the first hf_csv_reader_next; returns 0,
 * or -1 when too late or size is 0. */
int hf_csv_reader_set_block_size(hf_csv_reader *r, size_t size);
/* The bytes of input consumed so far: after a record, where the next begins. */
long long hf_csv_reader_offset(const hf_csv_reader *r);
/* Goes on reading a file at byte offset (a record's start, such as an offset
 * hf_csv_reader_offset gave), past the leading comments: lines are counted
 * from 1 there. Returns 0, or an errno value (EINVAL for a memory reader). */
int hf_csv_reader_seek(hf_csv_reader *r, long long offset);
void hf_csv_reader_close(hf_csv_reader *r);
void hf_csv_record_free(hf_csv_record *rec);

#endif
