/* Private to the host: finds bundled Lua modules, letting a user directory win. */
#ifndef HFSCAN_HOST_LOADER_H
#define HFSCAN_HOST_LOADER_H

#include <stddef.h>

struct hf_bundled_script {
  const char *module;    /* "hfscan.main" */
  const char *chunkname; /* "@lua/hfscan/main.lua" */
  const char *data;
  size_t size;
};

/* Generated from lua/ at build time (cmake/embed_lua.cmake). */
extern const struct hf_bundled_script hf_bundled_scripts[];

struct lua_State;
/* [-0, +0, e] Adds a package searcher, ahead of the standard ones, that looks in
 * override_dir (when not NULL) and then among the bundled scripts. */
void hf_host_install_loader(struct lua_State *L, const char *override_dir);

#endif
