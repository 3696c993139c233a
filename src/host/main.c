/* The hfscan host: one Lua state with the native module and the bundled scripts.
 *
 *   hfscan [--scripts-dir DIR] [ARGS...]          runs the bundled entry (hfscan.main)
 *   hfscan [--scripts-dir DIR] --script FILE ARGS  runs a user's Lua file
 *   hfscan [--scripts-dir DIR] repl | -i [ARGS...] interactive prompt (hfscan.commands.repl)
 *
 * Everything runs under lua_pcall with a traceback handler, as in lua.c. */
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hfscan/interrupt.h"
#include "hfscan/module.h"
#include "host.h"
#include "host_loader.h"

#define EXIT_USAGE 2
#define EXIT_HELP_SHOWN (-1) /* a help text was printed: exit 0 at once */
#define EXIT_INTERRUPTED 130

struct host_options {
  const char *scripts_dir; /* --scripts-dir, or HFSCAN_SCRIPTS_DIR */
  const char *script;      /* --script FILE */
  int repl;
  int first_arg; /* argv index of the first argument for the script or entry */
};

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int hf_host_call(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status != LUA_OK) {
    fprintf(stderr, "hfscan: %s\n", lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* Host options come first; the rest belongs to the script or the entry. Returns
 * 0, EXIT_USAGE after printing a message, or EXIT_HELP_SHOWN. */
static int parse_host_options(int argc, char **argv, struct host_options *o) {
  o->scripts_dir = getenv("HFSCAN_SCRIPTS_DIR");
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--scripts-dir") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hfscan: --scripts-dir needs a directory\n");
        return EXIT_USAGE;
      }
      o->scripts_dir = argv[++i];
    } else if (strncmp(argv[i], "--scripts-dir=", 14) == 0) {
      o->scripts_dir = argv[i] + 14;
    } else if (strcmp(argv[i], "--script") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hfscan: --script needs a Lua file\n");
        return EXIT_USAGE;
      }
      o->script = argv[++i];
      i++;
      break;
    } else if (strcmp(argv[i], "repl") == 0 || strcmp(argv[i], "-i") == 0) {
      o->repl = 1;
      i++;
      break;
    } else {
      break;
    }
  }
  if (o->scripts_dir && !*o->scripts_dir)
    o->scripts_dir = NULL;
  /* A folder that is not there would silently run the bundled scripts instead. */
  struct stat st;
  if (o->scripts_dir && (stat(o->scripts_dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
    fprintf(stderr, "hfscan: --scripts-dir: '%s' is not a directory%s\n", o->scripts_dir,
            getenv("HFSCAN_SCRIPTS_DIR") == o->scripts_dir ? " (from HFSCAN_SCRIPTS_DIR)" : "");
    return EXIT_USAGE;
  }
  o->first_arg = i;
  return 0;
}

/* Sets the global `arg` as lua.c does: arg[0] is the script, arg[1..] its
 * arguments, and the host's own words at negative indices. */
static void set_arg_table(lua_State *L, int argc, char **argv, int script_index) {
  lua_createtable(L, argc - script_index, script_index + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script_index);
  }
  lua_setglobal(L, "arg");
}

static int push_script_args(lua_State *L, int argc, char **argv, int first) {
  luaL_checkstack(L, argc - first + 1, "too many arguments");
  for (int i = first; i < argc; i++)
    lua_pushstring(L, argv[i]);
  return argc - first;
}

/* Scripts and the REPL: Ctrl-C must also stop Lua code that never reaches a C wait
 * (a busy loop, in the main chunk or in a coroutine). A count hook looks at the
 * stop flag every HOOK_COUNT instructions and raises "interrupted" once per stop;
 * coroutines inherit the hook from the thread that creates them. The bundled scan
 * has no hook: it polls the flag, so that it can stop cleanly. */
#define HOOK_COUNT 1000
static volatile int interrupt_delivered;

static void raise_on_stop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (hf_interrupt_requested() && !interrupt_delivered) {
    interrupt_delivered = 1; /* once: a pcall that cleans up must not be cut again */
    luaL_error(L, "interrupted");
  }
}

void hf_host_make_interruptible(lua_State *L) {
  lua_sethook(L, raise_on_stop, LUA_MASKCOUNT, HOOK_COUNT);
}

void hf_host_reset_interrupt(void) {
  hf_interrupt_clear();
  interrupt_delivered = 0;
}

static int exit_status_of(lua_State *L, int status) {
  if (hf_interrupt_requested())
    return EXIT_INTERRUPTED;
  if (status != LUA_OK)
    return 1;
  if (lua_isinteger(L, -1))
    return (int)lua_tointeger(L, -1);
  if (lua_isboolean(L, -1))
    return lua_toboolean(L, -1) ? 0 : 1;
  return 0;
}

static int run_user_script(lua_State *L, const struct host_options *o, int argc, char **argv) {
  set_arg_table(L, argc, argv, o->first_arg - 1);
  if (luaL_loadfilex(L, o->script, "t") != LUA_OK) {
    fprintf(stderr, "hfscan: %s\n", lua_tostring(L, -1));
    return 1;
  }
  int n = push_script_args(L, argc, argv, o->first_arg);
  return exit_status_of(L, hf_host_call(L, n, 1));
}

static int run_entry(lua_State *L, const struct host_options *o, int argc, char **argv) {
  set_arg_table(L, argc, argv, 0);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "hfscan.main");
  if (hf_host_call(L, 1, 1) != LUA_OK)
    return 1;
  lua_getfield(L, -1, "main");
  int n = push_script_args(L, argc, argv, o->first_arg);
  return exit_status_of(L, hf_host_call(L, n, 1));
}

static void open_libraries(lua_State *L, const char *scripts_dir) {
  luaL_openlibs(L);
  luaL_requiref(L, "hfscan", luaopen_hfscan, 0);
  /* Scans record which scripts ran (hfscan.scan.fingerprint). */
  if (scripts_dir) {
    lua_pushstring(L, scripts_dir);
    lua_setfield(L, -2, "scripts_dir");
  }
  lua_pop(L, 1);
  hf_host_install_loader(L, scripts_dir);
}

/* The REPL's arguments and globals (`hf`, `hub`) are hfscan.commands.repl's.
 * Returns 0 with the banner on the stack, or the exit status to end with at once
 * (its help was printed: 0; a usage error: 2). */
static int prepare_repl(lua_State *L, int argc, char **argv, int first) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "hfscan.commands.repl");
  if (hf_host_call(L, 1, 1) != LUA_OK)
    return 1;
  lua_getfield(L, -1, "setup");
  lua_remove(L, -2);
  lua_createtable(L, argc - first, 0);
  for (int i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  if (hf_host_call(L, 1, 2) != LUA_OK)
    return 1;
  if (lua_isstring(L, -2)) {
    lua_pop(L, 1);
    return 0;
  }
  int status = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return status == 0 ? EXIT_HELP_SHOWN : status;
}

/* What main hands to the protected start-up. */
struct start {
  const struct host_options *options;
  int argc;
  char **argv;
  int status;
};

/* Everything that touches the Lua state runs here, under lua_pcall as lua.c's
 * pmain does: a memory error while the libraries open is a message, not a panic. */
static int protected_main(lua_State *L) {
  struct start *s = lua_touserdata(L, 1);
  const struct host_options *options = s->options;
  open_libraries(L, options->scripts_dir);
  if (options->repl || options->script)
    hf_host_make_interruptible(L);
  if (options->repl) {
    int status = prepare_repl(L, s->argc, s->argv, options->first_arg);
    if (status == 0) {
      s->status = hf_repl(L, lua_tostring(L, -1));
      lua_pop(L, 1);
    } else {
      s->status = status == EXIT_HELP_SHOWN ? 0 : status;
    }
  } else if (options->script)
    s->status = run_user_script(L, options, s->argc, s->argv);
  else
    s->status = run_entry(L, options, s->argc, s->argv);
  return 0;
}

int main(int argc, char **argv) {
  struct host_options options = {0};
  int status = parse_host_options(argc, argv, &options);
  if (status == EXIT_HELP_SHOWN)
    return 0;
  if (status != 0)
    return status;
  lua_State *L = luaL_newstate(); /* its panic handler prints the message */
  if (!L) {
    fprintf(stderr, "hfscan: cannot create a Lua state\n");
    return 1;
  }
  hf_interrupt_install_handlers();
  /* A write past the file-size limit then fails with EFBIG, reported and survived
   * like a full disk, instead of the signal killing the process mid-row. */
  signal(SIGXFSZ, SIG_IGN);
  struct start start = {.options = &options, .argc = argc, .argv = argv, .status = 1};
  lua_pushcfunction(L, protected_main);
  lua_pushlightuserdata(L, &start);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "hfscan: %s\n", msg ? msg : "(an error that is not a string)");
    start.status = 1;
  }
  lua_close(L);
  return start.status;
}
