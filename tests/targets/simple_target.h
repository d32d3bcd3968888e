/* SPDX-License-Identifier: MIT */
/*
 * simple_target.h - the command loop of the one-function targets
 * (target_lib, target_lib_stripped, target_static).
 */
#ifndef ULP_TEST_SIMPLE_TARGET_H
#define ULP_TEST_SIMPLE_TARGET_H

/*
 * Print "ready", then answer one line per command read from stdin:
 *
 *   call N    NAME(N)=R      (R = fn(N))
 *   quit      returns 0
 *
 * Returns 0 at end of input or on "quit": main's exit status.
 */
int simple_target_main(const char *name, int (*fn)(int));

#endif
