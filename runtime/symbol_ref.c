/* SPDX-License-Identifier: MIT */
/*
 * Thread-local variables a patch refers to (struct ulp_symbol_ref): ulpd
 * gives the patch a handle (an entry of ulp_rt_info.tls_refs: the object's
 * load bias and the variable's offset in its TLS block) instead of an
 * address, since every thread has its own copy; ulp_tls_addr() gives the
 * calling thread's.
 */
#include <link.h>
#include <stdint.h>

#include <ulp/patch.h>

#include "runtime.h"

static int ulp_find_tls_module(struct dl_phdr_info *info, size_t size, void *data)
{
	uint64_t *entry = data;

	(void)size;
	if (info->dlpi_addr != entry[0] || !info->dlpi_tls_modid)
		return 0;
	entry[2] = info->dlpi_tls_modid;
	return 1;
}

ULP_RT_EXPORT void *ulp_tls_addr(const void *handle)
{
	uint64_t *entry = (uint64_t *)(uintptr_t)handle;
	uint64_t module;
	struct ulp_tls_index ti;

	if (!handle)
		return NULL;
	module = __atomic_load_n(&entry[2], __ATOMIC_ACQUIRE);
	if (!module) {
		/* once per variable: the module id is the object's for its lifetime */
		uint64_t find[3] = { entry[0], entry[1], 0 };

		dl_iterate_phdr(ulp_find_tls_module, find);
		module = find[2];
		if (!module)
			return NULL;
		__atomic_store_n(&entry[2], module, __ATOMIC_RELEASE);
	}
	ti.module = module;
	ti.offset = entry[1];
	return __tls_get_addr(&ti);
}
