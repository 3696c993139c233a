/* The native Lua module: `require "hfscan"` in a stock lua5.4, preloaded by the host. */
#ifndef HFSCAN_MODULE_H
#define HFSCAN_MODULE_H

#include <lua.h>

/* [-0, +1, e] Pushes the module table. */
int luaopen_hfscan(lua_State *L);

#endif
