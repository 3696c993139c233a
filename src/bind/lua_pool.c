/* Lua binding of the worker pool: hf.pool(workers [, limiter]) -> pool.
 * pool:submit{kind="http", url=..., bucket=...} or {kind="sha256_file", path=...}
 * returns a job id; pool:wait([timeout]) returns the next finished job as
 * id, result | id, nil, message, code. Results are plain tables built on the
 * calling thread from values the worker copied. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hfscan/interrupt.h"
#include "hfscan/paced_http.h"
#include "hfscan/pool.h"
#include "hfscan/ratelimit.h"
#include "lua_bindings.h"

#define POOL_MT "hfscan.pool"

typedef struct {
  hf_pool *pool;
  hf_ratelimit *limiter; /* retained; may be NULL */
} lua_pool;

typedef struct {
  hf_job base;
  hf_owned_request request;
  hf_ratelimit *limiter;
  hf_http_response response;
  int rc;
  int paced;    /* subject to the pool's per-worker spacing */
  int reserved; /* the caller already booked its rate-limit slot */
  double waited;
} http_job;

static void run_http(hf_job *job, hf_worker *worker) {
  http_job *j = (http_job *)job;
  if (!worker->http)
    worker->http = hf_http_client_new(worker->user_agent);
  if (j->paced && hf_worker_pace(worker) != 0) {
    j->rc = -1;
    j->response.error_code = HF_HTTP_ERR_INTERRUPTED;
    snprintf(j->response.error_message, sizeof j->response.error_message, "interrupted");
    return;
  }
  if (!worker->http) {
    j->rc = -1;
    j->response.error_code = HF_HTTP_ERR_HTTP;
    snprintf(j->response.error_message, sizeof j->response.error_message, "no HTTP client");
    return;
  }
  j->rc = hf_paced_perform(worker->http, j->limiter, j->request.bucket, j->reserved,
                           &j->request.req, &j->response, &j->waited);
}

static void destroy_http(hf_job *job) {
  http_job *j = (http_job *)job;
  hf_owned_request_free(&j->request);
  hf_http_response_free(&j->response);
  if (j->limiter)
    hf_ratelimit_release(j->limiter);
  free(j);
}

static lua_pool *check_pool(lua_State *L, int idx) {
  lua_pool *lp = luaL_checkudata(L, idx, POOL_MT);
  if (!lp->pool)
    luaL_error(L, "attempt to use a closed pool");
  return lp;
}

static int l_pool_new(lua_State *L) {
  int workers = (int)luaL_optinteger(L, 1, 4);
  if (workers < 1 || workers > 256)
    return luaL_argerror(L, 1, "workers must be between 1 and 256");
  hf_ratelimit *rl = lua_isnoneornil(L, 2) ? NULL : hf_lua_check_ratelimit(L, 2);
  lua_pool *lp = lua_newuserdatauv(L, sizeof *lp, 0);
  lp->pool = NULL;
  lp->limiter = NULL;
  luaL_setmetatable(L, POOL_MT);
  lp->pool = hf_pool_new(workers, hf_lua_user_agent());
  if (!lp->pool)
    return hf_lua_fail(L, "cannot start worker threads", "io");
  lp->limiter = rl ? hf_ratelimit_retain(rl) : NULL;
  return 1;
}

static hf_job *new_http_job(lua_State *L, lua_pool *lp) {
  int paced = hf_lua_opt_bool_field(L, 2, "paced", 1);
  int reserved = hf_lua_opt_bool_field(L, 2, "reserved", 0);
  hf_owned_request request;
  hf_lua_check_request(L, 2, &request); /* raises on a malformed table, before any allocation */
  http_job *j = calloc(1, sizeof *j);
  if (!j) {
    hf_owned_request_free(&request);
    luaL_error(L, "out of memory");
  }
  j->request = request;
  j->request.req.headers = &j->request.headers; /* it pointed into the local copy */
  j->paced = paced;
  j->reserved = reserved;
  j->base.run = run_http;
  j->base.destroy = destroy_http;
  j->limiter = lp->limiter ? hf_ratelimit_retain(lp->limiter) : NULL;
  return &j->base;
}

static int l_pool_submit(lua_State *L) {
  lua_pool *lp = check_pool(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *kind = hf_lua_opt_string_field(L, 2, "kind", "http");
  hf_job *job;
  if (strcmp(kind, "http") == 0) {
    job = new_http_job(L, lp);
  } else if (strcmp(kind, "sha256_file") == 0) {
    const char *path = hf_lua_opt_string_field(L, 2, "path", NULL);
    if (!path)
      return luaL_error(L, "a sha256_file job needs a 'path'");
    hf_hash_job *h = hf_hash_job_new(path);
    if (!h)
      return luaL_error(L, "out of memory");
    job = &h->base;
  } else {
    return luaL_error(L, "unknown job kind '%s' (expected http or sha256_file)", kind);
  }
  uint64_t id = hf_pool_submit(lp->pool, job);
  if (id == 0) {
    job->destroy(job);
    return hf_lua_fail(L, "pool is closed", "closed");
  }
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int push_http_result(lua_State *L, http_job *j) {
  if (j->rc != 0) {
    int n = hf_lua_fail(L, j->response.error_message, j->response.error_code);
    hf_lua_push_partial(L, &j->response); /* a download hashed part-way, or nil */
    return 1 + n + 1;
  }
  hf_lua_push_response(L, &j->response);
  lua_pushnumber(L, j->waited);
  lua_setfield(L, -2, "waited");
  return 2;
}

static int push_hash_result(lua_State *L, hf_hash_job *h) {
  if (h->error != 0)
    return 1 + hf_lua_fail(L, h->message, h->error == ENOENT ? "not_found" : "io");
  lua_createtable(L, 0, 3);
  lua_pushstring(L, h->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, h->hex);
  lua_setfield(L, -2, "sha256");
  lua_pushinteger(L, (lua_Integer)h->bytes);
  lua_setfield(L, -2, "bytes");
  return 2;
}

/* pool:wait([timeout]) -> id, result | id, nil, msg, code | nil (timeout, idle, or stop) */
static int l_pool_wait(lua_State *L) {
  lua_pool *lp = check_pool(L, 1);
  double timeout = luaL_optnumber(L, 2, -1);
  hf_job *job = hf_pool_wait(lp->pool, timeout);
  if (!job) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)job->id);
  int n = job->run == run_http ? push_http_result(L, (http_job *)job)
                               : push_hash_result(L, (hf_hash_job *)job);
  job->destroy(job);
  return n;
}

static int l_pool_pending(lua_State *L) {
  lua_pushinteger(L, hf_pool_pending(check_pool(L, 1)->pool));
  return 1;
}

static int l_pool_set_spacing(lua_State *L) {
  hf_pool_set_worker_spacing(check_pool(L, 1)->pool, luaL_checknumber(L, 2));
  return 0;
}

static int l_pool_size(lua_State *L) {
  lua_pushinteger(L, hf_pool_size(check_pool(L, 1)->pool));
  return 1;
}

static int l_pool_close(lua_State *L) {
  lua_pool *lp = luaL_checkudata(L, 1, POOL_MT);
  hf_pool_free(lp->pool);
  lp->pool = NULL;
  hf_ratelimit_release(lp->limiter);
  lp->limiter = NULL;
  return 0;
}

void hf_lua_register_pool(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"submit", l_pool_submit},
      {"wait", l_pool_wait},
      {"pending", l_pool_pending},
      {"size", l_pool_size},
      {"close", l_pool_close},
      {"set_worker_spacing", l_pool_set_spacing},
      {NULL, NULL},
  };
  hf_lua_register_type(L, POOL_MT, methods, l_pool_close, NULL);
  lua_pushcfunction(L, l_pool_new);
  lua_setfield(L, -2, "pool");
}
