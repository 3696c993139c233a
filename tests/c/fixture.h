/* Starts tests/fixtures/http_server.py for a C test and stops it at exit; and, in
 * this process, a server that answers as a broken or hostile Hub would. */
#ifndef HFSCAN_TEST_FIXTURE_H
#define HFSCAN_TEST_FIXTURE_H

struct fixture {
  char a[64];       /* http://127.0.0.1:PORT */
  char b[64];       /* http://127.0.0.2:PORT (another host) */
  char hostile[64]; /* http://127.0.0.1:PORT of the hostile server, once started */
};

/* Returns 0 when the server is ready. The server exits when this process does. */
int fixture_start(struct fixture *f);

/* Starts the hostile server (fixture.c lists its endpoints) on a thread of this
 * process and sets f->hostile. Returns 0 when it listens. */
int fixture_start_hostile(struct fixture *f);
/* Waits until the hostile server has read a request whose target starts with
 * prefix, at most timeout_s. Returns 0 when it has. */
int fixture_wait_request(const char *prefix, double timeout_s);

#endif
