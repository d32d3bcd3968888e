/* SPDX-License-Identifier: MIT */
/*
 * Getting libulp-rt.so into a target, once per process, and calling into it.
 *
 * One application thread that is safely parked (not inside the allocator or
 * the dynamic loader) is borrowed for a few remote calls that only create a
 * detached thread; that thread dlopen()s the runtime, whose constructor
 * starts the worker.  From then on the engine runs its remote calls on the
 * worker and never borrows an application thread again.
 */
#ifndef ULP_INJECT_H
#define ULP_INJECT_H

#include <stdint.h>

struct ulp_target;
struct ulp_process;
struct ulp_symbols;

/* The libulp-rt.so to inject (default: compiled-in install path). */
void ulp_runtime_set_path(const char *path);
const char *ulp_runtime_path(void);

/*
 * Make sure the runtime is loaded and t->rt_info & co. are filled.  *syms is
 * reopened when the runtime had to be loaded.  p must be attached, threads
 * running.
 */
int ulp_runtime_ensure(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols **syms);

/* Where ulp_rt_info is in the process (-ENOENT: no runtime mapped). */
int ulp_runtime_info_addr(struct ulp_symbols *syms, uint64_t *addr);
/* The runtime an earlier ulpd loaded: t->rt_info & co. filled, or -ENOENT. */
int ulp_runtime_find(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms);
/* The same, its ulp_rt_info known to be at addr. */
int ulp_runtime_find_at(struct ulp_target *t, struct ulp_process *p, uint64_t addr);
/*
 * A forked child's runtime has no worker: start it on one of its threads
 * (borrowed, as for the injection).  0 if there is one.
 */
int ulp_runtime_start_worker(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms);
/* Call fn(args...) on the runtime's worker thread. */
int ulp_runtime_call(struct ulp_target *t, struct ulp_process *p, uint64_t fn, const uint64_t *args,
		     int nr_args, uint64_t *ret);

/* Move lines ulp_log() wrote in the target into the target's event log. */
void ulp_runtime_drain_log(struct ulp_target *t, struct ulp_process *p);
/* The same without being attached (ulpd between operations). */
void ulp_target_refresh_log(struct ulp_target *t);

#endif
