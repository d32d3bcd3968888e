// SPDX-License-Identifier: MIT
/*
 * patch_klp_state3.so - "test_klp_state3": the same code and state version
 * as test_klp_state2 (the kernel's test_klp_state3.c includes
 * test_klp_state2.c), so each of the two may replace the other
 * (integration.klp_state, "compatible cumulative livepatches").
 */
#define KLP_STATE_NAME "test_klp_state3"
#define CONSOLE_LOGLEVEL_STATE_VERSION 2
#include "patch_klp_state.h"
