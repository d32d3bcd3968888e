/* SPDX-License-Identifier: MIT */
/*
 * Slot pages: executable pages mapped in the target within reach of a
 * rel32 jump (+-2 GiB) from the functions whose entries jump to them,
 * shared by the slots of nearby functions.
 */
#ifndef ULP_SLOT_H
#define ULP_SLOT_H

#include <stdint.h>

struct ulp_target;
struct ulp_process;

/* A free slot within reach of near; maps a new page through the runtime if needed. */
int ulp_slot_alloc(struct ulp_target *t, struct ulp_process *p, uint64_t near, uint64_t *slot);

/* Release a slot; unmaps its page when it was the last one in use. */
int ulp_slot_free(struct ulp_target *t, struct ulp_process *p, uint64_t slot);

/* Is addr inside any slot page of the target? */
bool ulp_slot_contains(const struct ulp_target *t, uint64_t addr);

#endif
