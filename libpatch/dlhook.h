/* SPDX-License-Identifier: MIT */
/*
 * ulpd's side of the loader hook (runtime/dlhook.c): pointing ld.so's
 * _dl_debug_state() at the runtime, the channel the hook reports objects
 * coming and going on, and the list of object names worth reporting.
 */
#ifndef ULP_DLHOOK_H
#define ULP_DLHOOK_H

#include <stddef.h>

#include "rt_abi.h"

struct ulp_target;
struct ulp_process;
struct ulp_symbols;

/*
 * Open the channel (t->hook_fd) and install the hook, once per runtime.
 * The runtime must be in.  Failure leaves objects loaded later unpatched;
 * nothing else changes.
 */
int ulp_dlhook_ensure(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms);

/* Tell the runtime which object names the applied patches are for. */
int ulp_dlhook_watch(struct ulp_target *t, struct ulp_process *p);
/*
 * A channel of this ulpd to a hook an earlier ulpd (or a worker) installed
 * at t->r_debug: runtime calls only, no symbols, nothing written.
 */
int ulp_dlhook_reopen(struct ulp_target *t, struct ulp_process *p);

/*
 * Serve what the hook sent on t->hook_fd (ulpd calls this when it is
 * readable): patch objects coming, unpatch objects going.  Closes the
 * channel when the process is gone.
 */
void ulp_dlhook_serve(struct ulp_target *t);

/*
 * What core.c does for them (the kernel's klp_module_coming/going):
 * returns 1 with reject filled when the load must fail.
 */
int ulp_objects_coming(struct ulp_target *t, const struct ulp_hook_event *ev, char *reject,
		       size_t len);
void ulp_objects_going(struct ulp_target *t, const struct ulp_hook_event *ev);

/* One command to the hook; a reply from it, waiting at most timeout_ms. */
int ulp_hook_send(int fd, const struct ulp_hook_cmd *cmd);
int ulp_hook_recv(int fd, struct ulp_process *p, void *buf, size_t len, int timeout_ms);

#endif
