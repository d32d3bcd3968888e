// SPDX-License-Identifier: MIT
/*
 * patch_klp_symbols.so - "klp_symbols": a fix that needs the target's
 * file-static state.  klp_count() of tests/targets/klp_target.c adds
 * klp_counter_step() (static, 1) to klp_counter (static) and returns it;
 * the replacement adds 10 * klp_counter_step() instead, through references
 * ulp fills at load (struct ulp_symbol_ref).
 * Built again with KLP_SYMBOLS_MISSING as patch_klp_symbols_missing.so,
 * whose counter reference names a symbol the target does not have.
 */
#include <ulp/patch.h>

static int *counter;
static int (*counter_step)(void);
static void *tls_counter; /* a handle: ulp_tls_addr() gives each thread's copy */

static int fixed_klp_count(void)
{
	*counter += 10 * counter_step();
	return *counter;
}

/* Thread-local state: klp_tls_count() adds 1 to this thread's counter; fixed, 100. */
static int fixed_klp_tls_count(void)
{
	int *mine = ulp_tls_addr(tls_counter);

	*mine += 100;
	return *mine;
}

static struct ulp_func funcs[] = { { .old_name = "klp_count", .new_func = fixed_klp_count },
				   { .old_name = "klp_tls_count", .new_func = fixed_klp_tls_count },
				   {} };
static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };
static struct ulp_symbol_ref symbols[] = {
#ifdef KLP_SYMBOLS_MISSING
	{ .object = "main", .name = "klp_no_such_counter", .addr = (void **)&counter },
#else
	{ .object = "main", .name = "klp_counter", .addr = (void **)&counter },
#endif
	{ .object = NULL, .name = "klp_counter_step", .addr = (void **)&counter_step },
	{ .object = "main", .name = "klp_tls_counter", .addr = &tls_counter },
	{},
};

#ifdef KLP_SYMBOLS_MISSING
ULP_PATCH("klp_symbols_missing", .objs = objs, .symbols = symbols);
#else
ULP_PATCH("klp_symbols", .objs = objs, .symbols = symbols);
#endif
