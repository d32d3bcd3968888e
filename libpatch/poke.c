/* SPDX-License-Identifier: MIT */
#include "poke.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memory.h"
#include "process.h"
#include "recovery.h"
#include "rt_abi.h"

/* How long visits around a change may take before it is given up. */
#define ULP_POKE_VISIT_MS 5000

static bool ulp_poke_stop_all_forced(void)
{
	const char *e = getenv("ULP_POKE_STOP_ALL");

	return e && *e && strcmp(e, "0") != 0;
}

/*
 * Serialise every CPU running the target.  1 if the target cannot (no
 * membarrier SYNC_CORE in its kernel), 0 done, -errno if the call failed.
 */
static int ulp_sync_core(struct ulp_target *t, struct ulp_process *p)
{
	uint64_t fn, ret;
	int rc = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_sync_core), &fn);

	if (rc == 0)
		rc = ulp_runtime_call(t, p, fn, NULL, 0, &ret);
	if (rc < 0)
		return ulp_error_prefix(rc, "cannot serialise the CPUs of process %d", p->pid);
	return (int)ret < 0 ? 1 : 0;
}

/*
 * The runtime's SIGTRAP guard (runtime/trap_guard.c) over the sites, so
 * that a ulpd dying with int3s in place does not kill the threads that
 * reach them.  Best effort: without it the change is made all the same.
 */
static void ulp_trap_guard(struct ulp_target *t, struct ulp_process *p,
			   const struct ulp_poke *pokes, size_t n, bool on)
{
	uint64_t fn, r, arg = on;
	uint32_t nr = n > ULP_RT_TRAP_SITES ? ULP_RT_TRAP_SITES : (uint32_t)n;
	struct ulp_error_stash pending;
	int ret;

	/* an error being returned past this must keep its message */
	ulp_error_stash(&pending);
	ret = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_trap_guard), &fn);

	for (uint32_t i = 0; on && ret == 0 && i < nr; i++) {
		uint64_t site[2] = { pokes[i].addr, pokes[i].emulate_to };

		ret = ulp_mem_write(
			p, t->rt_info + offsetof(struct ulp_rt_info, trap_sites) + i * sizeof(site),
			site, sizeof(site));
	}
	if (on && ret == 0)
		ret = ulp_mem_write(p, t->rt_info + offsetof(struct ulp_rt_info, nr_trap_sites),
				    &nr, sizeof(nr));
	if (ret == 0 && fn)
		ulp_runtime_call(t, p, fn, &arg, 1, &r);
	ulp_error_unstash(&pending);
}

int ulp_trap_sites_repair(struct ulp_target *t, struct ulp_process *p)
{
	uint64_t base = t->rt_info + offsetof(struct ulp_rt_info, trap_sites);
	uint32_t nr;
	int left = 0;

	if (ulp_mem_read(p, t->rt_info + offsetof(struct ulp_rt_info, nr_trap_sites), &nr,
			 sizeof(nr)) < 0)
		return -1;
	for (uint32_t i = 0; i < nr && i < ULP_RT_TRAP_SITES; i++) {
		uint64_t site[2];
		uint8_t now[ULP_JMP_ABS_LEN], want[ULP_JMP_ABS_LEN];
		size_t len;

		if (ulp_mem_read(p, base + i * sizeof(site), site, sizeof(site)) < 0 ||
		    ulp_mem_read(p, site[0], now, sizeof(now)) < 0) {
			left++;
			continue;
		}
		if (now[0] != 0xcc)
			continue;
		/* the jump to emulate_to whose tail is written: its first byte */
		len = ulp_encode_jmp(site[0], site[1], want);
		if (memcmp(now + 1, want + 1, len - 1) == 0 &&
		    ulp_mem_write(p, site[0], want, 1) == 0)
			continue;
		left++;
	}
	return left;
}

void ulp_trap_guard_off(struct ulp_target *t, struct ulp_process *p)
{
	ulp_trap_guard(t, p, NULL, 0, false);
}

/* The fallback: every thread stopped at once around the writes. */
static int ulp_poke_stopped(struct ulp_target *t, struct ulp_process *p,
			    const struct ulp_poke *pokes, size_t n, const struct ulp_visit *before,
			    const char *why)
{
	int ret;

	if (!t->stop_all_logged) {
		ulp_target_log(t, "ulp: code changes stop every thread at once: %s", why);
		t->stop_all_logged = true;
	}
	ret = ulp_process_stop_all(p);

	for (size_t i = 0; ret == 0 && before && i < p->nr_threads; i++) {
		struct ulp_thread *th = p->threads[i];

		if (!th->gone && th->regs_valid && th->tid != p->own_tid)
			ret = before->fn(p, th, before->arg);
	}
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = ulp_mem_write(p, pokes[i].addr, pokes[i].bytes, pokes[i].len);
	ulp_process_resume_all(p);
	return ret;
}

/* First bytes: byte[i] at each site; stops at the first failure. */
static int ulp_poke_first_bytes(struct ulp_process *p, const struct ulp_poke *pokes, size_t n,
				const uint8_t *byte)
{
	for (size_t i = 0; i < n; i++) {
		int ret = ulp_mem_write(p, pokes[i].addr, &byte[i], 1);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Put the original first bytes back after int3s went in. */
static void ulp_poke_undo(struct ulp_target *t, struct ulp_process *p, const struct ulp_poke *pokes,
			  size_t n, const uint8_t *orig0, bool sync)
{
	ulp_poke_first_bytes(p, pokes, n, orig0);
	if (sync)
		ulp_sync_core(t, p);
	p->poking = false;
}

int ulp_text_poke(struct ulp_target *t, struct ulp_process *p, const struct ulp_poke *pokes,
		  size_t n, const struct ulp_visit *before)
{
	uint8_t *orig0, *int3, *first; /* each site's first byte: before, meanwhile, after */
	bool armed = false;
	int ret = 0, s;

	if (n == 0)
		return 0;
	if (ulp_poke_stop_all_forced())
		return ulp_poke_stopped(t, p, pokes, n, before, "ULP_POKE_STOP_ALL is set");
	if (t->no_sync_core)
		return ulp_poke_stopped(t, p, pokes, n, before,
					"the kernel has no membarrier SYNC_CORE");
	orig0 = malloc(3 * n);
	if (!orig0)
		return ulp_errorf(-ENOMEM, "out of memory");
	int3 = orig0 + n;
	first = orig0 + 2 * n;
	memset(int3, 0xcc, n);
	for (size_t i = 0; i < n; i++)
		first[i] = pokes[i].bytes[0];
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = ulp_mem_read(p, pokes[i].addr, &orig0[i], 1);
		if (ret == 0)
			ret = ulp_process_add_trap_site(p, pokes[i].addr, pokes[i].emulate_to);
	}
	if (ret < 0)
		goto out;

	p->poking = true;
	ulp_trap_guard(t, p, pokes, n, true);
	armed = true;
	ret = ulp_poke_first_bytes(p, pokes, n, int3);
	ulp_fault_point("poke");
	s = ret < 0 ? ret : ulp_sync_core(t, p);
	if (s != 0) {
		ulp_poke_undo(t, p, pokes, n, orig0, false);
		if (s < 0) {
			ret = s;
			goto out;
		}
		/* This kernel cannot serialise other CPUs for us: stop them. */
		t->no_sync_core = true;
		ret = ulp_poke_stopped(t, p, pokes, n, before,
				       "the kernel has no membarrier SYNC_CORE");
		goto out;
	}
	/* No thread can enter a site now, and none runs bytes fetched before. */
	if (before) {
		ret = ulp_visit_all(p, before, ULP_POKE_VISIT_MS);
		if (ret < 0) {
			ulp_poke_undo(t, p, pokes, n, orig0, true);
			goto out;
		}
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		if (pokes[i].len > 1)
			ret = ulp_mem_write(p, pokes[i].addr + 1, pokes[i].bytes + 1,
					    pokes[i].len - 1);
	if (ret < 0) {
		/* the first bytes are still int3: the sites are whole again */
		ulp_poke_undo(t, p, pokes, n, orig0, true);
		goto out;
	}
	/*
	 * From here on the change is completed whatever happens: a failed
	 * serialisation leaves at worst a CPU with stale bytes it would have
	 * seen without one.
	 */
	ulp_sync_core(t, p);
	ret = ulp_poke_first_bytes(p, pokes, n, first);
	ulp_sync_core(t, p);
	p->poking = false;
out:
	if (armed)
		ulp_trap_guard(t, p, pokes, n, false);
	free(orig0);
	return ret;
}
