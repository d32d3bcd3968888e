// SPDX-License-Identifier: MIT
/*
 * patch_tiny.so - "tiny_fix": replaces tiny(), a 3-byte function, too short
 * for the entry jump: must be refused.
 */
#include <ulp/patch.h>

static int new_tiny(void)
{
	return 1;
}

static struct ulp_func funcs[] = { { .old_name = "tiny", .new_func = new_tiny }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("tiny_fix", .objs = objs);
