/* SPDX-License-Identifier: MIT */
/*
 * Reading a patch's descriptor (struct ulp_patch, see <ulp/patch.h>) straight
 * from its ELF file, without loading it anywhere: the file's loadable
 * segments are laid out at their link-time addresses and its dynamic
 * relocations applied with base 0, so every pointer in the descriptor reads
 * as a virtual address of the file ("vaddr").  Add the load bias of the
 * patch in a target to get a target address.
 */
#ifndef ULP_PATCH_FILE_H
#define ULP_PATCH_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ulp_patch_func_info {
	char *old_name;
	unsigned long old_sympos;
	uint64_t new_func; /* vaddr */
	uint64_t new_size; /* st_size of the symbol at new_func, 0 if unknown */
	char *new_name; /* that symbol's name, NULL if unknown */
	uint64_t desc; /* vaddr of this struct ulp_func */
};

struct ulp_patch_object_info {
	char *name; /* NULL: the main program */
	char *build_id; /* NULL or lowercase hex */
	uint64_t pre_patch, post_patch, pre_unpatch, post_unpatch; /* vaddrs, 0 if none */
	struct ulp_patch_func_info *funcs;
	size_t nr_funcs;
	uint64_t desc; /* vaddr of this struct ulp_object */
};

struct ulp_patch_state_info {
	unsigned long id;
	unsigned int version;
};

struct ulp_patch_symref_info {
	char *object; /* NULL: the main program */
	char *name;
	unsigned long sympos;
	uint64_t addr_slot; /* vaddr of the void * that receives the address */
};

struct ulp_patch_info {
	char *name;
	bool replace;
	uint64_t desc; /* vaddr of the struct ulp_patch */
	struct ulp_patch_object_info *objs;
	size_t nr_objs;
	struct ulp_patch_state_info *states;
	size_t nr_states;
	struct ulp_patch_symref_info *symrefs;
	size_t nr_symrefs;
	char *build_id; /* the patch file's own build-id, lowercase hex, or NULL */
};

/*
 * Errors (negative errno, message via ulp_errorf naming the file):
 *   -ENOEXEC  not an ELF file; not ELF64 x86-64 ("wrong architecture: ...");
 *             not a shared object; no ulp_patch_descriptor ("... is not a ulp
 *             patch: no patch descriptor"); malformed descriptor (bad
 *             pointers, unterminated strings, no name, no objects)
 *   -EPROTO   abi_version not ULP_ABI_VERSION
 *   -errno    the file cannot be opened or read
 */
int ulp_patch_info_read(const char *path, struct ulp_patch_info **out);
int ulp_patch_info_read_fd(int fd, const char *display_name, struct ulp_patch_info **out);
void ulp_patch_info_free(struct ulp_patch_info *info);

#endif
