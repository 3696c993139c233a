/* The interactive prompt: `hfscan repl`. Each input is tried first as an
 * expression (so `hf.sha256("abc")` prints its value), then as a statement;
 * input that ends mid-statement asks for more lines. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hfscan/interrupt.h"
#include "host.h"

#ifdef HFSCAN_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#define PROMPT "hfscan> "
#define PROMPT_MORE "   ...> "

/* Returns a malloc'd line without its newline, or NULL at end of input. */
static char *read_line(int interactive, const char *prompt) {
#ifdef HFSCAN_HAVE_READLINE
  if (interactive) {
    char *line = readline(prompt);
    if (line && *line)
      add_history(line);
    return line;
  }
#endif
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  for (;;) {
    if (interactive) {
      fputs(prompt, stdout);
      fflush(stdout);
    }
    errno = 0;
    n = getline(&line, &cap, stdin);
    if (n >= 0 || errno != EINTR || feof(stdin))
      break;
    /* Ctrl-C while waiting for a line interrupts the read (the handler has no
     * SA_RESTART, so that it can cut a scan's waits short): ask again. */
    clearerr(stdin);
    hf_host_reset_interrupt();
    if (interactive)
      putchar('\n');
  }
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n')
    line[n - 1] = '\0';
  return line;
}

/* An incomplete chunk fails to compile with an error ending in "<eof>". */
static int is_incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX)
    return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

/* Compiles the input as "return <input>", else as a statement list, reading more
 * lines while the statement is incomplete. Leaves the function or an error. */
static int compile(lua_State *L, int interactive, const char *first) {
  lua_pushfstring(L, "return %s;", first);
  if (luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin") == LUA_OK) {
    lua_remove(L, -2);
    return LUA_OK;
  }
  lua_pop(L, 2);
  lua_pushstring(L, first);
  for (;;) {
    int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    if (!is_incomplete(L, status)) {
      lua_remove(L, -2);
      return status;
    }
    lua_pop(L, 1);
    char *more = read_line(interactive, PROMPT_MORE);
    if (!more) {
      lua_pushliteral(L, "unfinished statement at end of input");
      lua_remove(L, -2);
      return LUA_ERRSYNTAX;
    }
    lua_pushliteral(L, "\n");
    lua_pushstring(L, more);
    free(more);
    lua_concat(L, 3);
  }
}

static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0)
    return;
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  hf_host_call(L, n, 0);
}

int hf_repl(lua_State *L, const char *banner) {
  int interactive = isatty(STDIN_FILENO);
  if (interactive)
    printf("%s\n", banner);
  int failures = 0;
  char *line;
  while ((line = read_line(interactive, PROMPT)) != NULL) {
    int base = lua_gettop(L);
    int status = compile(L, interactive, line);
    free(line);
    /* A Ctrl-C while the statement was typed only cancelled that line. */
    hf_host_reset_interrupt();
    if (status == LUA_OK)
      status = hf_host_call(L, 0, LUA_MULTRET);
    else
      fprintf(stderr, "%s\n", lua_tostring(L, -1)), lua_pop(L, 1);
    if (status == LUA_OK)
      print_results(L, base);
    else
      failures++;
    lua_settop(L, base);
    hf_host_reset_interrupt(); /* a Ctrl-C stops the current statement, not the prompt */
  }
  if (interactive)
    putchar('\n');
  /* Piped input: report failure to the caller, as a script would. */
  return !interactive && failures ? 1 : 0;
}
