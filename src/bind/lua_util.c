/* Helpers shared by the bindings: failure values, option tables, requests and
 * responses as plain Lua tables, and small utilities (time, sleep, interrupt). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <stdio.h>

#include "hfscan/atomic_file.h"
#include "hfscan/interrupt.h"
#include "lua_bindings.h"

#ifndef HFSCAN_VERSION
#define HFSCAN_VERSION "0"
#endif

int hf_lua_fail(lua_State *L, const char *message, const char *code) {
  luaL_pushfail(L);
  lua_pushstring(L, message);
  lua_pushstring(L, code);
  return 3;
}

/* Option tables are read raw: no metamethod runs while a binding holds C pointers
 * (one could close the very object being used). Pushes the value; returns its type. */
static int raw_field(lua_State *L, int idx, const char *key) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

const char *hf_lua_opt_string_field(lua_State *L, int idx, const char *key, const char *def) {
  int t = raw_field(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "field '%s' must be a string, not a %s", key, lua_typename(L, t));
  /* Only a string that is in the table: it stays alive after the pop (a number
   * converted here would live only in the popped slot). */
  const char *v = t == LUA_TNIL ? def : lua_tostring(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Number hf_lua_opt_number_field(lua_State *L, int idx, const char *key, lua_Number def) {
  int t = raw_field(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TNUMBER)
    luaL_error(L, "field '%s' must be a number, not a %s", key, lua_typename(L, t));
  lua_Number v = t == LUA_TNIL ? def : lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Number hf_lua_opt_range_field(lua_State *L, int idx, const char *key, lua_Number def,
                                  lua_Number min, lua_Number max) {
  lua_Number v = hf_lua_opt_number_field(L, idx, key, def);
  if (!(v >= min && v <= max)) { /* also refuses NaN */
    char range[64];
    snprintf(range, sizeof range, "from %g to %g", (double)min, (double)max);
    luaL_error(L, "field '%s' must be a number %s", key, range);
  }
  return v;
}

int hf_lua_opt_bool_field(lua_State *L, int idx, const char *key, int def) {
  int t = raw_field(L, idx, key);
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static char *dup_or_null(const char *s, size_t len) {
  if (!s)
    return NULL;
  char *p = malloc(len + 1);
  if (p) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

static hf_http_sink check_sink(lua_State *L, const char *sink) {
  if (strcmp(sink, "memory") == 0)
    return HF_SINK_MEMORY;
  if (strcmp(sink, "sha256") == 0)
    return HF_SINK_SHA256;
  if (strcmp(sink, "discard") == 0)
    return HF_SINK_DISCARD;
  luaL_error(L, "unknown sink '%s' (expected memory, sha256 or discard)", sink);
  return HF_SINK_MEMORY;
}

/* headers = { ["Name"] = "value", ... }. Checked in a first pass, so that a bad
 * table raises before anything is allocated. */
static void read_headers(lua_State *L, int idx, hf_headers *out) {
  raw_field(L, idx, "headers");
  if (!lua_istable(L, -1) && !lua_isnil(L, -1))
    luaL_error(L, "field 'headers' must be a table");
  for (int pass = 0; pass < 2 && lua_istable(L, -1); pass++) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "request headers must map names to strings");
      if (pass == 1)
        hf_headers_add(out, lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

void hf_lua_check_request(lua_State *L, int idx, hf_owned_request *out) {
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  memset(out, 0, sizeof *out);
  const char *url = hf_lua_opt_string_field(L, idx, "url", NULL);
  if (!url)
    luaL_error(L, "request needs a 'url'");
  const char *method = hf_lua_opt_string_field(L, idx, "method", "GET");
  const char *bucket = hf_lua_opt_string_field(L, idx, "bucket", NULL);
  size_t body_len = 0;
  const char *body = NULL;
  int body_type = raw_field(L, idx, "body");
  if (body_type == LUA_TSTRING)
    body = lua_tolstring(L, -1, &body_len); /* alive in the table after the pop */
  else if (body_type != LUA_TNIL)
    luaL_error(L, "field 'body' must be a string, not a %s", lua_typename(L, body_type));
  lua_pop(L, 1);

  hf_http_request *req = &out->req;
  req->sink = check_sink(L, hf_lua_opt_string_field(L, idx, "sink", "memory"));
  lua_Number max_body = hf_lua_opt_number_field(L, idx, "max_body", 0);
  /* No cap (0) for anything not a finite size: math.huge means "no limit". */
  req->max_body = max_body > 0 && max_body < 9.0e15 ? (size_t)max_body : 0;
  /* Ranges keep the casts defined (no NaN, no overflow); a day bounds any timeout. */
  req->connect_timeout_ms =
      (long)(hf_lua_opt_range_field(L, idx, "connect_timeout", 10, 0.001, 86400) * 1000);
  req->low_speed_timeout_s = (long)hf_lua_opt_range_field(L, idx, "timeout", 30, 1, 86400);
  req->total_timeout_ms =
      (long)(hf_lua_opt_range_field(L, idx, "total_timeout", 0, 0, 86400) * 1000);
  req->first_byte_timeout_ms =
      (long)(hf_lua_opt_range_field(L, idx, "first_byte_timeout", 0, 0, 86400) * 1000);
  /* The size the body should have sets the request's whole deadline (hf_http.h). */
  req->expected_size = (uint64_t)hf_lua_opt_range_field(L, idx, "expected_size", 0, 0, 9.0e15);
  req->follow_redirects = hf_lua_opt_bool_field(L, idx, "follow_redirects", 1);
  req->follow_cross_host = hf_lua_opt_bool_field(L, idx, "cross_host", 0);
  req->max_resumes = (int)hf_lua_opt_range_field(L, idx, "resumes", 5, 0, 1000);
  lua_Number git_size = hf_lua_opt_range_field(L, idx, "git_blob_size", -1, -1, 9.0e15);
  /* git_blob = true without a size: the size the response announces. */
  req->git_blob_check = git_size >= 0 || hf_lua_opt_bool_field(L, idx, "git_blob", 0);
  req->git_blob_size = (long long)git_size;
  raw_field(L, idx, "continue");
  hf_lua_check_partial(L, -1);
  lua_pop(L, 1);
  read_headers(L, idx, &out->headers);

  out->url = strdup(url);
  out->method = strdup(method);
  out->body = dup_or_null(body, body_len);
  out->bucket = bucket ? strdup(bucket) : NULL;
  req->url = out->url;
  req->method = out->method;
  req->body = out->body;
  req->body_len = body_len;
  req->headers = &out->headers;
  /* Last, once nothing can raise: the request now owns the hash it continues. */
  raw_field(L, idx, "continue");
  req->continue_hash = hf_lua_take_partial(L, -1, &req->continue_offset);
  lua_pop(L, 1);
}

void hf_owned_request_free(hf_owned_request *r) {
  hf_hash_pipeline_free(r->req.continue_hash); /* a request that was never performed */
  hf_headers_clear(&r->headers);
  free(r->method);
  free(r->url);
  free(r->body);
  free(r->bucket);
  memset(r, 0, sizeof *r);
}

/* headers: lower-case name -> value (repeats joined by ", ");
 * header_list: { {name, value}, ... } in arrival order, repeats kept. */
static void push_headers(lua_State *L, const hf_headers *h) {
  lua_createtable(L, 0, (int)h->count);
  lua_createtable(L, (int)h->count, 0);
  for (size_t i = 0; i < h->count; i++) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *p = h->items[i].name; *p; p++)
      luaL_addchar(&b, (char)tolower((unsigned char)*p));
    luaL_pushresult(&b); /* name */
    lua_pushvalue(L, -1);
    lua_gettable(L, -4); /* existing value */
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushstring(L, h->items[i].value);
    } else {
      lua_pushstring(L, ", ");
      lua_pushstring(L, h->items[i].value);
      lua_concat(L, 3);
    }
    lua_settable(L, -4);
    lua_createtable(L, 2, 0);
    lua_pushstring(L, h->items[i].name);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, h->items[i].value);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

void hf_lua_push_response(lua_State *L, hf_http_response *res) {
  lua_createtable(L, 0, 11);
  lua_pushinteger(L, res->status);
  lua_setfield(L, -2, "status");
  push_headers(L, &res->headers);
  lua_setfield(L, -3, "header_list");
  lua_setfield(L, -2, "headers");
  lua_pushstring(L, res->effective_url ? res->effective_url : "");
  lua_setfield(L, -2, "url");
  if (res->body) {
    lua_pushlstring(L, res->body, res->body_len);
    lua_setfield(L, -2, "body");
  }
  if (res->sha256[0]) {
    lua_pushstring(L, res->sha256);
    lua_setfield(L, -2, "sha256");
  }
  if (res->git_sha1[0]) {
    lua_pushstring(L, res->git_sha1);
    lua_setfield(L, -2, "git_sha1");
  }
  lua_pushinteger(L, (lua_Integer)res->bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, res->redirects);
  lua_setfield(L, -2, "redirects");
  lua_pushinteger(L, res->resumes);
  lua_setfield(L, -2, "resumes");
  hf_lua_push_partial(L, res);
  lua_setfield(L, -2, "partial");
}

void hf_lua_register_type(lua_State *L, const char *name, const luaL_Reg *methods,
                          lua_CFunction close, const luaL_Reg *meta) {
  if (luaL_newmetatable(L, name)) {
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, close);
    lua_setfield(L, -2, "__close");
    if (methods) {
      lua_newtable(L);
      luaL_setfuncs(L, methods, 0);
      lua_setfield(L, -2, "__index");
    }
    if (meta)
      luaL_setfuncs(L, meta, 0);
  }
  lua_pop(L, 1);
}

const char *hf_lua_user_agent(void) {
  /* The shape huggingface_hub uses ("name/version; lib/version; ..."), so the Hub's
   * operators can tell this scanner's traffic apart. */
  static char agent[128];
  if (!agent[0])
    snprintf(agent, sizeof agent, "hfscan/%s; libcurl/%s; lua/%s.%s.%s; model-hash-scanner",
             HFSCAN_VERSION, curl_version_info(CURLVERSION_NOW)->version, LUA_VERSION_MAJOR,
             LUA_VERSION_MINOR, LUA_VERSION_RELEASE);
  return agent;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, hf_monotonic_seconds());
  return 1;
}

static int l_sleep(lua_State *L) {
  lua_pushboolean(L, !hf_sleep_interruptible(luaL_checknumber(L, 1)));
  return 1;
}

static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, hf_interrupt_requested());
  return 1;
}

static int l_request_interrupt(lua_State *L) {
  hf_interrupt_request();
  return 0;
}

static int l_clear_interrupt(lua_State *L) {
  hf_interrupt_clear();
  return 0;
}

static const char *kind_of(mode_t mode) {
  return S_ISDIR(mode) ? "directory" : S_ISREG(mode) ? "file" : "other";
}

/* file_type(path) -> "directory" | "file" | "other" | nil */
static int l_file_type(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, kind_of(st.st_mode));
  return 1;
}

/* file_stat(path) -> { type = as file_type, size = bytes, mtime_ns = nanoseconds
 * since the epoch, inode } | nil: whether a database is older than the files it
 * was built from needs the modification times at full precision, and whether
 * it was replaced (renamed over) its inode. */
static int l_file_stat(lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind_of(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
  lua_setfield(L, -2, "mtime_ns");
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  lua_setfield(L, -2, "inode");
  return 1;
}

/* truncate_file(path, size) -> true | nil, message, "io": cuts the file to size
 * bytes (never grows it) and syncs it. Cutting to the same size again changes
 * nothing, so a repair killed half-way is simply done again. */
static int l_truncate_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  struct stat st;
  int rc = fd < 0 || fstat(fd, &st) != 0 ? errno : 0;
  if (rc == 0 && size < 0)
    rc = EINVAL;
  if (rc == 0 && st.st_size > size && ftruncate(fd, (off_t)size) != 0)
    rc = errno;
  if (rc == 0 && fsync(fd) != 0)
    rc = errno;
  if (fd >= 0)
    close(fd);
  if (rc != 0) {
    lua_pushfstring(L, "cannot cut %s to %I bytes: %s", path, size, strerror(rc));
    return hf_lua_fail(L, lua_tostring(L, -1), "io");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* realpath(path) -> the absolute path, links resolved | nil, message, "not_found"|"io".
 * Paths recorded in a scan's files must still mean the same file when a restart
 * runs from another working directory. */
static int l_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *resolved = realpath(path, NULL);
  if (!resolved) {
    int code = errno;
    lua_pushfstring(L, "%s: %s", path, strerror(code));
    return hf_lua_fail(L, lua_tostring(L, -1), code == ENOENT ? "not_found" : "io");
  }
  lua_pushstring(L, resolved);
  free(resolved);
  return 1;
}

/* write_file_atomically(path, text) -> true | nil, message, "io": path holds text
 * whole, or is left as it was (hf_write_file_atomically). */
static int l_write_file_atomically(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  const char *text = luaL_checklstring(L, 2, &len);
  char err[512];
  if (hf_write_file_atomically(path, text, len, err, sizeof err) != 0)
    return hf_lua_fail(L, err, "io");
  lua_pushboolean(L, 1);
  return 1;
}

/* mkdir_p(path) -> true | nil, message, "io": creates the folder and its parents. */
static int l_mkdir_p(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (len == 0 || strlen(path) != len)
    return hf_lua_fail(L, "cannot create a folder with an empty name or a NUL in it", "io");
  char *copy = malloc(len + 1);
  if (!copy)
    return luaL_error(L, "out of memory");
  memcpy(copy, path, len + 1);
  int rc = 0;
  for (char *p = copy + 1; rc == 0; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST)
      rc = errno;
    *p = saved;
    if (saved == '\0')
      break;
  }
  free(copy);
  struct stat st;
  if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
    rc = ENOTDIR;
  if (rc != 0) {
    lua_pushfstring(L, "cannot create %s: %s", path, strerror(rc));
    return hf_lua_fail(L, lua_tostring(L, -1), "io");
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* list_dir(path) -> { names... } (sorted, without . and ..) | nil, message, code */
static int l_list_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) {
    int code = errno;
    lua_pushfstring(L, "cannot list %s: %s", path, strerror(code));
    return hf_lua_fail(L, lua_tostring(L, -1), code == ENOENT ? "not_found" : "io");
  }
  lua_newtable(L);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

/* For crash tests only: dies at once, as kill -9 would, leaving files as they are. */
static int l_kill_self_for_tests(lua_State *L) {
  raise(SIGKILL);
  return 0;
}

static int l_cpu_count(lua_State *L) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

/* pid() -> this process's id: a temporary file named with it is no other
 * process's. */
static int l_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* is_lower_hex(value, length) -> whether value is a string of exactly length
 * lowercase hex digits: the check of every hash and commit a bulk load reads
 * back, which Lua's patterns make the costliest part of a row. */
static int l_is_lower_hex(lua_State *L) {
  size_t len;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
  lua_Integer want = luaL_checkinteger(L, 2);
  int ok = s && (lua_Integer)len == want;
  for (size_t i = 0; ok && i < len; i++)
    ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
  lua_pushboolean(L, ok);
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* hf.terminal_width(fd) -> columns of the terminal on fd, or nil when fd is no
 * terminal or the terminal does not say (a pty whose size was never set says 0).
 * Asked on each redraw: one ioctl, so a resized window is seen at once. */
static int l_terminal_width(lua_State *L) {
  struct winsize ws;
  if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, ws.ws_col);
  return 1;
}

void hf_lua_register_util(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"now", l_now},
      {"sleep", l_sleep},
      {"interrupted", l_interrupted},
      {"request_interrupt", l_request_interrupt},
      {"clear_interrupt", l_clear_interrupt},
      {"isatty", l_isatty},
      {"is_lower_hex", l_is_lower_hex},
      {"terminal_width", l_terminal_width},
      {"cpu_count", l_cpu_count},
      {"pid", l_pid},
      {"file_type", l_file_type},
      {"file_stat", l_file_stat},
      {"realpath", l_realpath},
      {"mkdir_p", l_mkdir_p},
      {"write_file_atomically", l_write_file_atomically},
      {"truncate_file", l_truncate_file},
      {"kill_self_for_tests", l_kill_self_for_tests},
      {"list_dir", l_list_dir},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, HFSCAN_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, hf_lua_user_agent());
  lua_setfield(L, -2, "user_agent");
}
