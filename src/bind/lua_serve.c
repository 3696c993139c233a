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

static const char *required_field(lua_State *L, int idx, const char *key) {
  const char *text = hf_lua_opt_string_field(L, idx, key, NULL);
  if (!text)
    luaL_error(L, "edition field '%s' must be a string", key);
  return text;
}

static char *copy_of(const char *text, int *failed) {
  char *copy = text ? strdup(text) : NULL;
  if (text && !copy)
    *failed = 1;
  return copy;
}

/* Every field is read (and may raise) before any is copied: a raise leaks nothing. */
static void check_edition(lua_State *L, int idx, hf_server_edition *e) {
  luaL_checktype(L, idx, LUA_TTABLE);
  unsigned long generation =
      (unsigned long)hf_lua_opt_range_field(L, idx, "generation", 0, 0, 9.0e15);
  const char *uri = required_field(L, idx, "database_uri");
  const char *lookup_sql = required_field(L, idx, "lookup_sql");
  const char *repo_sql = required_field(L, idx, "repo_sql");
  const char *info = required_field(L, idx, "info");
  const char *openapi = required_field(L, idx, "openapi");
  const char *flagged = hf_lua_opt_string_field(L, idx, "flagged", NULL);
  int failed = 0;
  *e = (hf_server_edition){.generation = generation,
                           .database_uri = copy_of(uri, &failed),
                           .lookup_sql = copy_of(lookup_sql, &failed),
                           .repo_sql = copy_of(repo_sql, &failed),
                           .info = copy_of(info, &failed),
                           .openapi = copy_of(openapi, &failed),
                           .flagged = copy_of(flagged, &failed)};
  if (failed) {
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
      .answer_limit = (size_t)hf_lua_opt_range_field(L, 1, "answer_limit", 64 << 20, 1024, 1 << 30),
      .buffered_limit =
          (size_t)hf_lua_opt_range_field(L, 1, "buffered_limit", 64 << 20, 1024, 1 << 30),
  };
  /* The userdata first: once the edition is copied, nothing may raise. */
  lua_server *ls = lua_newuserdatauv(L, sizeof *ls, 0);
  ls->server = NULL;
  luaL_setmetatable(L, SERVER_MT);
  hf_server_edition edition;
  check_edition(L, 2, &edition);
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

static int l_wait(lua_State *L) {
  check_server(L);
  int woke = hf_sleep_watching(luaL_checknumber(L, 2), &reopen_requested);
  if (woke == HF_WOKE_BY_STOP) {
    lua_pushliteral(L, "stop");
    return 1;
  }
  if (woke == HF_WOKE_BY_FLAG) {
    atomic_store(&reopen_requested, 0);
    lua_pushliteral(L, "reopen");
    return 1;
  }
  return 0;
}

/* Also __gc and __close, whose second argument (an error object) is no drain time. */
static int l_stop(lua_State *L) {
  lua_server *ls = luaL_checkudata(L, 1, SERVER_MT);
  double seconds = lua_type(L, 2) == LUA_TNUMBER ? lua_tonumber(L, 2) : 0;
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
