/* Whole-file replacement that never leaves an empty or torn file behind: a
 * metadata file that a full disk cut to 0 bytes would make a finished scan look
 * unreadable (issue 14). */
#include "hfscan/atomic_file.h"

#include "hfscan/csv.h"

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

int hf_write_file_atomically(const char *path, const char *data, size_t len, char *err,
                             size_t errlen) {
  /* A rewrite writer already does it all: a unique temporary, synced, renamed,
   * the folder synced, the temporary removed on any failure. */
  hf_csv_writer *w = hf_csv_writer_open(path, HF_CSV_REWRITE, err, errlen);
  if (!w)
    return errno ? errno : EIO;
  if (hf_csv_writer_row_raw(w, data, len) != 0) {
    hf_csv_writer_abort(w);
    if (err && errlen)
      snprintf(err, errlen, "cannot write %s: %s", path, strerror(ENOMEM));
    return ENOMEM;
  }
  return hf_csv_writer_commit(w, err, errlen);
}
