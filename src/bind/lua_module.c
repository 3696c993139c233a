/* luaopen_hfscan: the native module table, for the host and for stock lua5.4. */
#include "hfscan/module.h"

#include <pthread.h>

#include "hfscan/http.h"
#include "lua_bindings.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void init_curl(void) { hf_http_global_init(); }

int luaopen_hfscan(lua_State *L) {
  /* curl_global_init is not thread-safe; do it once, before any worker starts. */
  pthread_once(&curl_once, init_curl);
  lua_newtable(L);
  hf_lua_register_util(L);
  hf_lua_register_sha256(L);
  hf_lua_register_http(L);
  hf_lua_register_ratelimit(L);
  hf_lua_register_pool(L);
  hf_lua_register_csv(L);
  hf_lua_register_key_set(L);
  hf_lua_register_sqlite(L);
  hf_lua_register_dirlock(L);
  hf_lua_register_serve(L);
  return 1;
}
