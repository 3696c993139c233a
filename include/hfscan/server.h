/* `hfscan serve`'s HTTP server: libmicrohttpd with its own thread pool, each
 * thread answering from its own read-only SQLite connection (serve_answers.h).
 * What it serves is an edition: the database, the queries, and the documents
 * the Lua side computed (/info, /flagged, /openapi.json). Publishing a new
 * edition (a newer scan in the folder) changes what the next request gets; a
 * request in flight finishes on the edition it started with, and a thread
 * that cannot open the new database goes on answering from the old one. */
#ifndef HFSCAN_SERVER_H
#define HFSCAN_SERVER_H

#include <stddef.h>

typedef struct hf_server hf_server;

typedef struct {
  const char *address; /* numeric IPv4 or IPv6, or a host name */
  unsigned port;       /* 0: any free port (hf_server_port tells) */
  unsigned threads;
  unsigned client_timeout;   /* seconds a connection may stay silent */
  unsigned connection_limit; /* connections at once; more are refused */
  size_t body_limit;         /* bytes of a request body; more: 413 */
  size_t max_hashes;         /* hashes of one bulk lookup; more: 400 */
  size_t answer_limit;       /* bytes of one answer; more: 413 */
  size_t buffered_limit;     /* bytes of all bodies being received at once; more: 503 */
} hf_server_config;

/* Owned copies, so an edition outlives the Lua strings it came from. */
typedef struct {
  unsigned long generation;
  char *database_uri, *lookup_sql, *repo_sql;
  char *info, *flagged, *openapi; /* flagged NULL: no scan recorded verdicts */
} hf_server_edition;

/* Starts serving edition (which it takes, also on failure). Returns NULL and
 * a message in err when the address cannot be bound or the server started. */
hf_server *hf_server_start(const hf_server_config *config, hf_server_edition *edition, char *err,
                           size_t err_len);
unsigned hf_server_port(hf_server *s);
/* Replaces the edition (taken). */
void hf_server_publish(hf_server *s, hf_server_edition *edition);
void hf_server_edition_free(hf_server_edition *e);
/* Stops accepting connections, waits up to seconds for the requests in
 * flight to be answered, then cuts the queries still running and stops.
 * Returns the requests still in flight, cut off (0: a clean drain). */
unsigned hf_server_stop(hf_server *s, double seconds);

#endif
