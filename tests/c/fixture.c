/* The server runs with a pipe as stdin; it exits when the pipe closes, which
 * happens when this test process ends, however it ends. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HFSCAN_SOURCE_DIR
#error "HFSCAN_SOURCE_DIR must be defined"
#endif

static int read_url(const char *json, const char *key, char *out, size_t size) {
  char pattern[16];
  snprintf(pattern, sizeof pattern, "\"%s\": \"", key);
  const char *p = strstr(json, pattern);
  if (!p)
    return -1;
  p += strlen(pattern);
  const char *end = strchr(p, '"');
  if (!end || (size_t)(end - p) >= size)
    return -1;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 0;
}

int fixture_start(struct fixture *f) {
  char dir[] = "/tmp/hfscan-fixture-XXXXXX";
  if (!mkdtemp(dir))
    return -1;
  char ready[128], cmd[512];
  snprintf(ready, sizeof ready, "%s/ready.json", dir);
  snprintf(cmd, sizeof cmd, "python3 %s/tests/fixtures/http_server.py --ready-file %s",
           HFSCAN_SOURCE_DIR, ready);
  /* popen(..., "w") gives the child our pipe as its stdin; never pclose'd. */
  if (!popen(cmd, "w"))
    return -1;
  for (int i = 0; i < 200; i++) {
    FILE *r = fopen(ready, "r");
    if (r) {
      char json[512] = {0};
      size_t n = fread(json, 1, sizeof json - 1, r);
      fclose(r);
      json[n] = '\0';
      unlink(ready);
      rmdir(dir);
      return read_url(json, "a", f->a, sizeof f->a) || read_url(json, "b", f->b, sizeof f->b);
    }
    usleep(50000);
  }
  return -1;
}
