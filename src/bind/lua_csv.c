/* Lua binding of CSV: formatting and parsing strings, a streaming reader, and a
 * block writer (create, append, or atomic rewrite). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hfscan/csv.h"
#include "lua_bindings.h"

#define WRITER_MT "hfscan.csv_writer"
#define READER_MT "hfscan.csv_reader"

/* Rows are read raw (lua_rawlen, lua_rawgeti): no __len or __index can change a
 * row between the check and the formatting, or close the writer in between. */

/* Raises unless every field of the row at idx is a string or a number. Returns the
 * row's length. */
static size_t check_row(lua_State *L, int idx) {
  size_t n = lua_rawlen(L, idx);
  if (n > 100000)
    luaL_error(L, "a CSV row of %d fields is too long", (int)(n > INT_MAX ? INT_MAX : n));
  for (size_t i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, (lua_Integer)i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      luaL_error(L, "CSV field %d is a %s, not a string", (int)i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return n;
}

/* The row at idx must have passed check_row. */
static int append_row(lua_State *L, int idx, hf_buf *out) {
  /* Each field's string stays on the stack until the row is formatted, so numbers
   * are converted without touching the caller's table. */
  size_t n = lua_rawlen(L, idx);
  luaL_checkstack(L, (int)n + 4, "too many CSV fields");
  const char **fields = lua_newuserdatauv(L, (n ? n : 1) * sizeof *fields, 0);
  size_t *lens = lua_newuserdatauv(L, (n ? n : 1) * sizeof *lens, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    fields[i] = lua_tolstring(L, -1, &lens[i]);
  }
  int rc = hf_csv_append_row(out, fields, lens, n);
  lua_pop(L, (int)n + 2);
  return rc;
}

static int l_format_row(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  check_row(L, 1);
  hf_buf out = {0};
  int rc = append_row(L, 1, &out);
  if (rc == 0)
    lua_pushlstring(L, out.data ? out.data : "", out.len);
  hf_buf_free(&out);
  if (rc != 0)
    return luaL_error(L, "out of memory");
  return 1;
}

/* ---- reader ---- */

typedef struct {
  hf_csv_reader *r;
  hf_csv_record rec;
} lua_reader;

static int l_reader_close(lua_State *L) {
  lua_reader *lr = luaL_checkudata(L, 1, READER_MT);
  hf_csv_reader_close(lr->r);
  hf_csv_record_free(&lr->rec);
  lr->r = NULL;
  return 0;
}

/* [-0, +1, m] A closed reader: made before the resource, so that a memory error
 * while making it cannot leak one. */
static lua_reader *new_reader(lua_State *L) {
  lua_reader *lr = lua_newuserdatauv(L, sizeof *lr, 1);
  memset(lr, 0, sizeof *lr);
  luaL_setmetatable(L, READER_MT);
  return lr;
}

static int l_reader_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_reader *lr = new_reader(L);
  char err[512];
  lr->r = hf_csv_reader_open(path, err, sizeof err);
  if (!lr->r)
    return hf_lua_fail(L, err, errno == ENOENT ? "not_found" : "io");
  return 1;
}

/* reader:next() -> fields, is_comment, terminated, line | nil (end) | nil, msg, "malformed" */
static int l_reader_next(lua_State *L) {
  lua_reader *lr = luaL_checkudata(L, 1, READER_MT);
  if (!lr->r)
    return luaL_error(L, "attempt to use a closed CSV reader");
  char err[256];
  int rc = hf_csv_reader_next(lr->r, &lr->rec, err, sizeof err);
  if (rc == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (rc < 0)
    return hf_lua_fail(L, err, "malformed");
  lua_createtable(L, (int)lr->rec.count, 0);
  for (size_t i = 0; i < lr->rec.count; i++) {
    lua_pushlstring(L, lr->rec.fields[i], lr->rec.lens[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushboolean(L, lr->rec.is_comment);
  lua_pushboolean(L, lr->rec.terminated);
  lua_pushinteger(L, lr->rec.line);
  return 4;
}

/* reader:offset() -> the bytes consumed: where the next record begins. */
static int l_reader_offset(lua_State *L) {
  lua_reader *lr = luaL_checkudata(L, 1, READER_MT);
  if (!lr->r)
    return luaL_error(L, "attempt to use a closed CSV reader");
  lua_pushinteger(L, (lua_Integer)hf_csv_reader_offset(lr->r));
  return 1;
}

/* reader:seek(offset) -> true | nil, message, "io": reads on from a record's
 * start (lines counted from 1 there). */
static int l_reader_seek(lua_State *L) {
  lua_reader *lr = luaL_checkudata(L, 1, READER_MT);
  lua_Integer offset = luaL_checkinteger(L, 2);
  if (!lr->r)
    return luaL_error(L, "attempt to use a closed CSV reader");
  int rc = hf_csv_reader_seek(lr->r, (long long)offset);
  if (rc != 0)
    return hf_lua_fail(L, strerror(rc), "io");
  lua_pushboolean(L, 1);
  return 1;
}

/* hf.csv_parse_string(s) -> reader over a string (the string is kept alive). */
static int l_reader_from_string(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  lua_reader *lr = new_reader(L);
  lr->r = hf_csv_reader_from_string(data, len);
  if (!lr->r)
    return luaL_error(L, "out of memory");
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ---- writer ---- */

typedef struct {
  hf_csv_writer *w;
} lua_writer;

static lua_writer *check_writer(lua_State *L) {
  lua_writer *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (!lw->w)
    luaL_error(L, "attempt to use a closed CSV writer");
  return lw;
}

static int l_writer_open(lua_State *L) {
  static const char *const modes[] = {"create", "append", "rewrite", NULL};
  static const hf_csv_open_mode values[] = {HF_CSV_CREATE, HF_CSV_APPEND, HF_CSV_REWRITE};
  const char *path = luaL_checkstring(L, 1);
  int mode = luaL_checkoption(L, 2, "create", modes);
  lua_writer *lw = lua_newuserdatauv(L, sizeof *lw, 0);
  lw->w = NULL;
  luaL_setmetatable(L, WRITER_MT);
  char err[512];
  lw->w = hf_csv_writer_open(path, values[mode], err, sizeof err);
  if (!lw->w)
    return hf_lua_fail(L, err, "io");
  return 1;
}

/* true, or nil and "<what> <path>: <reason>", "io". */
static int io_result(lua_State *L, const hf_csv_writer *w, int code, const char *what) {
  if (code == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushfstring(L, "%s %s: %s", what, hf_csv_writer_path(w), strerror(code));
  return hf_lua_fail(L, lua_tostring(L, -1), "io");
}

static int l_writer_comment(lua_State *L) {
  lua_writer *lw = check_writer(L);
  if (hf_csv_writer_comment(lw->w, luaL_checkstring(L, 2)) != 0)
    return luaL_error(L, "out of memory");
  lua_settop(L, 1);
  return 1;
}

static int queue_row(lua_State *L, lua_writer *lw, int idx) {
  hf_buf out = {0};
  int rc = append_row(L, idx, &out);
  /* Rows are queued as formatted text and written by flush. */
  if (rc == 0)
    rc = hf_csv_writer_row_raw(lw->w, out.data, out.len);
  hf_buf_free(&out);
  return rc;
}

static int l_writer_row(lua_State *L) {
  lua_writer *lw = check_writer(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  check_row(L, 2);
  if (queue_row(L, lw, 2) != 0)
    return luaL_error(L, "out of memory");
  lua_settop(L, 1);
  return 1;
}

/* writer:write_block(rows): queues every row and writes them with one write(2),
 * so a killed process leaves either all of them or none. Every row is checked
 * before any is queued: a bad row must not leave the rows before it queued for
 * a later flush. */
static int l_writer_write_block(lua_State *L) {
  lua_writer *lw = check_writer(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
      return luaL_error(L, "row %d is not a table", (int)i);
    check_row(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (queue_row(L, lw, lua_gettop(L)) != 0)
      return luaL_error(L, "out of memory");
    lua_pop(L, 1);
  }
  return io_result(L, lw->w, hf_csv_writer_flush(lw->w), "cannot write");
}

/* writer:write_raw(text): writes text that is already CSV (whole rows, as a
 * file hfscan wrote holds them) with one write(2): a merge copies blocks of
 * rows by their bytes. */
static int l_writer_write_raw(lua_State *L) {
  lua_writer *lw = check_writer(L);
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  if (hf_csv_writer_row_raw(lw->w, text, len) != 0)
    return luaL_error(L, "out of memory");
  return io_result(L, lw->w, hf_csv_writer_flush(lw->w), "cannot write");
}

static int l_writer_flush(lua_State *L) {
  lua_writer *lw = check_writer(L);
  return io_result(L, lw->w, hf_csv_writer_flush(lw->w), "cannot write");
}

/* writer:rename(path) -> true | nil, message: the file gets its final name; the
 * writer goes on writing to it. */
static int l_writer_rename(lua_State *L) {
  lua_writer *lw = check_writer(L);
  char err[512];
  if (hf_csv_writer_rename(lw->w, luaL_checkstring(L, 2), err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_writer_sync(lua_State *L) {
  lua_writer *lw = check_writer(L);
  return io_result(L, lw->w, hf_csv_writer_sync(lw->w), "cannot sync");
}

static int l_writer_commit(lua_State *L) {
  lua_writer *lw = check_writer(L);
  char err[512];
  int rc = hf_csv_writer_commit(lw->w, err, sizeof err);
  lw->w = NULL;
  if (rc != 0)
    return hf_lua_fail(L, err, "io");
  lua_pushboolean(L, 1);
  return 1;
}

static int l_writer_abort(lua_State *L) {
  lua_writer *lw = luaL_checkudata(L, 1, WRITER_MT);
  hf_csv_writer_abort(lw->w);
  lw->w = NULL;
  return 0;
}

/* The end of a <close> scope: a normal exit commits (and a failed commit
 * raises, not to lose rows unseen); an exit by an error (Lua passes it as the
 * second argument) aborts. */
static int l_writer_scope_close(lua_State *L) {
  lua_writer *lw = luaL_checkudata(L, 1, WRITER_MT);
  if (!lw->w)
    return 0;
  if (!lua_isnoneornil(L, 2))
    return l_writer_abort(L);
  char err[512];
  int rc = hf_csv_writer_commit(lw->w, err, sizeof err);
  lw->w = NULL;
  if (rc != 0)
    return luaL_error(L, "%s", err);
  return 0;
}

/* writer:size() -> the bytes its file holds (flushed rows), or nil, message, "io". */
static int l_writer_size(lua_State *L) {
  long long size = hf_csv_writer_size(check_writer(L)->w);
  if (size < 0)
    return hf_lua_fail(L, strerror(errno), "io");
  lua_pushinteger(L, (lua_Integer)size);
  return 1;
}

static int l_writer_temp_path(lua_State *L) {
  const char *p = hf_csv_writer_temp_path(check_writer(L)->w);
  lua_pushstring(L, p);
  return 1;
}

void hf_lua_register_csv(lua_State *L) {
  static const luaL_Reg writer_methods[] = {
      {"comment", l_writer_comment},
      {"row", l_writer_row},
      {"write_block", l_writer_write_block},
      {"write_raw", l_writer_write_raw},
      {"flush", l_writer_flush},
      {"sync", l_writer_sync},
      {"rename", l_writer_rename},
      {"commit", l_writer_commit},
      {"close", l_writer_commit},
      {"abort", l_writer_abort},
      {"temp_path", l_writer_temp_path},
      {"size", l_writer_size},
      {NULL, NULL},
  };
  static const luaL_Reg reader_methods[] = {
      {"next", l_reader_next},
      {"offset", l_reader_offset},
      {"seek", l_reader_seek},
      {"close", l_reader_close},
      {NULL, NULL},
  };
  /* A writer the collector finds unclosed is aborted: a rewrite only takes
   * effect by a commit, or by the normal end of its <close> scope. */
  static const luaL_Reg writer_meta[] = {{"__close", l_writer_scope_close}, {NULL, NULL}};
  hf_lua_register_type(L, WRITER_MT, writer_methods, l_writer_abort, writer_meta);
  hf_lua_register_type(L, READER_MT, reader_methods, l_reader_close, NULL);
  static const luaL_Reg fns[] = {
      {"csv_format_row", l_format_row},
      {"csv_reader", l_reader_open},
      {"csv_string_reader", l_reader_from_string},
      {"csv_writer", l_writer_open},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
