/* SPDX-License-Identifier: MIT */
/*
 * What the engine and libulp-rt.so share: the layout of the runtime's
 * exported `ulp_rt_info`, which the engine reads and writes in the target's
 * memory, and the names of the functions it calls there on the worker thread.
 */
#ifndef ULP_RT_ABI_H
#define ULP_RT_ABI_H

#include <stdint.h>

#define ULP_RT_MAGIC 0x554c5052u /* "ULPR" */
#define ULP_RT_ABI 3
#define ULP_RT_SONAME "libulp-rt.so.0"
#define ULP_RT_INFO_SYMBOL "ulp_rt_info"
#define ULP_RT_SCRATCH_SIZE 4096
#define ULP_RT_LOG_SIZE 65536
/* most address ranges ulp_rt_load_near() reserves */
#define ULP_RT_RESERVE_MAX 128

struct ulp_rt_info {
	uint32_t magic;
	uint32_t abi;
	int32_t worker_tid; /* the thread the engine runs remote calls on */
	int32_t tls_offset; /* state byte: %fs base + tls_offset */
	uint64_t tls_init; /* address of the state byte in the TLS init image */
	uint32_t ready; /* set last by the constructor */
	uint32_t pad;
	/* remote-callable entry points (addresses in the target) */
	uint64_t fn_load; /* void *ulp_rt_load(const char *path) */
	uint64_t fn_unload; /* int ulp_rt_unload(void *handle) */
	uint64_t fn_mmap; /* void *ulp_rt_mmap(void *addr, size_t len, int prot) */
	uint64_t fn_munmap; /* int ulp_rt_munmap(void *addr, size_t len) */
	/*
	 * void *ulp_rt_load_near(const char *path, const uint64_t *reserve, size_t nr):
	 * dlopen with the nr (start, length) address ranges held by PROT_NONE
	 * reservations meanwhile, so the loader maps the patch where ulpd chose.
	 */
	uint64_t fn_load_near;
	/*
	 * int ulp_rt_sync_core(void): membarrier(PRIVATE_EXPEDITED_SYNC_CORE),
	 * registering first; 0 or -errno.
	 */
	uint64_t fn_sync_core;
	/* event log written by ulp_log(): a byte ring, read by the engine */
	uint64_t log_head; /* total bytes ever written */
	char log[ULP_RT_LOG_SIZE];
	/* arguments and error text passed with remote calls */
	char scratch[ULP_RT_SCRATCH_SIZE];
};

#endif
