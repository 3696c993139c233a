/* Lua binding of SQLite, just what the database commands need:
 *   hf.sqlite_open(path [, mode]) -> db | nil, message, "io"
 *     mode "rw" (the default) opens read-write and creates the file; "ro" opens
 *     read-only and never creates; "immutable" is "ro" that also trusts nothing
 *     changes the file (URI immutable=1: no locks, no -shm), which is what
 *     reading a WAL-mode database in a folder this user cannot write needs.
 *     path "" is a private temporary database, removed when it closes.
 *   db:exec(sql)                         run statements without results
 *   db:query(sql, ...)  -> { {col = value, ...}, ... }   with ? parameters
 *   db:run(sql, ...)    -> changes                       one statement with ? parameters
 *   db:prepare(sql)     -> statement, whose :run(...) binds, steps and resets it
 *                          (-> changes): a bulk load prepares its INSERT once;
 *                          statement:close() (also <close> and the collector)
 *   db:close()
 * Misuse and SQL errors raise, with SQLite's message. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "lua_bindings.h"

#define SQLITE_MT "hfscan.sqlite"

typedef struct {
  sqlite3 *db;
} lua_sqlite;

static lua_sqlite *check_db(lua_State *L) {
  lua_sqlite *s = luaL_checkudata(L, 1, SQLITE_MT);
  if (!s->db)
    luaL_error(L, "attempt to use a closed database");
  return s;
}

/* A URI naming path: '%', '?' and '#' would end or escape its path part. */
static void push_file_uri(lua_State *L, const char *path, const char *query) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "file:");
  for (const char *p = path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#') {
      char escaped[4];
      snprintf(escaped, sizeof escaped, "%%%02X", (unsigned)(unsigned char)*p);
      luaL_addstring(&b, escaped);
    } else {
      luaL_addchar(&b, *p);
    }
  }
  luaL_addstring(&b, query);
  luaL_pushresult(&b);
}

enum open_mode { OPEN_READ_WRITE, OPEN_READ_ONLY, OPEN_IMMUTABLE };

static int l_open(lua_State *L) {
  static const char *const modes[] = {"rw", "ro", "immutable", NULL}; /* as enum open_mode */
  const char *path = luaL_checkstring(L, 1);
  enum open_mode mode = (enum open_mode)luaL_checkoption(L, 2, "rw", modes);
  int flags =
      mode == OPEN_READ_WRITE ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  /* The private temporary database ("") may ATTACH a file:...?mode=ro URI: a
   * comparison reads a folder's database without opening it for writing. */
  if (mode == OPEN_READ_WRITE && path[0] == '\0')
    flags |= SQLITE_OPEN_URI;
  const char *name = path;
  if (mode == OPEN_IMMUTABLE) {
    push_file_uri(L, path, "?immutable=1");
    name = lua_tostring(L, -1);
    flags |= SQLITE_OPEN_URI;
  }
  lua_sqlite *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->db = NULL;
  luaL_setmetatable(L, SQLITE_MT);
  if (sqlite3_open_v2(name, &s->db, flags, NULL) != SQLITE_OK) {
    lua_pushfstring(L, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_close(s->db);
    s->db = NULL;
    return hf_lua_fail(L, lua_tostring(L, -1), "io");
  }
  /* Concurrent readers (lookup) while a scan writes. */
  sqlite3_busy_timeout(s->db, 10000);
  return 1;
}

static int l_close(lua_State *L) {
  lua_sqlite *s = luaL_checkudata(L, 1, SQLITE_MT);
  if (s->db)
    sqlite3_close_v2(s->db);
  s->db = NULL;
  return 0;
}

static int l_exec(lua_State *L) {
  lua_sqlite *s = check_db(L);
  char *err = NULL;
  if (sqlite3_exec(s->db, luaL_checkstring(L, 2), NULL, NULL, &err) != SQLITE_OK) {
    lua_pushstring(L, err ? err : "unknown error");
    sqlite3_free(err);
    return lua_error(L);
  }
  return 0;
}

/* Parameters are checked before the statement exists: a raise after
 * sqlite3_prepare_v2 would skip sqlite3_finalize and leak the statement. */
static void check_params(lua_State *L, int first_param) {
  for (int i = first_param; i <= lua_gettop(L); i++) {
    int t = lua_type(L, i);
    if (t != LUA_TNIL && t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TSTRING)
      luaL_typeerror(L, i, "nil, number, boolean or string");
  }
}

#define STMT_MT "hfscan.sqlite_statement"

/* A statement lives in a userdata, so that a raise while rows are pushed (memory
 * running out) still finalizes it when the collector runs. */
static int l_stmt_gc(lua_State *L) {
  sqlite3_stmt **box = luaL_checkudata(L, 1, STMT_MT);
  sqlite3_finalize(*box);
  *box = NULL;
  return 0;
}

/* Binds the Lua values at stack indices first_param..last to stmt's ?
 * parameters. Raises with SQLite's message (the caller owns stmt's finalizing). */
static void bind_params(lua_State *L, lua_sqlite *s, sqlite3_stmt *stmt, int first_param,
                        int last) {
  for (int i = first_param; i <= last; i++) {
    int at = i - first_param + 1, rc;
    switch (lua_type(L, i)) {
    case LUA_TNIL:
      rc = sqlite3_bind_null(stmt, at);
      break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, i) ? sqlite3_bind_int64(stmt, at, lua_tointeger(L, i))
                               : sqlite3_bind_double(stmt, at, lua_tonumber(L, i));
      break;
    case LUA_TBOOLEAN:
      rc = sqlite3_bind_int(stmt, at, lua_toboolean(L, i));
      break;
    default: {
      size_t len;
      const char *v = lua_tolstring(L, i, &len);
      rc = sqlite3_bind_text(stmt, at, v, (int)len, SQLITE_TRANSIENT);
    }
    }
    if (rc != SQLITE_OK)
      luaL_error(L, "%s", sqlite3_errmsg(s->db));
  }
}

/* Prepares sql (argument 2) with the parameters from first_param on, and pushes
 * the userdata that owns the statement. */
static sqlite3_stmt *prepare(lua_State *L, lua_sqlite *s, int first_param) {
  const char *sql = luaL_checkstring(L, 2);
  check_params(L, first_param);
  int n = lua_gettop(L);
  sqlite3_stmt **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, STMT_MT);
  if (sqlite3_prepare_v2(s->db, sql, -1, box, NULL) != SQLITE_OK)
    luaL_error(L, "%s", sqlite3_errmsg(s->db));
  sqlite3_stmt *stmt = *box;
  bind_params(L, s, stmt, first_param, n); /* the userdata finalizes it on a raise */
  return stmt;
}

/* Finalizes the statement that prepare pushed at index box_index. */
static void finish(lua_State *L, int box_index) {
  sqlite3_stmt **box = lua_touserdata(L, box_index);
  sqlite3_finalize(*box);
  *box = NULL;
}

static void push_column(lua_State *L, sqlite3_stmt *stmt, int c) {
  switch (sqlite3_column_type(stmt, c)) {
  case SQLITE_INTEGER:
    lua_pushinteger(L, sqlite3_column_int64(stmt, c));
    break;
  case SQLITE_FLOAT:
    lua_pushnumber(L, sqlite3_column_double(stmt, c));
    break;
  case SQLITE_NULL:
    lua_pushnil(L);
    break;
  default:
    lua_pushlstring(L, (const char *)sqlite3_column_text(stmt, c),
                    (size_t)sqlite3_column_bytes(stmt, c));
  }
}

static int l_query(lua_State *L) {
  lua_sqlite *s = check_db(L);
  sqlite3_stmt *stmt = prepare(L, s, 3);
  int box = lua_gettop(L);
  lua_newtable(L);
  int rows = 0, rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    int cols = sqlite3_column_count(stmt);
    lua_createtable(L, 0, cols);
    for (int c = 0; c < cols; c++) {
      push_column(L, stmt, c);
      const char *name = sqlite3_column_name(stmt, c);
      lua_setfield(L, -2, name ? name : "?"); /* NULL only when memory runs out */
    }
    lua_rawseti(L, -2, ++rows);
  }
  finish(L, box);
  if (rc != SQLITE_DONE)
    return luaL_error(L, "%s", sqlite3_errmsg(s->db));
  return 1;
}

static int l_run(lua_State *L) {
  lua_sqlite *s = check_db(L);
  sqlite3_stmt *stmt = prepare(L, s, 3);
  int rc = sqlite3_step(stmt);
  finish(L, lua_gettop(L));
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return luaL_error(L, "%s", sqlite3_errmsg(s->db));
  lua_pushinteger(L, sqlite3_changes(s->db));
  return 1;
}

/* ---- prepared statements: db:prepare(sql) ---- */

#define PREPARED_MT "hfscan.sqlite_prepared"

typedef struct {
  sqlite3_stmt *stmt;
  lua_sqlite *owner; /* kept alive by the userdata's user value */
} prepared;

static prepared *check_prepared(lua_State *L) {
  prepared *p = luaL_checkudata(L, 1, PREPARED_MT);
  if (!p->stmt)
    luaL_error(L, "attempt to use a closed statement");
  if (!p->owner->db)
    luaL_error(L, "attempt to use a statement of a closed database");
  return p;
}

static int l_prepare(lua_State *L) {
  lua_sqlite *s = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  prepared *p = lua_newuserdatauv(L, sizeof *p, 1);
  p->stmt = NULL;
  p->owner = s;
  luaL_setmetatable(L, PREPARED_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (sqlite3_prepare_v2(s->db, sql, -1, &p->stmt, NULL) != SQLITE_OK)
    return luaL_error(L, "%s", sqlite3_errmsg(s->db));
  return 1;
}

/* statement:run(...) -> changes. The statement is reset whatever happens, so
 * that a failed run leaves it ready for the next. */
static int l_prepared_run(lua_State *L) {
  prepared *p = check_prepared(L);
  check_params(L, 2);
  sqlite3_reset(p->stmt);
  sqlite3_clear_bindings(p->stmt);
  bind_params(L, p->owner, p->stmt, 2, lua_gettop(L));
  int rc = sqlite3_step(p->stmt);
  sqlite3_reset(p->stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return luaL_error(L, "%s", sqlite3_errmsg(p->owner->db));
  lua_pushinteger(L, sqlite3_changes(p->owner->db));
  return 1;
}

static int l_prepared_close(lua_State *L) {
  prepared *p = luaL_checkudata(L, 1, PREPARED_MT);
  sqlite3_finalize(p->stmt);
  p->stmt = NULL;
  return 0;
}

void hf_lua_register_sqlite(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"exec", l_exec},       {"query", l_query}, {"run", l_run},
      {"prepare", l_prepare}, {"close", l_close}, {NULL, NULL},
  };
  static const luaL_Reg statement_methods[] = {
      {"run", l_prepared_run}, {"close", l_prepared_close}, {NULL, NULL}};
  hf_lua_register_type(L, SQLITE_MT, methods, l_close, NULL);
  hf_lua_register_type(L, STMT_MT, NULL, l_stmt_gc, NULL);
  hf_lua_register_type(L, PREPARED_MT, statement_methods, l_prepared_close, NULL);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "sqlite_open");
}
