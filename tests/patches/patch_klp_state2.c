// SPDX-License-Identifier: MIT
/* patch_klp_state2.so - "test_klp_state2", state 1 version 2 (see patch_klp_state.h). */
#define KLP_STATE_NAME "test_klp_state2"
#define CONSOLE_LOGLEVEL_STATE_VERSION 2
#include "patch_klp_state.h"
