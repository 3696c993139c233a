/* An LD_PRELOAD shim for crash tests: kills the process with SIGKILL at the N-th
 * write, pwrite (SQLite's pwrite64 too), rename, ftruncate, fsync or fdatasync
 * that touches a file under a folder,
 * optionally after writing only half of that write's bytes (a torn write), to
 * show that a scan killed at any of those instants resumes exactly.
 *
 *   HFSCAN_CRASH_DIR=<folder>   only calls on files under it count
 *   HFSCAN_CRASH_AT=<n>         the call that kills (0: none; just count)
 *   HFSCAN_CRASH_TORN=1         a write that kills writes half its bytes first
 *   HFSCAN_CRASH_COUNT=<file>   at exit, the number of calls counted is written here
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const char *folder;
static size_t folder_len;
static long kill_at, calls;
static int torn;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_rename)(const char *, const char *);
static int (*real_fsync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fdatasync)(int);

static void write_count(void) {
  const char *path = getenv("HFSCAN_CRASH_COUNT");
  if (!path)
    return;
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "%ld\n", calls);
    fclose(f);
  }
}

__attribute__((constructor)) static void init(void) {
  real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  real_pwrite = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = (ssize_t(*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
  real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  folder = getenv("HFSCAN_CRASH_DIR");
  folder_len = folder ? strlen(folder) : 0;
  const char *at = getenv("HFSCAN_CRASH_AT");
  kill_at = at ? atol(at) : 0;
  torn = getenv("HFSCAN_CRASH_TORN") && strcmp(getenv("HFSCAN_CRASH_TORN"), "1") == 0;
  atexit(write_count);
}

static int under_folder(const char *path) {
  return folder_len > 0 && strncmp(path, folder, folder_len) == 0 &&
         (path[folder_len] == '/' || path[folder_len] == '\0');
}

static int fd_under_folder(int fd) {
  if (folder_len == 0)
    return 0; /* no folder to watch: no readlink per write */
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0)
    return 0;
  target[n] = '\0';
  return under_folder(target);
}

/* Counts a call that touches the folder; true when it is the one that kills. */
static int is_fatal(int touches) {
  if (!touches)
    return 0;
  calls++;
  return kill_at > 0 && calls == kill_at;
}

static void die(void) { kill(getpid(), SIGKILL); }

ssize_t write(int fd, const void *buf, size_t n) {
  if (is_fatal(fd_under_folder(fd))) {
    if (torn && n > 1)
      real_write(fd, buf, n / 2);
    die();
  }
  return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
  if (is_fatal(fd_under_folder(fd))) {
    if (torn && n > 1)
      real_pwrite(fd, buf, n / 2, offset);
    die();
  }
  return real_pwrite(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset) {
  if (is_fatal(fd_under_folder(fd))) {
    if (torn && n > 1)
      real_pwrite64(fd, buf, n / 2, offset);
    die();
  }
  return real_pwrite64(fd, buf, n, offset);
}

int rename(const char *from, const char *to) {
  if (is_fatal(under_folder(to)))
    die();
  return real_rename(from, to);
}

/* A cut is one step: the kill comes before it. */
int ftruncate(int fd, off_t length) {
  if (is_fatal(fd_under_folder(fd)))
    die();
  return real_ftruncate(fd, length);
}

int fsync(int fd) {
  if (is_fatal(fd_under_folder(fd)))
    die();
  return real_fsync(fd);
}

int fdatasync(int fd) {
  if (is_fatal(fd_under_folder(fd)))
    die();
  return real_fdatasync(fd);
}
