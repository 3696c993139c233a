/* Lua binding of SHA-256: one-shot, the incremental hasher, files, and many files
 * in parallel on a worker pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hfscan/pool.h"
#include "hfscan/sha256.h"
#include "lua_bindings.h"

#define HASHER_MT "hfscan.sha256_hasher"

typedef struct {
  hf_sha256 *h; /* NULL once closed */
} lua_hasher;

static int l_sha256(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  char hex[HF_SHA256_HEX_SIZE];
  hf_sha256_hex(data, len, hex);
  lua_pushstring(L, hex);
  return 1;
}

static lua_hasher *check_hasher(lua_State *L, int idx) {
  lua_hasher *lh = luaL_checkudata(L, idx, HASHER_MT);
  if (!lh->h)
    luaL_error(L, "attempt to use a closed hasher");
  return lh;
}

static int l_hasher_new(lua_State *L) {
  /* Created closed first, so a failed allocation leaves nothing to leak. */
  lua_hasher *lh = lua_newuserdatauv(L, sizeof *lh, 0);
  lh->h = NULL;
  luaL_setmetatable(L, HASHER_MT);
  lh->h = hf_sha256_new();
  if (!lh->h)
    return luaL_error(L, "out of memory");
  if (lua_isstring(L, 1)) {
    size_t len;
    const char *data = lua_tolstring(L, 1, &len);
    hf_sha256_update(lh->h, data, len);
  }
  return 1;
}

static int l_hasher_update(lua_State *L) {
  lua_hasher *lh = check_hasher(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  hf_sha256_update(lh->h, data, len);
  lua_settop(L, 1);
  return 1; /* returns the hasher, so calls chain */
}

static int l_hasher_hexdigest(lua_State *L) {
  lua_hasher *lh = check_hasher(L, 1);
  char hex[HF_SHA256_HEX_SIZE];
  hf_sha256_peek_hex(lh->h, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int l_hasher_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)hf_sha256_length(check_hasher(L, 1)->h));
  return 1;
}

static int l_hasher_reset(lua_State *L) {
  hf_sha256_reset(check_hasher(L, 1)->h);
  lua_settop(L, 1);
  return 1;
}

/* __gc and __close share this; it is safe to call more than once. */
static int l_hasher_close(lua_State *L) {
  lua_hasher *lh = luaL_checkudata(L, 1, HASHER_MT);
  hf_sha256_free(lh->h);
  lh->h = NULL;
  return 0;
}

static int l_hasher_tostring(lua_State *L) {
  lua_hasher *lh = luaL_checkudata(L, 1, HASHER_MT);
  lua_pushfstring(L, "sha256_hasher (%s)", lh->h ? "open" : "closed");
  return 1;
}

static int l_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char hex[HF_SHA256_HEX_SIZE], err[512];
  uint64_t bytes = 0;
  int code = hf_sha256_file(path, hex, &bytes, err, sizeof err);
  if (code != 0)
    return hf_lua_fail(L, err, code == ENOENT ? "not_found" : "io");
  lua_pushstring(L, hex);
  lua_pushinteger(L, (lua_Integer)bytes);
  return 2;
}

#define POOL_GUARD_MT "hfscan.sha256_files_pool"

/* The pool of one sha256_files call lives in a userdata, so that a raise while
 * results are collected (memory running out) still stops and frees its threads. */
static int l_pool_guard_close(lua_State *L) {
  hf_pool **guard = luaL_checkudata(L, 1, POOL_GUARD_MT);
  hf_pool_free(*guard);
  *guard = NULL;
  return 0;
}

/* sha256_files(paths [, workers]) -> { {path=, sha256=, bytes=} or {path=, error=, code=} }
 * paths is read raw: no metamethod runs once threads are started. */
static int l_sha256_files(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer asked = luaL_optinteger(L, 2, 2);
  int workers = asked < 1 ? 1 : asked > 256 ? 256 : (int)asked;
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      return luaL_error(L, "paths[%d] is not a string", (int)i);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  hf_pool **guard = lua_newuserdatauv(L, sizeof *guard, 0);
  *guard = NULL;
  luaL_setmetatable(L, POOL_GUARD_MT);
  hf_pool *pool = *guard = hf_pool_new(workers, hf_lua_user_agent());
  if (!pool)
    return hf_lua_fail(L, "cannot start worker threads", "io");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    hf_hash_job *job = hf_hash_job_new(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (job)
      hf_pool_submit(pool, &job->base);
  }
  lua_createtable(L, (int)n, 0);
  hf_job *done;
  while ((done = hf_pool_wait(pool, -1)) != NULL) {
    hf_hash_job *job = (hf_hash_job *)done;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, job->path);
    lua_setfield(L, -2, "path");
    if (job->error == 0) {
      lua_pushstring(L, job->hex);
      lua_setfield(L, -2, "sha256");
      lua_pushinteger(L, (lua_Integer)job->bytes);
      lua_setfield(L, -2, "bytes");
    } else {
      lua_pushstring(L, job->message);
      lua_setfield(L, -2, "error");
      lua_pushstring(L, job->error == ENOENT ? "not_found" : "io");
      lua_setfield(L, -2, "code");
    }
    /* Job ids follow submission order, so results land in input order. */
    lua_rawseti(L, -2, (lua_Integer)job->base.id);
    done->destroy(done);
  }
  int interrupted = hf_pool_pending(pool) > 0;
  hf_pool_free(pool);
  *guard = NULL;
  if (interrupted)
    return hf_lua_fail(L, "interrupted", "interrupted");
  return 1;
}

void hf_lua_register_sha256(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"update", l_hasher_update}, {"hexdigest", l_hasher_hexdigest}, {"bytes", l_hasher_bytes},
      {"reset", l_hasher_reset},   {"close", l_hasher_close},         {NULL, NULL},
  };
  static const luaL_Reg meta[] = {{"__tostring", l_hasher_tostring}, {NULL, NULL}};
  hf_lua_register_type(L, HASHER_MT, methods, l_hasher_close, meta);
  hf_lua_register_type(L, POOL_GUARD_MT, NULL, l_pool_guard_close, NULL);
  static const luaL_Reg fns[] = {
      {"sha256", l_sha256},
      {"sha256_hasher", l_hasher_new},
      {"sha256_file", l_sha256_file},
      {"sha256_files", l_sha256_files},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
