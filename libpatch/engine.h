/* SPDX-License-Identifier: MIT */
/*
 * The engine's view of one target process and the patches applied to it.
 * ulpd owns these objects; every operation attaches to the process, works,
 * and detaches again, so between requests the target runs untraced.
 */
#ifndef ULP_ENGINE_H
#define ULP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codegen.h"
#include "patch_file.h"

struct ulp_process;
struct ulp_symbols;

struct ulp_applied_func {
	const struct ulp_patch_func_info *info;
	uint64_t old_addr, old_size; /* the function replaced, in the target */
	uint64_t new_addr, new_size; /* its replacement, in the target */
	uint64_t slot; /* slot address, 0 if none */
	bool direct; /* new_addr within reach: the steady entry jumps straight to it */
	/*
	 * An atomic replace's no-op: leads back to the original (its new_addr
	 * is its own trampoline); discarded once the replace completes.
	 */
	bool nop;
	struct ulp_prologue prologue;
	/*
	 * The function's stack (the kernel's klp_ops func_stack): the version
	 * of the patch applied before this one (NULL: the original) and of the
	 * one applied after it (NULL: this one runs).
	 */
	struct ulp_applied_func *below, *above;
};

struct ulp_applied_object {
	const struct ulp_patch_object_info *info;
	char *name; /* "main" or SONAME */
	bool loaded; /* mapped in the target: its callbacks run, its functions resolve */
	bool patched; /* its entries are redirected */
	/* its pre_patch ran and succeeded: post_unpatch is owed (the kernel's rule) */
	bool post_unpatch_enabled;
	/* holds only no-op functions of an atomic replace; info is ulp's own */
	bool nop;
	struct ulp_applied_func *funcs;
	size_t nr_funcs;
};

struct ulp_applied_patch {
	struct ulp_patch_info *info;
	char *path; /* the file loaded in the target */
	uint64_t handle; /* dlopen handle in the target */
	/* the target's fd of the sealed memfd the patch was loaded from, -1 if none */
	int memfd;
	/* what the memfd is called (the patch file's name as the client gave it) */
	char *display;
	uint64_t bias; /* load bias of the patch in the target */
	bool enabled;
	bool in_transition;
	/* a transition was forced: a thread may still run code of this patch */
	bool forced;
	unsigned char gen; /* generation of its dispatch in use (codegen.h) */
	unsigned char entries; /* where its entries lead now: enum ulp_entry_to (patch.h) */
	/* objects: info's, then those holding an atomic replace's no-ops (nop_infos) */
	struct ulp_applied_object *objs;
	size_t nr_objs;
	struct ulp_patch_object_info *nop_infos;
	size_t nr_nop_infos;
	/*
	 * where each of info->symrefs resolved in the target; for a
	 * thread-local one (symref_tls), its offset in the TLS block of the
	 * object loaded at symref_bias
	 */
	uint64_t *symref_addrs;
	uint64_t *symref_bias;
	bool *symref_tls;
};

/* One thread as the last check of a transition saw it. */
struct ulp_thread_info {
	pid_t tid;
	bool switched;
	uint64_t fs_base; /* 0 if never seen stopped */
	uint64_t blocker; /* pc of the frame that kept it back, 0 if none */
	const char *func, *object; /* the function being changed there (names of the patch) */
};

/* The transition in progress in a process (at most one, as in the kernel). */
struct ulp_pending_transition {
	struct ulp_applied_patch *ap;
	bool patching; /* direction: to the patched state */
	unsigned char to_state; /* the generation threads switch to */
	uint64_t start_us;
	unsigned attempts;
	/* ulpd's schedule for the next attempt */
	uint64_t next_attempt_us;
	unsigned retry_ms;
	uint64_t warned_us; /* when a failed attempt was last reported */
	struct ulp_thread_info *threads;
	size_t nr_threads;
};

struct ulp_target {
	pid_t pid;
	unsigned long long start_time; /* /proc/PID/stat field 22: tells PID reuse */
	char exe[4096];
	/* runtime, once injected */
	uint64_t rt_info; /* address of ulp_rt_info, 0 before injection */
	int32_t tls_offset;
	uint64_t tls_init;
	pid_t worker_tid;
	uint64_t fn_worker_start; /* ulp_rt_worker_start() in the target */
	bool no_sync_core; /* its kernel cannot serialise CPUs: code changes stop all */
	int hook_fd; /* ulpd's end of the loader hook's channel (dlhook.h), -1 if none */
	uint64_t r_debug; /* the loader's _r_debug, once the hook is installed */
	/* the worker's channel (rt_abi.h): ulpd's copy, -1 until taken; the target's fd */
	int worker_fd;
	int32_t worker_tfd;
	uint64_t worker_seq; /* of the last call sent */
	uint32_t nr_tls_refs; /* entries of ulp_rt_info.tls_refs in use */
	/* threads switching themselves (runtime/self_switch.c); 0 if the runtime cannot */
	uint64_t self_check_entry;
	uint64_t self_uncounted[2][2]; /* code where a thread returns to a slot uncounted */
	uint64_t checks_running; /* address of the count of threads inside the check */
	bool stop_all_logged; /* the event log says code changes stop all */
	struct ulp_applied_patch **patches; /* in apply order: stack order */
	size_t nr_patches;
	struct ulp_pending_transition *transition; /* NULL when none is in progress */
	/* the patch being applied until it joins patches (saved too: recovery.c) */
	struct ulp_applied_patch *applying;
	/*
	 * The operation under way, saved in the target with the rest
	 * (recovery.c), so that a restarted ulpd knows what to finish or undo.
	 */
	struct ulp_operation {
		char kind[16]; /* "", "apply", "revert", "complete" */
		char patch[256];
		char step[32];
		unsigned post_done; /* objects whose post callback ran (complete) */
	} op;
	uint64_t saved_seq;
	bool save_failed; /* the last save failed: reported once, until one succeeds */
	bool adopting; /* its saved state is not loaded yet: nothing to save over it */
	/* how long the last transition took, from its start to its completion */
	uint64_t last_transition_us;
	/* event log: lines, oldest first */
	char **log;
	size_t nr_log;
	uint64_t rt_log_seen; /* bytes of the runtime's log ring consumed */
	/* slot pages mapped in the target */
	struct ulp_slot_page *slot_pages;
	size_t nr_slot_pages;
};

struct ulp_slot_page {
	uint64_t addr;
	uint32_t used; /* bitmap of ULP_SLOTS_PER_PAGE slots */
};

#define ULP_SLOT_PAGE_SIZE 4096
#define ULP_SLOTS_PER_PAGE (ULP_SLOT_PAGE_SIZE / ULP_SLOT_SIZE)

struct ulp_apply_opts {
	bool check_only; /* validate against the target; change nothing */
	/* the patch file's name for the process's maps (default: path's basename) */
	const char *display;
	int budget_ms; /* how long the first attempt checks threads; 0 = ULP_ATTEMPT_MS */
};

/* How long one attempt at a transition keeps checking threads, by default. */
#define ULP_ATTEMPT_MS 200

/* Results of ulp_patch_apply(), ulp_patch_revert(), ulp_transition_work(). */
#define ULP_DONE 0 /* the asked-for state is reached */
#define ULP_ALREADY 1 /* apply: a patch of that name is applied already */
#define ULP_PENDING 2 /* in transition: call ulp_transition_work() again later */

struct ulp_transition_stats {
	uint64_t longest_stop_us; /* longest any thread was stopped at once */
	uint64_t total_us;
	unsigned rounds;
};

/* A target for pid (not attached).  -ESRCH if there is no such process. */
int ulp_target_new(pid_t pid, struct ulp_target **out);
void ulp_target_free(struct ulp_target *t);
/* Still the same process (not exited, PID not reused)? */
bool ulp_target_alive(const struct ulp_target *t);

struct ulp_applied_patch *ulp_target_find_patch(struct ulp_target *t, const char *name);
int ulp_target_add_patch(struct ulp_target *t, struct ulp_applied_patch *ap);
/* Remove from the target's list and free. */
void ulp_target_remove_patch(struct ulp_target *t, struct ulp_applied_patch *ap);
void ulp_applied_patch_destroy(struct ulp_applied_patch *ap);

/* Append a line to the target's event log. */
void ulp_target_log(struct ulp_target *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Called with every line ulp_target_log() appends, once it is appended
 * (NULL: nobody).  ulpd sets it to copy the event log to the journal and
 * to its systemd status; the engine has no say in where its lines go.
 */
extern void (*ulp_target_log_hook)(const struct ulp_target *t, const char *line);

/*
 * Called with a warning about a target that is no error of the request
 * under way (NULL: nobody): ulpd's state could not be saved in the process.
 */
extern void (*ulp_target_warning_hook)(const struct ulp_target *t, const char *msg);

/*
 * Apply the patch file at path: ULP_DONE when applied, ULP_PENDING when its
 * transition goes on, ULP_ALREADY when a patch of that name is applied
 * (applying a patch being reverted reverses that transition), or a negative
 * errno with a message; -EBUSY while another patch is in transition.  On
 * any error the target is left as it was (beyond the runtime, which may
 * stay loaded once the validation passed).
 */
int ulp_patch_apply(struct ulp_target *t, const char *path, const struct ulp_apply_opts *opts,
		    struct ulp_transition_stats *stats);

/*
 * Revert the named patch: ULP_DONE or ULP_PENDING.  Reverting the patch in
 * a patching transition reverses it.  -ENOENT if it is not applied,
 * -EBUSY while another patch is in transition.
 */
int ulp_patch_revert(struct ulp_target *t, const char *name, struct ulp_transition_stats *stats);

/*
 * One attempt at the transition in progress: attach, check threads for up
 * to budget_ms, complete it if every thread switched, detach.  ULP_DONE
 * (also when none is in progress), ULP_PENDING, or -errno.
 */
int ulp_transition_work(struct ulp_target *t, int budget_ms, struct ulp_transition_stats *stats);

/*
 * Switch the remaining threads of the named patch's transition without
 * checking their stacks, and complete it (unsafe, as in the kernel).  The
 * patch is then never unloaded from the target.
 */
int ulp_transition_force(struct ulp_target *t, const char *name);

/*
 * "thread N is in function 'f' of object 'o'; ..." for every thread the
 * last attempt found blocking; returns how many.
 */
size_t ulp_transition_blockers(const struct ulp_target *t, char *buf, size_t size);

/*
 * Every thread of the process as the transition in progress sees it (all
 * switched when there is none).
 */
int ulp_target_threads(struct ulp_target *t, struct ulp_thread_info **out, size_t *nr);

/* Drop the transition record (it completed). */
void ulp_target_end_transition(struct ulp_target *t);

/* Remove from the target's list without freeing. */
void ulp_target_remove_patch_keep(struct ulp_target *t, struct ulp_applied_patch *ap);

/*
 * A process an earlier ulpd patched (or the child of one): its patches,
 * transition and operation under way rebuilt from the state saved in it
 * (recovery.h); an apply cut short is undone, the end of a transition
 * finished.  -ENOENT if no runtime or saved state is there.
 */
int ulp_target_adopt(pid_t pid, struct ulp_target **out);

/*
 * A process a forked worker of this ulpd has just left at rest (its
 * operation over, no transition): taken over from its saved state without
 * attaching, since nothing in it needs finishing or repair.  rt_info and
 * r_debug are the worker's t->rt_info and t->r_debug; the loader hook
 * gets a channel of this ulpd.  Anything else takes ulp_target_adopt().
 */
int ulp_target_adopt_at_rest(pid_t pid, uint64_t rt_info, uint64_t r_debug,
			     struct ulp_target **out);

/*
 * Write code of the process while its threads run (the int3 protocol of
 * poke.h; a thread trapped meanwhile re-runs addr once it is written).
 */
int ulp_target_write_code(struct ulp_target *t, uint64_t addr, const uint8_t *bytes, size_t len);

/* Validate a patch file alone (no target). */
int ulp_patch_check_file(const char *path, struct ulp_patch_info **out);

#endif
