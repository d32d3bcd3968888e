// SPDX-License-Identifier: MIT
/*
 * patch_klp_state3.so - "test_klp_state3": the kernel's test_klp_state3.ko,
 * which is test_klp_state2.ko under another name (the console_loglevel
 * change stays the same in the next cumulative patch): the same state,
 * same version 2, so each of the two may replace the other
 * (integration.klp_state, "compatible cumulative livepatches").
 */
#define KLP_STATE_NAME "test_klp_state3"
#include "patch_klp_state2.c"
