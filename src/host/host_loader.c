/* A package searcher for the host. Module "hfscan.scan.repo" is looked up first as
 * <override_dir>/hfscan/scan/repo.lua (or .../repo/init.lua), then among the scripts compiled into
 * the binary; other modules fall through to Lua's usual path and cpath. */
#include "host_loader.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>
#include <unistd.h>

static const struct hf_bundled_script *find_bundled(const char *module) {
  for (const struct hf_bundled_script *s = hf_bundled_scripts; s->module; s++)
    if (strcmp(s->module, module) == 0)
      return s;
  return NULL;
}

/* [-0, +1, m] Pushes <dir>/<module with dots as slashes><suffix>. */
static const char *push_override_path(lua_State *L, const char *dir, const char *module,
                                      const char *suffix) {
  lua_pushstring(L, dir);
  lua_pushliteral(L, "/");
  luaL_gsub(L, module, ".", "/");
  lua_pushstring(L, suffix);
  lua_concat(L, 4);
  return lua_tostring(L, -1);
}

static int load_or_raise(lua_State *L, int status, const char *where) {
  if (status != LUA_OK)
    return luaL_error(L, "error loading module '%s' from %s:\n\t%s", lua_tostring(L, 1), where,
                      lua_tostring(L, -1));
  lua_pushstring(L, where);
  return 2; /* loader, and its location as the loader's second argument */
}

static int searcher(lua_State *L) {
  const char *module = luaL_checkstring(L, 1);
  const char *dir = lua_tostring(L, lua_upvalueindex(1));
  /* As Lua's own ?.lua;?/init.lua: a folder's init.lua is the folder's module. */
  static const char *const suffixes[] = {".lua", "/init.lua"};
  for (size_t i = 0; dir && i < sizeof suffixes / sizeof *suffixes; i++) {
    const char *path = push_override_path(L, dir, module, suffixes[i]);
    if (access(path, R_OK) == 0) {
      int status = luaL_loadfilex(L, path, "t");
      return load_or_raise(L, status, path);
    }
    lua_pop(L, 1);
  }
  const struct hf_bundled_script *s = find_bundled(module);
  if (!s) {
    lua_pushfstring(L, "no bundled script '%s'", module);
    return 1;
  }
  int status = luaL_loadbufferx(L, s->data, s->size, s->chunkname, "t");
  return load_or_raise(L, status, s->chunkname + 1);
}

void hf_host_install_loader(lua_State *L, const char *override_dir) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  /* Insert at position 2: after package.preload, before package.path. */
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  if (override_dir)
    lua_pushstring(L, override_dir);
  else
    lua_pushnil(L);
  lua_pushcclosure(L, searcher, 1);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}
