/* SPDX-License-Identifier: MIT */
/*
 * A file copied into a memfd the target created, then sealed: the target
 * loads it as /proc/self/fd/N, which exists in any mount namespace, and
 * nobody can change it under the loader.
 */
#ifndef ULP_MEMFD_H
#define ULP_MEMFD_H

#include <sys/types.h>

/*
 * Copy the file at path into process pid's descriptor tfd (a memfd made
 * with MFD_ALLOW_SEALING) through pidfd_getfd() and seal it against any
 * change.  what names the file in errors ("the patch", "the ulp runtime").
 */
int ulp_memfd_fill(pid_t pid, int tfd, const char *path, const char *what);

#endif
