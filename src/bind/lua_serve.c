/* Lua binding of `hfscan serve`'s HTTP server (hfscan/server.h):
 *   hf.serve(config, edition) -> server | nil, message
 *     config: address, port, threads, client_timeout, connection_limit,
 *             body_limit, max_hashes
 *     edition: generation, database_uri, lookup_sql, repo_sql, info, openapi
 *              (JSON texts), flagged (JSON text, or nil: none recorded)
 *   server:port()            the port it listens on (when config.port was 0)
 *   server:publish(edition)  serves a newer database or documents from the next request
 *   server:wait(seconds)     -> "stop" (SIGINT, SIGTERM), "reopen" (SIGHUP) or nil
 *   server:stop(seconds)     drains (up to seconds) and stops; -> requests cut off
 * The server's own threads answer every request; Lua only waits and publishes. */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hfscan/interrupt.h"
#include "hfscan/server.h"
#include "lua_bindings.h"

#define SERVER_MT "hfscan.server"

typedef struct {
  hf_server *server;
} lua_server;

static atomic_int reopen_requested;

static void on_hangup(int sig) {
  (void)sig;
  atomic_store(&reopen_requested, 1);
}

static void install_hangup_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hangup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
}

static char *copied_field(lua_State *L, int idx, const char *key, int required) {
  const char *text = hf_lua_opt_string_field(L, idx, key, NULL);
  if (!text && required)
    luaL_error(L, "edition field '%s' must be a string", key);
  return text ? strdup(text) : NULL;
}

static void check_edition(lua_State *L, int idx, hf_server_edition *e) {
  luaL_checktype(L, idx, LUA_TTABLE);
  memset(e, 0, sizeof *e);
  e->generation = (unsigned long)hf_lua_opt_range_field(L, idx, "generation", 0, 0, 9.0e15);
  e->database_uri = copied_field(L, idx, "database_uri", 1);
  e->lookup_sql = copied_field(L, idx, "lookup_sql", 1);
  e->repo_sql = copied_field(L, idx, "repo_sql", 1);
  e->info = copied_field(L, idx, "info", 1);
  e->openapi = copied_field(L, idx, "openapi", 1);
  e->flagged = copied_field(L, idx, "flagged", 0);
  if (!e->database_uri || !e->lookup_sql || !e->repo_sql || !e->info || !e->openapi) {
    hf_server_edition_free(e);
    luaL_error(L, "out of memory");
  }
}

static lua_server *check_server(lua_State *L) {
  lua_server *ls = luaL_checkudata(L, 1, SERVER_MT);
  if (!ls->server)
    luaL_error(L, "attempt to use a stopped server");
  return ls;
}

static int l_serve(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  hf_server_config config = {
      .address = hf_lua_opt_string_field(L, 1, "address", "127.0.0.1"),
      .port = (unsigned)hf_lua_opt_range_field(L, 1, "port", 8585, 0, 65535),
      .threads = (unsigned)hf_lua_opt_range_field(L, 1, "threads", 2, 1, 256),
      .client_timeout = (unsigned)hf_lua_opt_range_field(L, 1, "client_timeout", 10, 1, 3600),
      .connection_limit =
          (unsigned)hf_lua_opt_range_field(L, 1, "connection_limit", 1000, 1, 100000),
      .body_limit = (size_t)hf_lua_opt_range_field(L, 1, "body_limit", 1 << 20, 1, 1 << 30),
      .max_hashes = (size_t)hf_lua_opt_range_field(L, 1, "max_hashes", 10000, 1, 1000000),
  };
  hf_server_edition edition;
  check_edition(L, 2, &edition);
  lua_server *ls = lua_newuserdatauv(L, sizeof *ls, 0);
  ls->server = NULL;
  luaL_setmetatable(L, SERVER_MT);
  char err[256];
  ls->server = hf_server_start(&config, &edition, err, sizeof err);
  if (!ls->server)
    return hf_lua_fail(L, err, "listen");
  install_hangup_handler();
  return 1;
}

static int l_port(lua_State *L) {
  lua_pushinteger(L, hf_server_port(check_server(L)->server));
  return 1;
}

static int l_publish(lua_State *L) {
  lua_server *ls = check_server(L);
  hf_server_edition edition;
  check_edition(L, 2, &edition);
  hf_server_publish(ls->server, &edition);
  return 0;
}

/* Waits in short slices, so a signal is seen within 20 ms. */
static int l_wait(lua_State *L) {
  check_server(L);
  double seconds = luaL_checknumber(L, 2);
  double end = hf_monotonic_seconds() + seconds;
  struct timespec slice = {0, 20 * 1000 * 1000};
  while (1) {
    if (hf_interrupt_requested()) {
      lua_pushliteral(L, "stop");
      return 1;
    }
    if (atomic_exchange(&reopen_requested, 0)) {
      lua_pushliteral(L, "reopen");
      return 1;
    }
    if (hf_monotonic_seconds() >= end)
      return 0;
    nanosleep(&slice, NULL);
  }
}

static int l_stop(lua_State *L) {
  lua_server *ls = luaL_checkudata(L, 1, SERVER_MT);
  double seconds = luaL_optnumber(L, 2, 0);
  unsigned cut = 0;
  if (ls->server)
    cut = hf_server_stop(ls->server, seconds);
  ls->server = NULL;
  lua_pushinteger(L, cut);
  return 1;
}

void hf_lua_register_serve(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"port", l_port}, {"publish", l_publish}, {"wait", l_wait}, {"stop", l_stop}, {NULL, NULL}};
  hf_lua_register_type(L, SERVER_MT, methods, l_stop, NULL);
  lua_pushcfunction(L, l_serve);
  lua_setfield(L, -2, "serve");
}
