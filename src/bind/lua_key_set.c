/* Lua binding of the string set: the first column of a CSV read into a set, in
 * C (a restart reads a progress file of a million lines in well under a second,
 * and holds it in tens of megabytes). The set answers set[key] (true or nil)
 * and #set, as a Lua table of keys would, so callers take either. */
#include <errno.h>
#include <string.h>

#include "hfscan/csv.h"
#include "hfscan/string_set.h"
#include "lua_bindings.h"

#define KEY_SET_MT "hfscan.key_set"

typedef struct {
  hf_string_set *set;
} lua_key_set;

static int l_key_set_free(lua_State *L) {
  lua_key_set *ks = luaL_checkudata(L, 1, KEY_SET_MT);
  hf_string_set_free(ks->set);
  ks->set = NULL;
  return 0;
}

static int l_key_set_index(lua_State *L) {
  lua_key_set *ks = luaL_checkudata(L, 1, KEY_SET_MT);
  size_t len;
  const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (key && ks->set && hf_string_set_has(ks->set, key, len))
    lua_pushboolean(L, 1);
  else
    lua_pushnil(L);
  return 1;
}

static int l_key_set_len(lua_State *L) {
  lua_key_set *ks = luaL_checkudata(L, 1, KEY_SET_MT);
  lua_pushinteger(L, ks->set ? (lua_Integer)hf_string_set_count(ks->set) : 0);
  return 1;
}

/* [-0, +1, m] The record's fields as a list. */
static void push_fields(lua_State *L, const hf_csv_record *rec) {
  lua_createtable(L, (int)rec->count, 0);
  for (size_t i = 0; i < rec->count; i++) {
    lua_pushlstring(L, rec->fields[i], rec->lens[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

#define KEY_SCAN_MT "hfscan.key_scan"

typedef struct {
  hf_csv_reader *r;
  hf_csv_record rec;
} key_scan;

static int key_scan_close(lua_State *L) {
  key_scan *ks = luaL_checkudata(L, 1, KEY_SCAN_MT);
  hf_csv_reader_close(ks->r);
  ks->r = NULL;
  hf_csv_record_free(&ks->rec);
  return 0;
}

/* Where each counted row goes: into the set, or (set NULL) as key -> second
 * field into the table at index map. */
typedef struct {
  hf_string_set *set;
  int map;
} row_sink;

static void keep_row(lua_State *L, const row_sink *sink, const hf_csv_record *rec) {
  if (sink->set) {
    if (hf_string_set_add(sink->set, rec->fields[0], rec->lens[0]) < 0)
      luaL_error(L, "out of memory");
    return;
  }
  lua_pushlstring(L, rec->fields[0], rec->lens[0]);
  lua_pushlstring(L, rec->fields[1], rec->lens[1]);
  lua_rawset(L, sink->map);
}

/* Reads the rows after the header into sink; those of another width than the
 * header's are left out. Sets rows, whole, torn and last in the info table at
 * info. */
static void scan_rows(lua_State *L, key_scan *ks, const row_sink *sink, size_t width, int info) {
  lua_Integer rows = 0;
  long long whole = hf_csv_reader_offset(ks->r), last = -1;
  int torn = 0;
  for (;;) {
    long long before = hf_csv_reader_offset(ks->r);
    int rc = hf_csv_reader_next(ks->r, &ks->rec, NULL, 0);
    if (rc <= 0 || !ks->rec.terminated) {
      torn = hf_csv_reader_offset(ks->r) > before;
      break;
    }
    whole = hf_csv_reader_offset(ks->r);
    if (ks->rec.count != width)
      continue;
    keep_row(L, sink, &ks->rec);
    rows++;
    last = before;
  }
  lua_pushinteger(L, rows);
  lua_setfield(L, info, "rows");
  lua_pushinteger(L, (lua_Integer)whole);
  lua_setfield(L, info, "whole");
  lua_pushboolean(L, torn);
  lua_setfield(L, info, "torn");
  /* The last row counted, read again: a table per row would cost what C saves. */
  if (last >= 0 && hf_csv_reader_seek(ks->r, last) == 0 &&
      hf_csv_reader_next(ks->r, &ks->rec, NULL, 0) == 1) {
    push_fields(L, &ks->rec);
    lua_setfield(L, info, "last");
  }
}

/* Reads path's header and rows: the result (a set, or a table for a map) is
 * at index 3 on return, the info table at 4. Returns 2, or the failure triple. */
static int read_keys(lua_State *L, int as_map) {
  const char *path = luaL_checkstring(L, 1);
  key_scan *ks = lua_newuserdatauv(L, sizeof *ks, 0); /* 2: closed on any exit */
  memset(ks, 0, sizeof *ks);
  luaL_setmetatable(L, KEY_SCAN_MT);
  lua_toclose(L, 2);
  char err[512];
  ks->r = hf_csv_reader_open(path, err, sizeof err);
  if (!ks->r)
    return hf_lua_fail(L, err, errno == ENOENT ? "not_found" : "io");
  row_sink sink = {NULL, 3};
  if (as_map) {
    lua_newtable(L); /* 3 */
  } else {
    lua_key_set *set = lua_newuserdatauv(L, sizeof *set, 0); /* 3 */
    set->set = NULL;
    luaL_setmetatable(L, KEY_SET_MT);
    if (!(set->set = hf_string_set_new()))
      return luaL_error(L, "out of memory");
    sink.set = set->set;
  }
  lua_newtable(L); /* 4: info */
  size_t width = 0;
  if (hf_csv_reader_next(ks->r, &ks->rec, NULL, 0) == 1) {
    width = ks->rec.count;
    push_fields(L, &ks->rec);
  } else {
    lua_newtable(L);
  }
  lua_setfield(L, 4, "header");
  /* A map needs a second field: a header narrower than two keeps no row. */
  scan_rows(L, ks, &sink, as_map && width < 2 ? (size_t)-1 : width, 4);
  return 2;
}

/* csv_key_set(path) -> set, { header = {...}, last = {...} | nil, rows, whole,
 * torn } | nil, message, "not_found" | "io"
 * The first field of every row after the header line whose width is the
 * header's, as a set; rows: how many; last: the last such row's fields; whole:
 * the bytes up to the end of the last whole line; torn: a cut line follows. */
static int l_csv_key_set(lua_State *L) { return read_keys(L, 0); }

/* csv_key_map(path) -> { [first field] = second field }, info | nil, message,
 * code: as csv_key_set, into a plain table (the last row of a key wins). No
 * table is made per row, so reading a million rows leaves no garbage. */
static int l_csv_key_map(lua_State *L) { return read_keys(L, 1); }

void hf_lua_register_key_set(lua_State *L) {
  static const luaL_Reg meta[] = {
      {"__index", l_key_set_index}, {"__len", l_key_set_len}, {NULL, NULL}};
  hf_lua_register_type(L, KEY_SET_MT, NULL, l_key_set_free, meta);
  hf_lua_register_type(L, KEY_SCAN_MT, NULL, key_scan_close, NULL);
  lua_pushcfunction(L, l_csv_key_set);
  lua_setfield(L, -2, "csv_key_set");
  lua_pushcfunction(L, l_csv_key_map);
  lua_setfield(L, -2, "csv_key_map");
}
