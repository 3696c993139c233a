/* The answers of `hfscan serve` that come from the database: one read-only
 * SQLite connection, used by one server thread, with the two queries the Lua
 * side wrote (hfscan.db.store: the same SQL as `hfscan lookup`), prepared once.
 * Each result row becomes a JSON object of its columns (NULL columns left out,
 * as the Lua side leaves out nil), so the server's JSON is lookup --json's. */
#ifndef HFSCAN_SERVE_ANSWERS_H
#define HFSCAN_SERVE_ANSWERS_H

#include <stdatomic.h>
#include <stddef.h>

#include "hfscan/json_buffer.h"

typedef struct hf_answers hf_answers;

/* The queries: lookup_sql takes ?1 a lower-case SHA-256 and gives its
 * occurrences; repo_sql takes ?1 a repo id and gives its files at its latest
 * scanned commit. A query running when *cut becomes nonzero stops (and its
 * answer fails). Returns NULL and a message in err on failure. */
hf_answers *hf_answers_open(const char *database_uri, const char *lookup_sql, const char *repo_sql,
                            const atomic_int *cut, char *err, size_t err_len);
/* One read transaction around several lookups (a bulk one): one snapshot, one
 * lock taken, however many hashes. Returns 0 when it cannot begin. */
int hf_answers_begin(hf_answers *a);
void hf_answers_end(hf_answers *a);
void hf_answers_close(hf_answers *a);

typedef enum { HF_ANSWER_FOUND, HF_ANSWER_UNKNOWN, HF_ANSWER_FAILED } hf_answer_status;

/* Appends the answer for one hash (64 lower-case hex digits): the
 * hashlookup-style record with its occurrences, or the not-found object. */
hf_answer_status hf_answers_lookup(hf_answers *a, const char *sha256, hf_json_buffer *out);
/* Appends {"repo_id": ..., "files": [...]}, or the not-found object. */
hf_answer_status hf_answers_repo(hf_answers *a, const char *repo, hf_json_buffer *out);
/* SQLite's message for the last HF_ANSWER_FAILED. */
const char *hf_answers_error(hf_answers *a);

/* Appends {"message": message, "query": query}: hashlookup's shape of an error. */
void hf_answers_message(hf_json_buffer *out, const char *message, const char *query);

#endif
