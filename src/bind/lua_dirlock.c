/* Lua binding of an output folder's lock, so that two hfscan processes never
 * write one folder's files at once (two appenders, or a rewrite under an append,
 * would tear rows):
 *   hf.lock_dir(dir [, "reader"]) -> lock | nil, message, code
 *     code "busy", "busy_reader", "busy_starting" or "io". "reader": a reader
 *     building a missing database holds it, for seconds; a writer refused by
 *     one ("busy_reader") may wait for it to end, and for a holder that has not
 *     yet written who it is ("busy_starting"), which it does an instant later
 *   lock:close()      releases it (so does exiting, however the process ends)
 * The lock is flock(2) on DIR/.hfscan.lock, which the kernel drops with the
 * process: a killed scan never leaves a stale lock behind. The file holds the
 * owner's pid, for the message another process gets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "lua_bindings.h"

#define DIRLOCK_MT "hfscan.dirlock"

typedef struct {
  int fd;
} dir_lock;

static int l_unlock(lua_State *L) {
  dir_lock *lock = luaL_checkudata(L, 1, DIRLOCK_MT);
  if (lock->fd >= 0)
    close(lock->fd); /* closing the descriptor releases the flock */
  lock->fd = -1;
  return 0;
}

/* The pid recorded by the holder (0 when unreadable), and whether it is a reader. */
static long holder_pid(int fd, int *reader) {
  char text[32] = {0};
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  char *end = text;
  long pid = n > 0 ? strtol(text, &end, 10) : 0;
  *reader = strncmp(end, " reader", 7) == 0;
  return pid;
}

/* If this fails, only the message a refused process prints misses the pid. */
static void record_pid(int fd, int reader) {
  char text[40];
  int n = snprintf(text, sizeof text, "%ld%s\n", (long)getpid(), reader ? " reader" : "");
  if (ftruncate(fd, 0) == 0)
    (void)!pwrite(fd, text, (size_t)n, 0);
}

static int l_lock_dir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  static const char *const roles[] = {"writer", "reader", NULL};
  int reader = luaL_checkoption(L, 2, "writer", roles) == 1;
  lua_pushfstring(L, "%s/.hfscan.lock", dir);
  const char *path = lua_tostring(L, -1);
  dir_lock *lock = lua_newuserdatauv(L, sizeof *lock, 0);
  lock->fd = -1;
  luaL_setmetatable(L, DIRLOCK_MT);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    lua_pushfstring(L, "cannot lock %s: %s", dir, strerror(errno));
    return hf_lua_fail(L, lua_tostring(L, -1), "io");
  }
  lock->fd = fd; /* from here the userdata's __gc closes it, whatever happens */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK, held_by_reader = 0;
    long pid = busy ? holder_pid(fd, &held_by_reader) : 0;
    if (busy)
      lua_pushfstring(L, "another hfscan (pid %d) is writing to %s; wait for it to end", (int)pid,
                      dir);
    else
      lua_pushfstring(L, "cannot lock %s: %s", dir, strerror(errno));
    close(fd);
    lock->fd = -1;
    const char *code = !busy            ? "io"
                       : pid == 0       ? "busy_starting"
                       : held_by_reader ? "busy_reader"
                                        : "busy";
    return hf_lua_fail(L, lua_tostring(L, -1), code);
  }
  record_pid(fd, reader);
  return 1;
}

void hf_lua_register_dirlock(lua_State *L) {
  static const luaL_Reg methods[] = {{"close", l_unlock}, {NULL, NULL}};
  hf_lua_register_type(L, DIRLOCK_MT, methods, l_unlock, NULL);
  lua_pushcfunction(L, l_lock_dir);
  lua_setfield(L, -2, "lock_dir");
}
