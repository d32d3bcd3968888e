/* SPDX-License-Identifier: MIT */
/*
 * The target is the source of truth (DESIGN.md step 7): ulpd keeps a copy
 * of its view of each process in the process itself (ulp_rt_info.saved),
 * written at every step of an operation, so that a ulpd restarted after a
 * crash rebuilds that view from the process and finishes or undoes what
 * was under way (core.c, ulp_target_adopt()).
 */
#ifndef ULP_RECOVERY_H
#define ULP_RECOVERY_H

#include <sys/types.h>

#include <stdbool.h>

struct ulp_target;
struct ulp_process;
struct ulp_symbols;

/*
 * Who saves (ulpd's control socket): a ulpd adopts only the processes a
 * ulpd of the same socket saved, so that ulpds of separate sockets (tests)
 * never take each other's processes.  A saved state comes from a process's
 * memory: the patch files it names by path are opened only inside
 * store_dir (ulpd's store).  Called by the main ulpd: its forked workers
 * save under its name.
 */
void ulp_recovery_set_owner(const char *id, const char *store_dir);

/*
 * Write t's state into the process, with t->op as the operation under way.
 * Best effort: it leaves the last error message as it was.
 */
int ulp_recovery_save(struct ulp_target *t, struct ulp_process *p);

/* Set t->op and save: the next step of an operation (step NULL: it ended). */
void ulp_recovery_step(struct ulp_target *t, struct ulp_process *p, const char *kind,
		       const char *patch, const char *step);

/*
 * Whether the process holds a state this ulpd may take over (0), none
 * (-ENOENT) or another ulpd's (-EBUSY): read without attaching.
 */
int ulp_recovery_peek(struct ulp_target *t, struct ulp_symbols *syms);

/*
 * Could this ulpd take process pid over from the running ulpd of its
 * socket once that one stops (a package upgrade)?  Read without attaching.
 * 0: yes; 1: nothing to take over (no runtime, or another socket's ulpd);
 * else why not (another runtime ABI, a saved state it cannot read or none).
 */
int ulp_recovery_adoptable(pid_t pid);

/*
 * Rebuild t's patches, transition and operation from the copy saved in the
 * process (t->rt_info filled).  -ENOENT if nothing was ever saved.
 */
int ulp_recovery_load(struct ulp_target *t, struct ulp_process *p);

/*
 * Kill ulpd here if ULPD_FAULT names this step ("step" or "step:N" for its
 * Nth passage): the crash tests' fault injection.
 */
void ulp_fault_point(const char *step);
/*
 * True at the Nth passage of a step ULPD_FAULT names, for faults other
 * than a kill ("remote-crash": a remote call jumps to address 1).
 */
bool ulp_fault_armed(const char *step);

#endif
