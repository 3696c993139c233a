/* Whole-file replacement that never leaves an empty or torn file behind: a
 * metadata file that a full disk cut to 0 bytes would make a finished scan look
 * unreadable (issue 14). */
#include "hfscan/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hf_write_all(int fd, const char *data, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    done += (size_t)n;
  }
  return 0;
}

int hf_sync_folder_of(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return ENOMEM;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

static int write_temporary(const char *tmp, const char *data, size_t len) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return errno;
  int rc = hf_write_all(fd, data, len);
  if (rc == 0 && fsync(fd) != 0)
    rc = errno;
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  return rc;
}

int hf_write_file_atomically(const char *path, const char *data, size_t len, char *err,
                             size_t errlen) {
  size_t tmp_len = strlen(path) + 5;
  char *tmp = malloc(tmp_len);
  if (!tmp)
    return ENOMEM;
  snprintf(tmp, tmp_len, "%s.tmp", path);
  int rc = write_temporary(tmp, data, len);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = errno;
  if (rc == 0)
    rc = hf_sync_folder_of(path);
  else
    unlink(tmp);
  if (rc != 0 && err)
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(rc));
  free(tmp);
  return rc;
}
