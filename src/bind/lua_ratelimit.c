/* Lua binding of the rate limiter: hf.ratelimiter() -> limiter. */
#include <time.h>

#include "hfscan/interrupt.h"
#include "hfscan/ratelimit.h"
#include "lua_bindings.h"

#define LIMITER_MT "hfscan.ratelimiter"

typedef struct {
  hf_ratelimit *rl;
} lua_limiter;

hf_ratelimit *hf_lua_check_ratelimit(lua_State *L, int idx) {
  lua_limiter *ll = luaL_checkudata(L, idx, LIMITER_MT);
  if (!ll->rl)
    luaL_error(L, "attempt to use a closed rate limiter");
  return ll->rl;
}

static int l_new(lua_State *L) {
  lua_limiter *ll = lua_newuserdatauv(L, sizeof *ll, 0);
  ll->rl = NULL;
  luaL_setmetatable(L, LIMITER_MT);
  ll->rl = hf_ratelimit_new();
  if (!ll->rl)
    return luaL_error(L, "out of memory");
  return 1;
}

static int l_close(lua_State *L) {
  lua_limiter *ll = luaL_checkudata(L, 1, LIMITER_MT);
  hf_ratelimit_release(ll->rl); /* pools holding it keep their own reference */
  ll->rl = NULL;
  return 0;
}

static int l_set_spacing(lua_State *L) {
  hf_ratelimit_set_spacing(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2),
                           luaL_checknumber(L, 3));
  return 0;
}

static int l_set_spread(lua_State *L) {
  hf_ratelimit_set_spread_fraction(hf_lua_check_ratelimit(L, 1), luaL_checknumber(L, 2));
  return 0;
}

/* limiter:reserve(bucket) -> seconds to wait, booked. When booked, wait that
 * long and send the request with reserved = true; when not (the window is
 * spent), wait and ask again. The wait happens in the caller: a Lua task can
 * sleep without holding a worker. */
static int l_reserve(lua_State *L) {
  double now = hf_monotonic_seconds();
  int booked = 0;
  double start =
      hf_ratelimit_reserve(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2), now, &booked);
  lua_pushnumber(L, start > now ? start - now : 0);
  lua_pushboolean(L, booked);
  return 2;
}

static int l_cancel(lua_State *L) {
  hf_ratelimit_cancel(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2));
  return 0;
}

static int l_note_wait(lua_State *L) {
  hf_ratelimit_note_wait(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2),
                         luaL_checknumber(L, 3));
  return 0;
}

static int l_acquire(lua_State *L) {
  double waited = hf_ratelimit_acquire(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2));
  if (waited < 0)
    return hf_lua_fail(L, "interrupted", "interrupted");
  lua_pushnumber(L, waited);
  return 1;
}

/* limiter:observe(bucket, response) feeds a response table's status and headers. */
static int l_observe(lua_State *L) {
  hf_ratelimit *rl = hf_lua_check_ratelimit(L, 1);
  const char *bucket = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  long status = (long)hf_lua_opt_number_field(L, 3, "status", 0);
  hf_headers headers = {0};
  lua_pushliteral(L, "headers");
  if (lua_rawget(L, 3) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1))
        hf_headers_add(&headers, lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  hf_ratelimit_observe(rl, bucket, status, &headers, hf_monotonic_seconds());
  hf_headers_clear(&headers);
  return 0;
}

static void set_number(lua_State *L, const char *key, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

static void set_integer(lua_State *L, const char *key, long v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

static int l_state(lua_State *L) {
  hf_bucket_state s;
  if (hf_ratelimit_state(hf_lua_check_ratelimit(L, 1), luaL_checkstring(L, 2),
                         hf_monotonic_seconds(), &s) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 10);
  set_number(L, "spacing", s.spacing);
  set_integer(L, "quota", s.quota);
  set_integer(L, "window", s.window);
  set_integer(L, "remaining", s.remaining);
  set_number(L, "reset_in", s.reset_in);
  set_number(L, "blocked_for", s.blocked_for);
  set_integer(L, "in_flight", s.in_flight);
  set_integer(L, "requests", s.requests);
  set_integer(L, "throttled", s.throttled);
  set_number(L, "waited", s.waited);
  return 1;
}

/* limiter:suspicious() -> count, latest: how many values from the server the
 * limiter refused or cut down (hf_ratelimit_suspicious), and a line on the latest
 * one (nil while the count is 0), for one warning in the log. */
static int l_suspicious(lua_State *L) {
  char latest[160];
  long count = hf_ratelimit_suspicious(hf_lua_check_ratelimit(L, 1), latest, sizeof latest);
  lua_pushinteger(L, count);
  if (count == 0)
    lua_pushnil(L);
  else
    lua_pushstring(L, latest);
  return 2;
}

/* RateLimit and RateLimit-Policy read alike: a bucket name and two numbers. */
typedef int (*bucket_header_parser)(const char *, char *, size_t, long *, long *);

static int push_parsed(lua_State *L, bucket_header_parser parse) {
  char bucket[64];
  long first, second;
  if (parse(luaL_checkstring(L, 1), bucket, sizeof bucket, &first, &second) != 0)
    return 0;
  lua_pushstring(L, bucket);
  lua_pushinteger(L, first);
  lua_pushinteger(L, second);
  return 3;
}

/* "bucket";r=N;t=S -> bucket, r, t (nothing when unreadable or out of range,
 * so r and t are nil: see hf_ratelimit_parse_header) */
static int l_parse_header(lua_State *L) { return push_parsed(L, hf_ratelimit_parse_header); }

/* "fixed window";"bucket";q=N;w=S -> bucket, q, w (nothing when unreadable or
 * out of range) */
static int l_parse_policy(lua_State *L) { return push_parsed(L, hf_ratelimit_parse_policy); }

/* parse_retry_after(value [, now]) -> seconds, or nil: delta-seconds or an
 * HTTP-date against now (seconds since the epoch; default the clock), as the
 * limiter reads it (hf_ratelimit_parse_retry_after). */
static int l_parse_retry_after(lua_State *L) {
  const char *value = luaL_optstring(L, 1, NULL);
  double now = luaL_opt(L, luaL_checknumber, 2, (lua_Number)time(NULL));
  double seconds = hf_ratelimit_parse_retry_after(value, now);
  if (seconds < 0)
    luaL_pushfail(L);
  else
    lua_pushnumber(L, seconds);
  return 1;
}

void hf_lua_register_ratelimit(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"set_spacing", l_set_spacing},
      {"set_spread_fraction", l_set_spread},
      {"acquire", l_acquire},
      {"reserve", l_reserve},
      {"cancel", l_cancel},
      {"note_wait", l_note_wait},
      {"observe", l_observe},
      {"state", l_state},
      {"suspicious", l_suspicious},
      {"close", l_close},
      {NULL, NULL},
  };
  hf_lua_register_type(L, LIMITER_MT, methods, l_close, NULL);
  static const luaL_Reg fns[] = {
      {"ratelimiter", l_new},
      {"parse_ratelimit", l_parse_header},
      {"parse_ratelimit_policy", l_parse_policy},
      {"parse_retry_after", l_parse_retry_after},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
