/* Lua binding of HTTP: hf.http(request) performs one request on the calling
 * thread (the pool binding runs many on workers). */
#include <stdlib.h>

#include "hfscan/interrupt.h"
#include "hfscan/paced_http.h"
#include "hfscan/ratelimit.h"
#include "lua_bindings.h"

#define CLIENT_MT "hfscan.http_client"
#define PARTIAL_MT "hfscan.partial_hash"

/* A download hashed part-way, waiting for a request to continue it. */
typedef struct {
  hf_hash_pipeline *hash; /* NULL once taken by a request, or closed */
  uint64_t bytes;
} lua_partial;

static int l_partial_close(lua_State *L) {
  lua_partial *p = luaL_checkudata(L, 1, PARTIAL_MT);
  hf_hash_pipeline_free(p->hash);
  p->hash = NULL;
  return 0;
}

static int l_partial_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)((lua_partial *)luaL_checkudata(L, 1, PARTIAL_MT))->bytes);
  return 1;
}

void hf_lua_push_partial(lua_State *L, hf_http_response *res) {
  if (!res->partial) {
    lua_pushnil(L);
    return;
  }
  lua_partial *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->hash = NULL;
  luaL_setmetatable(L, PARTIAL_MT);
  p->hash = res->partial;
  p->bytes = res->partial_bytes;
  res->partial = NULL;
}

void hf_lua_check_partial(lua_State *L, int idx) {
  if (lua_isnil(L, idx))
    return;
  lua_partial *p = luaL_testudata(L, idx, PARTIAL_MT);
  if (!p)
    luaL_error(L, "field 'continue' must be a response's partial hash");
  if (!p->hash)
    luaL_error(L, "this partial hash was already continued or closed");
}

hf_hash_pipeline *hf_lua_take_partial(lua_State *L, int idx, uint64_t *bytes) {
  hf_lua_check_partial(L, idx);
  if (lua_isnil(L, idx))
    return NULL;
  lua_partial *p = lua_touserdata(L, idx);
  hf_hash_pipeline *hash = p->hash;
  *bytes = p->bytes;
  p->hash = NULL;
  return hash;
}

typedef struct {
  hf_http_client *client;
} lua_client;

static int l_client_gc(lua_State *L) {
  lua_client *lc = luaL_checkudata(L, 1, CLIENT_MT);
  hf_http_client_free(lc->client);
  lc->client = NULL;
  return 0;
}

/* The state's own client, kept in the registry so its connections are reused. */
static hf_http_client *state_client(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_MT ".instance") == LUA_TUSERDATA) {
    lua_client *lc = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lc->client;
  }
  lua_pop(L, 1);
  lua_client *lc = lua_newuserdatauv(L, sizeof *lc, 0);
  lc->client = NULL;
  luaL_setmetatable(L, CLIENT_MT);
  lc->client = hf_http_client_new(hf_lua_user_agent());
  lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_MT ".instance");
  if (!lc->client)
    luaL_error(L, "cannot create an HTTP client");
  return lc->client;
}

/* hf.http{url=, method=, headers=, body=, sink=, ..., limiter=, bucket=}
 *   -> response table | nil, message, code */
static int l_http(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  /* Everything that can raise comes before the request's copies are made. */
  lua_pushliteral(L, "limiter");
  hf_ratelimit *rl = lua_rawget(L, 1) == LUA_TNIL ? NULL : hf_lua_check_ratelimit(L, -1);
  lua_pop(L, 1); /* the table keeps the limiter alive */
  hf_http_client *client = state_client(L);
  hf_owned_request r;
  hf_lua_check_request(L, 1, &r);

  hf_http_response res;
  int rc = hf_paced_perform(client, rl, r.bucket, 0, &r.req, &res, NULL);
  hf_owned_request_free(&r);
  if (rc != 0) {
    int n = hf_lua_fail(L, res.error_message, res.error_code);
    hf_lua_push_partial(L, &res);
    hf_http_response_free(&res);
    return n + 1;
  }
  hf_lua_push_response(L, &res);
  hf_http_response_free(&res);
  return 1;
}

/* redirect_refusal(from, to) -> nil when a redirect may be followed, else why not */
static int l_redirect_refusal(lua_State *L) {
  const char *why = hf_http_redirect_refusal(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
  if (why)
    lua_pushstring(L, why);
  else
    lua_pushnil(L);
  return 1;
}

static int l_same_origin(lua_State *L) {
  lua_pushboolean(L, hf_http_same_origin(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
  return 1;
}

void hf_lua_register_http(lua_State *L) {
  static const luaL_Reg partial_methods[] = {
      {"bytes", l_partial_bytes}, {"close", l_partial_close}, {NULL, NULL}};
  hf_lua_register_type(L, PARTIAL_MT, partial_methods, l_partial_close, NULL);
  hf_lua_register_type(L, CLIENT_MT, NULL, l_client_gc, NULL);
  static const luaL_Reg fns[] = {
      {"http", l_http},
      {"same_origin", l_same_origin},
      {"redirect_refusal", l_redirect_refusal},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
