#ifndef HFSCAN_ATOMIC_FILE_H
#define HFSCAN_ATOMIC_FILE_H

#include <stddef.h>

/* Replaces path with data, all or nothing: written to a unique path.tmpXXXXXX, synced, closed,
 * renamed over path, and the folder synced. On any error (a full disk, a failed
 * close) path is left as it was, the temporary is removed, and err holds
 * "cannot write <path>: <reason>". Returns 0 or the errno. */
int hf_write_file_atomically(const char *path, const char *data, size_t len, char *err,
                             size_t errlen);

/* write(2) until all of data is written (EINTR retried). Returns 0 or the errno. */
int hf_write_all(int fd, const char *data, size_t len);

/* fsync of the folder holding path: a rename or a new file is durable only once
 * the folder's entry is on disk too. Returns 0 or the errno. */
int hf_sync_folder_of(const char *path);

#endif
