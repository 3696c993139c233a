/* Private: each lua_*.c file adds its functions to the module table at the top of
 * the stack and registers its metatables. */
#ifndef HFSCAN_LUA_BINDINGS_H
#define HFSCAN_LUA_BINDINGS_H

#include <lauxlib.h>
#include <lua.h>

#include "hfscan/http.h"

void hf_lua_register_sha256(lua_State *L);
void hf_lua_register_http(lua_State *L);
void hf_lua_register_pool(lua_State *L);
void hf_lua_register_ratelimit(lua_State *L);
void hf_lua_register_csv(lua_State *L);
void hf_lua_register_util(lua_State *L);
void hf_lua_register_sqlite(lua_State *L);
void hf_lua_register_dirlock(lua_State *L);
void hf_lua_register_key_set(lua_State *L);
void hf_lua_register_serve(lua_State *L);

/* ---- shared helpers (lua_util.c) ---- */

/* [-0, +3, -] Pushes the failure triple nil, message, code; returns 3. */
int hf_lua_fail(lua_State *L, const char *message, const char *code);
/* Read optional fields of the table at idx, raw (no metamethods); raise when a
 * field has the wrong type. A string returned stays alive as long as the table. */
const char *hf_lua_opt_string_field(lua_State *L, int idx, const char *key, const char *def);
lua_Number hf_lua_opt_number_field(lua_State *L, int idx, const char *key, lua_Number def);
/* As hf_lua_opt_number_field, and raises unless min <= value <= max. */
lua_Number hf_lua_opt_range_field(lua_State *L, int idx, const char *key, lua_Number def,
                                  lua_Number min, lua_Number max);
int hf_lua_opt_bool_field(lua_State *L, int idx, const char *key, int def);
/* [-0, +1, m] Pushes a response as a plain table; a partial hash moves into its
 * field 'partial' (see hf_lua_push_partial). */
void hf_lua_push_response(lua_State *L, hf_http_response *res);
/* [-0, +1, m] Pushes the response's partial hash as a userdata that owns it (the
 * response's pointer is cleared), or nil when there is none. */
void hf_lua_push_partial(lua_State *L, hf_http_response *res);
/* The pipeline of the partial-hash userdata at idx, taken from it (a second take
 * raises: a hash goes on only once), or NULL when idx is nil. Raises for anything else. */
hf_hash_pipeline *hf_lua_take_partial(lua_State *L, int idx, uint64_t *bytes);
/* Raises unless idx is nil or a partial hash not yet taken. */
void hf_lua_check_partial(lua_State *L, int idx);
/* A request read from a Lua table, owning copies of its strings, so it can
 * travel to a worker thread. */
typedef struct hf_owned_request {
  hf_http_request req;
  hf_headers headers;
  char *method, *url, *body, *bucket;
} hf_owned_request;
/* Raises a Lua error for a malformed request table. Free with hf_owned_request_free. */
void hf_lua_check_request(lua_State *L, int idx, hf_owned_request *out);
void hf_owned_request_free(hf_owned_request *r);
/* The User-Agent every transfer sends. */
const char *hf_lua_user_agent(void);

/* [-0, +0, m] Registers a userdata type: methods under __index (NULL: none),
 * close as both __gc and __close (so it must be safe to call twice), then the
 * metamethods of meta (NULL: none), which may replace __close (a scope's end
 * that commits) or add __tostring. */
void hf_lua_register_type(lua_State *L, const char *name, const luaL_Reg *methods,
                          lua_CFunction close, const luaL_Reg *meta);

/* ---- ratelimit userdata, used by the pool binding ---- */
struct hf_ratelimit *hf_lua_check_ratelimit(lua_State *L, int idx);

#endif
