// SPDX-License-Identifier: MIT
/* patch_klp_state.so - "test_klp_state", state 1 version 1 (see patch_klp_state.h). */
#define KLP_STATE_NAME "test_klp_state"
#define CONSOLE_LOGLEVEL_STATE_VERSION 1
#include "patch_klp_state.h"
