/* SPDX-License-Identifier: MIT */
/*
 * Target memory: reads through process_vm_readv, writes through
 * /proc/PID/mem, which also works on read-only and r-x pages (the kernel
 * breaks the page's sharing the way a debugger's breakpoint does).
 */
#ifndef ULP_MEMORY_H
#define ULP_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "process.h"

int ulp_mem_read(struct ulp_process *p, uint64_t addr, void *buf, size_t len);
int ulp_mem_write(struct ulp_process *p, uint64_t addr, const void *buf, size_t len);
int ulp_mem_read_u64(struct ulp_process *p, uint64_t addr, uint64_t *val);
int ulp_mem_write_u64(struct ulp_process *p, uint64_t addr, uint64_t val);
/* Read a NUL-terminated string of at most len-1 bytes. */
int ulp_mem_read_string(struct ulp_process *p, uint64_t addr, char *buf, size_t len);

#endif
