/* Starts tests/fixtures/http_server.py for a C test and stops it at exit. */
#ifndef HFSCAN_TEST_FIXTURE_H
#define HFSCAN_TEST_FIXTURE_H

struct fixture {
  char a[64]; /* http://127.0.0.1:PORT */
  char b[64]; /* http://127.0.0.2:PORT (another host) */
};

/* Returns 0 when the server is ready. The server exits when this process does. */
int fixture_start(struct fixture *f);

#endif
