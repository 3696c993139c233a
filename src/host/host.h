/* Private to the host executable. */
#ifndef HFSCAN_HOST_H
#define HFSCAN_HOST_H

#include <lua.h>

/* [-n, +(0|1), -] Calls the function below its n arguments under lua_pcall with a
 * traceback handler. On error prints the message and traceback to stderr. Returns
 * the lua_pcall status; on success leaves nresults values. */
int hf_host_call(lua_State *L, int nargs, int nresults);

/* From now on Ctrl-C also raises "interrupted" in the Lua code running in L and
 * in coroutines created from it (scripts and the REPL). reset forgets a stop, so
 * that the next one raises again (the REPL, before each statement). */
void hf_host_make_interruptible(lua_State *L);
void hf_host_reset_interrupt(void);

/* Runs an interactive prompt on stdin (line editing when stdin is a terminal and
 * readline is available), printing banner first at a terminal. Returns the exit
 * status. */
int hf_repl(lua_State *L, const char *banner);

#endif
