/* SPDX-License-Identifier: MIT */
/* What the parts of libulp-rt.so share. */
#ifndef ULP_RUNTIME_H
#define ULP_RUNTIME_H

#include "../libpatch/rt_abi.h"

#define ULP_RT_EXPORT __attribute__((visibility("default")))

extern struct ulp_rt_info ulp_rt_info;

/*
 * The per-thread bytes the slots test: the generation of the last
 * transition the thread switched to, and the last one it tried to switch
 * to by itself (self_switch.c).  Initial-exec: at a constant offset from
 * every thread's %fs base.
 */
struct ulp_thread_tls {
	unsigned char state;
	unsigned char tried;
};
extern __thread struct ulp_thread_tls ulp_thread_tls __attribute__((tls_model("initial-exec")));

void ulp_rt_self_switch_init(void);

/* glibc's TLS lookup: a thread's copy of offset in the TLS block of module. */
struct ulp_tls_index {
	unsigned long module, offset;
};
extern void *__tls_get_addr(struct ulp_tls_index *ti);

/* Append one line (ending in '\n') to the event log ring ulpd reads. */
void ulp_rt_log_line(const char *line);

/* The loader hook (dlhook.c): entry and channel set-up, for ulp_rt_info. */
void ulp_rt_dl_hook(void);
int ulp_rt_hook_open(uint64_t r_debug);
int ulp_rt_hook_release(int fd);
/* A forked child lets go of its parent's hook channel. */
void ulp_rt_hook_forget(void);
/* trap_guard.c */
int ulp_rt_trap_guard(int on);

#endif
