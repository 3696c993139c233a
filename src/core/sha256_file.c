/* Streams a file through SHA-256. The calling thread reads straight into the hash
 * pipeline's ring while its thread hashes, so disk (or page-cache copy) time hides
 * behind hashing time; memory stays at the pipeline's few blocks per file. */
#include "hfscan/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hfscan/hash_pipeline.h"

/* The tests cut files at block edges; the blocks are the pipeline's slots. */
_Static_assert(HF_SHA256_FILE_BLOCK == HF_PIPELINE_SLOT_SIZE, "one block per pipeline slot");

static int fail(int code, const char *path, char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", path, strerror(code));
  return code;
}

int hf_sha256_file(const char *path, char hex[HF_SHA256_HEX_SIZE], uint64_t *bytes, char *err,
                   size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(errno, path, err, errlen);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  hf_hash_pipeline *p = hf_hash_pipeline_new();
  if (!p) {
    close(fd);
    return fail(ENOMEM, path, err, errlen);
  }
  uint64_t total = 0;
  int code = 0;
  for (;;) {
    size_t room;
    unsigned char *space = hf_hash_pipeline_space(p, &room);
    ssize_t n = read(fd, space, room);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      code = n < 0 ? errno : 0;
      break;
    }
    hf_hash_pipeline_commit(p, (size_t)n);
    total += (size_t)n;
  }
  if (code == 0) {
    char no_git[41];
    hf_hash_pipeline_result(p, hex, no_git);
    if (bytes)
      *bytes = total;
  }
  hf_hash_pipeline_free(p);
  close(fd);
  return code ? fail(code, path, err, errlen) : 0;
}
