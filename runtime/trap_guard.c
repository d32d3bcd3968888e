/* SPDX-License-Identifier: MIT */
/*
 * The int3s of a code change outlive a ulpd that dies while writing it
 * (libpatch/poke.h): without ulpd, a thread reaching one would be killed by
 * SIGTRAP.  While ulpd changes code it arms this handler, which does what
 * ulpd would: a thread trapped on a site goes on where the new instruction
 * leads, or re-runs the site once its first byte is written.  A live ulpd
 * sees every SIGTRAP first (ptrace), so the handler only ever runs after
 * ulpd is gone.  Other SIGTRAPs go where they went before.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "../libpatch/rt_abi.h"
#include "runtime.h"

static struct sigaction ulp_trap_prev;
static int ulp_trap_armed;

static void ulp_trap_handler(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	uint64_t site = (uint64_t)uc->uc_mcontext.gregs[REG_RIP] - 1;
	uint32_t n = __atomic_load_n(&ulp_rt_info.nr_trap_sites, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < n && i < ULP_RT_TRAP_SITES; i++) {
		if (ulp_rt_info.trap_sites[i][0] != site)
			continue;
		if (*(volatile uint8_t *)site == 0xcc)
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ulp_rt_info.trap_sites[i][1];
		else
			uc->uc_mcontext.gregs[REG_RIP] = (greg_t)site;
		return;
	}
	if ((ulp_trap_prev.sa_flags & SA_SIGINFO) && ulp_trap_prev.sa_sigaction) {
		ulp_trap_prev.sa_sigaction(sig, si, ctx);
	} else if (ulp_trap_prev.sa_handler == SIG_IGN) {
		return;
	} else if (ulp_trap_prev.sa_handler != SIG_DFL) {
		ulp_trap_prev.sa_handler(sig);
	} else {
		/* what would have happened without us */
		signal(SIGTRAP, SIG_DFL);
		raise(SIGTRAP);
	}
}

/*
 * on: take SIGTRAP (the sites are in ulp_rt_info.trap_sites); off: give it
 * back as it was.  0 or -errno.
 */
ULP_RT_EXPORT int ulp_rt_trap_guard(int on)
{
	struct sigaction sa;

	if (on && !ulp_trap_armed) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = ulp_trap_handler;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGTRAP, &sa, &ulp_trap_prev) < 0)
			return -errno;
		ulp_trap_armed = 1;
	} else if (!on && ulp_trap_armed) {
		if (sigaction(SIGTRAP, &ulp_trap_prev, NULL) < 0)
			return -errno;
		ulp_trap_armed = 0;
		__atomic_store_n(&ulp_rt_info.nr_trap_sites, 0, __ATOMIC_RELEASE);
	}
	return 0;
}
