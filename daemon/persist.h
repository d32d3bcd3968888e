/* SPDX-License-Identifier: MIT */
/*
 * apply --exe PATH --persist: processes of PATH started later are patched
 * before their main() runs (persist.c); the rules live in
 * STATE_DIR/persist.json, so they outlive a restart of ulpd.
 */
#ifndef ULPD_PERSIST_H
#define ULPD_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Load the rules saved in state_dir and watch their executables again. */
void ulpd_persist_init(const char *state_dir);

/* Patch (the stored copy patch, named display, called name) every later exec of exe. */
int ulpd_persist_add(const char *exe, const char *patch, const char *display, const char *name);

/* Stop doing so for the patch called name; how many rules went. */
size_t ulpd_persist_remove(const char *exe, const char *name);

/* Does a rule apply the stored copy at path? */
bool ulpd_persist_uses(const char *path);

/* The fanotify descriptor to poll (-1 while there is no rule), and its handler. */
int ulpd_persist_fd(void);
void ulpd_persist_ready(void);

#endif
