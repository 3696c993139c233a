/* Private to the host executable. */
#ifndef HFSCAN_HOST_H
#define HFSCAN_HOST_H

#include <lua.h>

/* [-n, +(0|1), -] Calls the function below its n arguments under lua_pcall with a
 * traceback handler. On error prints the message and traceback to stderr. Returns
 * the lua_pcall status; on success leaves nresults values. */
int hf_host_call(lua_State *L, int nargs, int nresults);

/* Runs an interactive prompt on stdin (line editing when stdin is a terminal and
 * readline is available). Returns the exit status. */
int hf_repl(lua_State *L);

#endif
