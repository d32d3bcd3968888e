// SPDX-License-Identifier: MIT
/*
 * klp_mod.c - libklp_mod.so (SONAME libklp_mod.so): the kernel selftests'
 * livepatch-callbacks-mod / test_klp_livepatch target module, as a shared
 * object klp_target dlopen()s ("load mod") and dlclose()s ("unload mod").
 *
 *   klp_mod_func()      "mod:orig"; patch_klp_callbacks_demo.so makes it
 *                       "mod:patched", patch_klp_livepatch.so
 *                       "mod:livepatched"
 *   klp_mod_ctor_saw()  what klp_mod_func() returned when this object's
 *                       constructor ran: ulp patches a coming object before
 *                       its constructors, so with a patch applied before the
 *                       dlopen() this already shows the patched text (the
 *                       kernel's post_patch before module_init)
 *
 * Compiled at -O0 (see CMakeLists.txt): klp_mod_func keeps a prologue
 * longer than ulp's 5-byte entry jump, and the constructor really calls it
 * (through the PLT, i.e. through its patched entry).
 */
#include <string.h>

const char *klp_mod_func(void);
const char *klp_mod_ctor_saw(void);

/*
 * A copy, not the pointer: the patched text lives in the patch, which may be
 * unloaded (reverted) before a test asks.
 */
static char ctor_saw[64] = "constructor not run";

__attribute__((noipa, used)) const char *klp_mod_func(void)
{
	return "mod:orig";
}

const char *klp_mod_ctor_saw(void)
{
	return ctor_saw;
}

__attribute__((constructor)) static void klp_mod_init(void)
{
	const char *s = klp_mod_func();

	strncpy(ctor_saw, s ? s : "(null)", sizeof(ctor_saw) - 1);
	ctor_saw[sizeof(ctor_saw) - 1] = '\0';
}
