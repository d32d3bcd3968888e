/* SPDX-License-Identifier: MIT */
/*
 * ulpd's patch store: every patch file a client hands over (by file
 * descriptor) is copied into STATE_DIR/patches under a name made of its
 * contents' hash and size, owned by ulpd.  ulpd reads and loads only its
 * copy, so the client's file may change or go at any time, and a
 * restarted ulpd still finds what it applied.
 */
#ifndef ULPD_STORE_H
#define ULPD_STORE_H

#include <stdbool.h>
#include <stddef.h>

/* Where the store lives (ulpd's --state-dir). */
void ulpd_store_set_dir(const char *state_dir);

/*
 * A sealed copy (memfd) of what fd reads, to parse and store: the client's
 * file may change under ulpd meanwhile, this cannot.  0 or -errno.
 */
int ulpd_store_snapshot(int fd, const char *name, int *out);

/*
 * Copy what fd reads into the store (once per content) and give its path
 * in out.  name is the client's file name, for messages.  0 or -errno with
 * a message.
 */
int ulpd_store_put(int fd, const char *name, char *out, size_t len);

/*
 * Remove the copies no patch needs any more (in_use says which are); a
 * process that still maps one has its own copy (its memfd).
 */
void ulpd_store_gc(bool (*in_use)(const char *path));

#endif
