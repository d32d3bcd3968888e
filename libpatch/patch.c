/* SPDX-License-Identifier: MIT */
/*
 * The code side of one patch in one process: validation (so a refused patch
 * leaves the target untouched), loading it, slots, and where function
 * entries lead.  core.c decides when each step happens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>

#include <ulp/patch.h>

#include "codegen.h"
#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memfd.h"
#include "memory.h"
#include "recovery.h"
#include "placement.h"
#include "poke.h"
#include "process.h"
#include "procfs.h"
#include "rt_abi.h"
#include "slot.h"
#include "symbols.h"
#include "patch.h"
#include "replace.h"
#include "transition.h"
#include "unwind.h"

#define ULP_CODE_READ_MAX 65536
/* How long threads found inside a slot after a revert may take to leave it. */
#define ULP_SLOT_LEAVE_MS 5000
/* The kernel keeps mmap_base at least 128 MiB (plus the stack's rlimit) under the stack. */
#define ULP_STACK_ROOM_MIN (128ull << 20)
#define ULP_STACK_GUARD (16ull << 20)

int ulp_patch_check_file(const char *path, struct ulp_patch_info **out)
{
	return ulp_patch_info_read(path, out);
}

const char *ulp_obj_name(const struct ulp_patch_object_info *o)
{
	return o->name ? o->name : "main";
}

/* ap's version of the function at old_addr, if it has one yet. */
static struct ulp_applied_func *ulp_patch_func_at(struct ulp_applied_patch *ap, uint64_t old_addr)
{
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		if (fs->old_addr == old_addr && fs->info)
			return fs;
	}
	return NULL;
}

/*
 * Where ap's version of the function at old_addr goes in its stack: over
 * the version of the newest patch applied before ap, under that of the
 * oldest applied after it (an object mapped while ap was being applied can
 * be patched by a newer patch first).  ap not among t's patches: the newest.
 */
static void ulp_func_stack_place(struct ulp_target *t, struct ulp_applied_patch *ap,
				 uint64_t old_addr, struct ulp_applied_func **below,
				 struct ulp_applied_func **above)
{
	size_t k = t->nr_patches;

	*below = *above = NULL;
	for (size_t i = 0; i < t->nr_patches; i++)
		if (t->patches[i] == ap)
			k = i;
	for (size_t i = 0; i < t->nr_patches; i++) {
		struct ulp_applied_func *fs;

		if (i == k || !(fs = ulp_patch_func_at(t->patches[i], old_addr)))
			continue;
		if (i < k)
			*below = fs;
		else if (!*above)
			*above = fs;
	}
}

void ulp_func_unlink(struct ulp_applied_func *fs)
{
	if (fs->above)
		fs->above->below = fs->below;
	if (fs->below)
		fs->below->above = fs->above;
	fs->above = fs->below = NULL;
}

/*
 * The function's code as its object has it: where a patch's entry jump
 * sits (at patch_addr), the orig_len original bytes it displaced.  The
 * read is bounded by ULP_CODE_READ_MAX; *len says how much was read.
 */
static int ulp_func_code_read(struct ulp_process *p, uint64_t addr, uint64_t size,
			      uint64_t patch_addr, const uint8_t *orig, size_t orig_len,
			      uint8_t **out, size_t *len)
{
	uint8_t *code;
	int ret;

	*len = size ? size : 16;
	if (*len > ULP_CODE_READ_MAX)
		*len = ULP_CODE_READ_MAX;
	code = malloc(*len);
	if (!code)
		return ulp_errorf(-ENOMEM, "out of memory");
	ret = ulp_mem_read(p, addr, code, *len);
	if (ret < 0) {
		free(code);
		return ret;
	}
	if (orig_len && patch_addr - addr + orig_len <= *len)
		memcpy(code + (patch_addr - addr), orig, orig_len);
	*out = code;
	return 0;
}

/* ulp_func_code_read() under the entry jump of the bottom of fs's stack */
static int ulp_func_code_read_below(struct ulp_process *p, const struct ulp_applied_func *below,
				    uint64_t addr, uint64_t size, uint8_t **out, size_t *len)
{
	if (!below)
		return ulp_func_code_read(p, addr, size, 0, NULL, 0, out, len);
	return ulp_func_code_read(p, addr, size, below->prologue.patch_addr, below->prologue.orig,
				  below->prologue.displaced_len, out, len);
}

int ulp_func_prologue_rebuild(struct ulp_process *p, struct ulp_applied_func *fs, uint64_t poff,
			      const uint8_t *orig, size_t orig_len)
{
	uint8_t *code;
	size_t len;
	int ret;

	ret = ulp_func_code_read(p, fs->old_addr, fs->old_size, fs->old_addr + poff, orig, orig_len,
				 &code, &len);
	if (ret < 0)
		return ret;
	ret = ulp_prologue_build(code, len, fs->old_addr,
				 fs->slot ? fs->slot + ULP_SLOT_TRAMP_OFF : fs->old_addr,
				 &fs->prologue);
	free(code);
	return ret;
}

/*
 * Resolve and check one function of ap.  1 (nothing prepared) for a no-op
 * of a function ap replaces itself (under another name or sympos).
 */
static int ulp_prepare_func(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms,
			    struct ulp_applied_patch *ap, const struct ulp_patch_object_info *oi,
			    const struct ulp_patch_func_info *fi, struct ulp_applied_func *fs)
{
	struct ulp_applied_func *below, *above, *twin;
	struct ulp_symbol sym;
	uint8_t *code = NULL;
	size_t len;
	int ret;

	ret = ulp_symbols_resolve(syms, ulp_obj_name(oi), fi->old_name, fi->old_sympos, &sym);
	if (ret < 0)
		return ret;
	if (sym.type != 2 /* STT_FUNC */ && sym.type != 10 /* STT_GNU_IFUNC */)
		return ulp_errorf(-EINVAL, "symbol '%s' in object '%s' is not a function",
				  fi->old_name, ulp_obj_name(oi));
	/* one version per patch and function: two would fight over its entry */
	twin = ulp_patch_func_at(ap, sym.addr);
	if (twin && fs->nop)
		return 1;
	if (twin)
		return ulp_errorf(
			-EINVAL,
			"patch '%s' replaces function '%s' in object '%s' twice (also as '%s')",
			ap->info->name, fi->old_name, ulp_obj_name(oi), twin->info->old_name);
	ulp_func_stack_place(t, ap, sym.addr, &below, &above);
	fs->info = fi;
	fs->old_addr = sym.addr;
	fs->old_size = sym.size;
	ret = ulp_func_code_read_below(p, below ? below : above, sym.addr, sym.size, &code, &len);
	if (ret < 0)
		return ret;
	/* A dry run with the trampoline next to the function finds every
	 * refusal before anything in the target changes. */
	ret = ulp_prologue_build(code, len, sym.addr, sym.addr, &fs->prologue);
	free(code);
	if (ret < 0)
		return ulp_error_prefix(ret, "cannot patch function '%s' in object '%s'",
					fi->old_name, ulp_obj_name(oi));
	/* into the function's stack; ulp_func_unlink() takes it off again */
	fs->below = below;
	fs->above = above;
	if (below)
		below->above = fs;
	if (above)
		above->below = fs;
	return 0;
}

/*
 * Resolve and check the functions of one object of ap, mapped in the
 * target; nothing in the target changes.
 */
int ulp_object_prepare(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms,
		       struct ulp_applied_patch *ap, struct ulp_applied_object *os)
{
	const struct ulp_patch_object_info *oi = os->info;
	const struct ulp_object_map *map = ulp_symbols_find_object(syms, oi->name);
	int ret = 0;

	if (!map)
		return ulp_errorf(-ENOENT, "object '%s' is not loaded in process %d", os->name,
				  p->pid);
	if (oi->build_id && (!map->build_id || strcmp(oi->build_id, map->build_id) != 0))
		return ulp_errorf(
			-ENOEXEC,
			"build-id mismatch for object '%s': patch '%s' is for %s, process %d has %s",
			os->name, ap->info->name, oi->build_id, p->pid,
			map->build_id ? map->build_id : "none");
	/* an object not loaded has none, but a saved view read back gives it an empty array */
	ulp_object_forget_funcs(os);
	os->funcs = calloc(oi->nr_funcs ? oi->nr_funcs : 1, sizeof(*os->funcs));
	if (!os->funcs)
		return ulp_errorf(-ENOMEM, "out of memory");
	for (size_t f = 0; f < oi->nr_funcs && ret >= 0; f++) {
		struct ulp_applied_func *fs = &os->funcs[os->nr_funcs];

		fs->nop = os->nop;
		ret = ulp_prepare_func(t, p, syms, ap, oi, &oi->funcs[f], fs);
		if (ret == 0)
			os->nr_funcs++;
		else if (ret == 1)
			memset(fs, 0, sizeof(*fs));
	}
	if (ret < 0) {
		ulp_object_forget_funcs(os);
		return ret;
	}
	os->loaded = true;
	return 0;
}

void ulp_object_forget_funcs(struct ulp_applied_object *os)
{
	for (size_t f = 0; f < os->nr_funcs; f++)
		ulp_func_unlink(&os->funcs[f]);
	free(os->funcs);
	os->funcs = NULL;
	os->nr_funcs = 0;
}

/*
 * The target symbols the patch refers to (struct ulp_symbol_ref): each must
 * resolve now, in an object already loaded, as old_name / old_sympos do.
 */
static int ulp_symrefs_resolve(struct ulp_process *p, struct ulp_symbols *syms,
			       struct ulp_applied_patch *ap)
{
	const struct ulp_patch_info *info = ap->info;

	size_t n = info->nr_symrefs ? info->nr_symrefs : 1;

	ap->symref_addrs = calloc(n, sizeof(uint64_t));
	ap->symref_bias = calloc(n, sizeof(uint64_t));
	ap->symref_tls = calloc(n, sizeof(bool));
	if (!ap->symref_addrs || !ap->symref_bias || !ap->symref_tls)
		return ulp_errorf(-ENOMEM, "out of memory");
	for (size_t i = 0; i < info->nr_symrefs; i++) {
		const struct ulp_patch_symref_info *r = &info->symrefs[i];
		const char *obj = r->object ? r->object : "main";
		struct ulp_symbol sym;
		int ret;

		if (!ulp_symbols_find_object(syms, r->object))
			return ulp_errorf(
				-ENOENT,
				"symbol reference '%s': object '%s' is not loaded in process %d",
				r->name, obj, p->pid);
		ret = ulp_symbols_resolve(syms, obj, r->name, r->sympos, &sym);
		if (ret < 0)
			return ulp_error_prefix(ret, "symbol reference '%s'", r->name);
		ap->symref_addrs[i] = sym.addr;
		if (sym.type == 6 /* STT_TLS */) {
			/* an offset in the object's TLS block: a handle for ulp_tls_addr() */
			ap->symref_tls[i] = true;
			ap->symref_bias[i] = ulp_symbols_find_object(syms, r->object)->bias;
		}
	}
	return 0;
}

/* A thread-local variable: an entry of ulp_rt_info.tls_refs the patch's handle points to. */
static int ulp_tls_ref_alloc(struct ulp_target *t, struct ulp_process *p, uint64_t bias,
			     uint64_t offset, uint64_t *handle)
{
	uint64_t entry[3] = { bias, offset, 0 }, at;
	int ret;

	for (uint32_t i = 0; i < t->nr_tls_refs; i++) {
		uint64_t have[2];

		at = t->rt_info + offsetof(struct ulp_rt_info, tls_refs) + i * sizeof(entry);
		ret = ulp_mem_read(p, at, have, sizeof(have));
		if (ret < 0)
			return ret;
		if (have[0] == bias && have[1] == offset) {
			*handle = at;
			return 0;
		}
	}
	if (t->nr_tls_refs >= ULP_RT_TLS_REFS)
		return ulp_errorf(-ENOSPC,
				  "more than %d thread-local variables referred to by patches",
				  ULP_RT_TLS_REFS);
	at = t->rt_info + offsetof(struct ulp_rt_info, tls_refs) + t->nr_tls_refs * sizeof(entry);
	ret = ulp_mem_write(p, at, entry, sizeof(entry));
	if (ret == 0) {
		t->nr_tls_refs++;
		*handle = at;
	}
	return ret;
}

int ulp_symrefs_write(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap)
{
	for (size_t i = 0; i < ap->info->nr_symrefs; i++) {
		uint64_t value = ap->symref_addrs[i];
		int ret = 0;

		if (ap->symref_tls[i])
			ret = ulp_tls_ref_alloc(t, p, ap->symref_bias[i], ap->symref_addrs[i],
						&value);
		if (ret == 0)
			ret = ulp_mem_write_u64(p, ap->bias + ap->info->symrefs[i].addr_slot,
						value);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Resolve and check everything; nothing in the target changes. */
int ulp_patch_prepare(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms,
		      struct ulp_patch_info *info, struct ulp_applied_patch **out)
{
	struct ulp_applied_patch *ap = calloc(1, sizeof(*ap));
	int ret = 0;

	if (!ap)
		return ulp_errorf(-ENOMEM, "out of memory");
	ap->info = info;
	ap->memfd = -1;
	/* a cumulative patch brings every function the others patched back */
	if (info->replace)
		ret = ulp_replace_nops(t, info, &ap->nop_infos, &ap->nr_nop_infos);
	if (ret == 0)
		ap->objs = calloc(info->nr_objs + ap->nr_nop_infos + 1, sizeof(*ap->objs));
	if (!ap->objs) {
		ulp_nop_infos_free(ap->nop_infos, ap->nr_nop_infos);
		free(ap);
		return ret < 0 ? ret : ulp_errorf(-ENOMEM, "out of memory");
	}
	ap->nr_objs = info->nr_objs + ap->nr_nop_infos;
	for (size_t o = 0; o < ap->nr_objs && ret == 0; o++) {
		struct ulp_applied_object *os = &ap->objs[o];
		const struct ulp_patch_object_info *oi =
			o < info->nr_objs ? &info->objs[o] : &ap->nop_infos[o - info->nr_objs];

		os->info = oi;
		os->nop = o >= info->nr_objs;
		os->name = strdup(ulp_obj_name(oi));
		if (!os->name) {
			ret = ulp_errorf(-ENOMEM, "out of memory");
			break;
		}
		if (!ulp_symbols_find_object(syms, oi->name))
			continue; /* not loaded: patched when it comes (dlopen) */
		ret = ulp_object_prepare(t, p, syms, ap, os);
	}
	if (ret == 0)
		ret = ulp_symrefs_resolve(p, syms, ap);
	if (ret < 0) {
		ap->info = NULL; /* the caller still owns info */
		ulp_applied_patch_destroy(ap);
		return ulp_error_prefix(ret, "patch '%s'", info->name);
	}
	*out = ap;
	return 0;
}

/*
 * The range of replaced functions of the object with the most of them: the
 * patch is mapped near it so that their entries reach the new code
 * directly.  False if no object of the patch is loaded.
 */
static bool ulp_patch_anchor(const struct ulp_applied_patch *ap, uint64_t *lo, uint64_t *hi)
{
	const struct ulp_applied_object *best = NULL;

	/* no-ops run no code of the patch: they need no direct jump */
	for (size_t o = 0; o < ap->nr_objs; o++)
		if (!ap->objs[o].nop && ap->objs[o].nr_funcs &&
		    (!best || ap->objs[o].nr_funcs > best->nr_funcs))
			best = &ap->objs[o];
	if (!best)
		return false;
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t f = 0; f < best->nr_funcs; f++) {
		const struct ulp_applied_func *fs = &best->funcs[f];

		if (fs->old_addr < *lo)
			*lo = fs->old_addr;
		if (fs->old_addr + fs->old_size > *hi)
			*hi = fs->old_addr + fs->old_size;
	}
	return true;
}

/*
 * Plan where the loader should map the patch (see placement.h).  False when
 * there is no plan: the patch is then loaded wherever dlopen() puts it.
 */
static bool ulp_plan_placement(struct ulp_process *p, const struct ulp_applied_patch *ap,
			       const char *path, struct ulp_placement *pl)
{
	struct ulp_map_area *maps;
	struct rlimit stack;
	uint64_t lo, hi, len;
	size_t nr;
	bool ok;

	/* An unlimited stack selects the legacy bottom-up mmap layout, which
	 * the plan does not model. */
	if (prlimit(p->pid, RLIMIT_STACK, NULL, &stack) < 0 || stack.rlim_cur == RLIM_INFINITY)
		return false;
	if (!ulp_patch_anchor(ap, &lo, &hi) || ulp_placement_map_size(path, &len) < 0)
		return false;
	if (ulp_proc_maps_read(p->pid, &maps, &nr) < 0)
		return false;
	/* mmap_base lies at least this far below the stack (the kernel's own gap) */
	if (stack.rlim_cur < ULP_STACK_ROOM_MIN)
		stack.rlim_cur = ULP_STACK_ROOM_MIN;
	ok = ulp_placement_plan(maps, nr, lo, hi, len, stack.rlim_cur + ULP_STACK_GUARD,
				ULP_BRK_ROOM, pl) == 0;
	free(maps);
	return ok;
}

/* The process lets go of the patch's memfd (the loader keeps its mapping). */
static void ulp_patch_memfd_close(struct ulp_target *t, struct ulp_process *p,
				  struct ulp_applied_patch *ap)
{
	uint64_t fn, fd = (uint64_t)ap->memfd, r;

	if (ap->memfd < 0)
		return;
	if (ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_close), &fn) == 0)
		ulp_runtime_call(t, p, fn, &fd, 1, &r);
	ap->memfd = -1;
}

/* The patch file copied into a sealed memfd of the process (memfd.h; rt_abi.h, fn_memfd). */
static int ulp_patch_memfd(struct ulp_target *t, struct ulp_process *p, const char *path,
			   const char *name, int *out)
{
	uint64_t scratch = t->rt_info + offsetof(struct ulp_rt_info, scratch);
	uint64_t fn, tfd = 0, r;
	char memname[256];
	int ret;

	snprintf(memname, sizeof(memname), "%s", name);
	ret = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_memfd), &fn);
	if (ret == 0)
		ret = ulp_mem_write(p, scratch, memname, strlen(memname) + 1);
	if (ret == 0)
		ret = ulp_runtime_call(t, p, fn, &scratch, 1, &tfd);
	if (ret < 0)
		return ret;
	if ((int)tfd < 0)
		return ulp_errorf((int)tfd, "process %d cannot create a memfd for the patch: %s",
				  p->pid, strerror(-(int)tfd));
	ret = ulp_memfd_fill(p->pid, (int)tfd, path, "the patch");
	if (ret < 0) {
		if (ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_close), &fn) ==
		    0)
			ulp_runtime_call(t, p, fn, &tfd, 1, &r);
		return ret;
	}
	*out = (int)tfd;
	return 0;
}

int ulp_load_into_target(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap,
			 const char *path)
{
	uint64_t scratch = t->rt_info + offsetof(struct ulp_rt_info, scratch);
	uint64_t fn, handle, args[3] = { scratch, 0, 0 };
	char err[ULP_RT_SCRATCH_SIZE], load_path[64];
	const char *base = strrchr(path, '/');
	struct ulp_placement pl;
	size_t path_len;
	int nr_args = 1, ret, memfd = -1;

	ret = ulp_patch_memfd(t, p, path, ap->display ? ap->display : (base ? base + 1 : path),
			      &memfd);
	if (ret < 0)
		return ret;
	ap->memfd = memfd;
	/* a ulpd that dies in dlopen() leaves its successor the memfd to find it by */
	ulp_recovery_step(t, p, "apply", ap->info->name, "loading");
	snprintf(load_path, sizeof(load_path), "/proc/self/fd/%d", memfd);
	path_len = strlen(load_path) + 1;
	ret = ulp_mem_write(p, scratch, load_path, path_len);
	if (ret < 0)
		return ret;
	if (ulp_plan_placement(p, ap, path, &pl) &&
	    path_len + sizeof(pl.reserve[0]) * pl.nr_reserve <= ULP_RT_SCRATCH_SIZE) {
		args[1] = scratch + ULP_RT_SCRATCH_SIZE - sizeof(pl.reserve[0]) * pl.nr_reserve;
		args[2] = pl.nr_reserve;
		nr_args = 3;
		ret = ulp_mem_write(p, args[1], pl.reserve, sizeof(pl.reserve[0]) * pl.nr_reserve);
		if (ret == 0)
			ret = ulp_mem_read_u64(
				p, t->rt_info + offsetof(struct ulp_rt_info, fn_load_near), &fn);
	} else {
		ret = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_load), &fn);
	}
	if (ret == 0)
		ret = ulp_runtime_call(t, p, fn, args, nr_args, &handle);
	if (ret == 0 && handle)
		ulp_fault_point("loaded");
	if (ret == 0 && !handle) {
		ulp_mem_read_string(p, scratch, err, sizeof(err));
		ret = ulp_errorf(-ENOEXEC, "process %d cannot load patch %s: %s", p->pid, path,
				 err);
	}
	if (ret < 0) {
		ulp_patch_memfd_close(t, p, ap);
		return ret;
	}
	ap->handle = handle;
	/* dlopen's handle is the link_map; l_addr, its load bias, comes first. */
	return ulp_mem_read_u64(p, handle, &ap->bias);
}

int ulp_unload_from_target(struct ulp_target *t, struct ulp_process *p,
			   struct ulp_applied_patch *ap)
{
	uint64_t fn_unload, ret;
	int rc;

	if (!ap->handle) {
		ulp_patch_memfd_close(t, p, ap);
		return 0;
	}
	rc = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_unload), &fn_unload);
	if (rc == 0)
		rc = ulp_runtime_call(t, p, fn_unload, &ap->handle, 1, &ret);
	ap->handle = 0;
	ulp_patch_memfd_close(t, p, ap);
	return rc;
}

void ulp_object_release_slots(struct ulp_target *t, struct ulp_process *p,
			      struct ulp_applied_object *os)
{
	for (size_t f = 0; f < os->nr_funcs; f++) {
		if (os->funcs[f].slot)
			ulp_slot_free(t, p, os->funcs[f].slot);
		os->funcs[f].slot = 0;
	}
}

void ulp_release_slots(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap)
{
	for (size_t o = 0; o < ap->nr_objs; o++)
		ulp_object_release_slots(t, p, &ap->objs[o]);
}

int ulp_build_slots(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap)
{
	int ret;

	ULP_FOR_EACH_FUNC(ap, fs)
	{
		uint8_t slot[ULP_SLOT_SIZE], *code = NULL;
		size_t len;

		if (fs->slot)
			continue;

		ret = ulp_slot_alloc(t, p, fs->old_addr, &fs->slot);
		if (ret < 0)
			return ret;
		ret = ulp_func_code_read_below(p, fs->below, fs->old_addr, fs->old_size, &code,
					       &len);
		if (ret < 0)
			return ret;
		ret = ulp_prologue_build(code, len, fs->old_addr, fs->slot + ULP_SLOT_TRAMP_OFF,
					 &fs->prologue);
		free(code);
		if (fs->nop) {
			/* the original, through its trampoline */
			fs->new_addr = fs->prologue.tramp_addr;
			fs->new_size = fs->prologue.tramp_len;
		} else {
			fs->new_addr = ap->bias + fs->info->new_func;
			fs->new_size = fs->info->new_size ? fs->info->new_size : 1;
		}
		if (ret == 0) {
			uint8_t jmp[ULP_JMP_REL32_LEN];

			fs->direct = ulp_encode_jmp_rel32(fs->prologue.patch_addr, fs->new_addr,
							  jmp) == 0;
			/* threads not switched yet run the version below */
			ret = ulp_slot_build(slot, fs->slot, t->tls_offset, ap->gen, fs->new_addr,
					     fs->below ? fs->below->new_addr
						       : fs->prologue.tramp_addr,
					     t->self_check_entry, &fs->prologue);
		}
		if (ret == 0)
			ret = ulp_mem_write(p, fs->slot, slot, sizeof(slot));
		/*
		 * ulp_func.old_func: the original stays callable through the
		 * trampoline (whatever other patches do to the function)
		 */
		if (ret == 0 && !fs->nop)
			ret = ulp_mem_write_u64(
				p, ap->bias + fs->info->desc + offsetof(struct ulp_func, old_func),
				fs->prologue.tramp_addr);
		/* slipped under a newer version (ulp_func_stack_place): it leads here now */
		if (ret == 0 && fs->above)
			ret = ulp_mem_write_u64(p, fs->above->slot + ULP_SLOT_PREV_PTR_OFF,
						fs->new_addr);
		if (ret < 0)
			return ret;
	}
	return 0;
}

size_t ulp_patch_nr_funcs(const struct ulp_applied_patch *ap)
{
	size_t n = 0;

	for (size_t o = 0; o < ap->nr_objs; o++)
		n += ap->objs[o].nr_funcs;
	return n;
}

/* The bytes an entry gets to lead to `to`. */
static int ulp_entry_poke_of(const struct ulp_applied_func *fs, enum ulp_entry_to to,
			     struct ulp_poke *k)
{
	uint64_t dest = 0;

	k->addr = fs->prologue.patch_addr;
	k->len = ULP_JMP_REL32_LEN;
	switch (to) {
	case ULP_ENTRY_PATCHING:
		dest = fs->slot + ULP_SLOT_DISPATCH_OFF;
		break;
	case ULP_ENTRY_UNPATCHING:
		dest = fs->slot + ULP_SLOT_UNPATCH_OFF;
		break;
	case ULP_ENTRY_STEADY:
		/* a no-op is steady only once nothing is left below it */
		if (fs->nop)
			return ulp_entry_poke_of(fs, ULP_ENTRY_ORIGINAL, k);
		/* Within reach, a patched call costs one direct jump. */
		dest = fs->direct ? fs->new_addr : fs->slot + ULP_SLOT_STEADY_OFF;
		break;
	case ULP_ENTRY_BELOW:
		if (fs->below)
			return ulp_entry_poke_of(fs->below, ULP_ENTRY_STEADY, k);
		return ulp_entry_poke_of(fs, ULP_ENTRY_ORIGINAL, k);
	case ULP_ENTRY_ORIGINAL:
		/* the trampoline runs the original first instructions */
		memcpy(k->bytes, fs->prologue.orig, k->len);
		k->emulate_to = fs->prologue.tramp_addr;
		return 0;
	}
	k->emulate_to = dest;
	if (ulp_encode_jmp_rel32(k->addr, dest, k->bytes) < 0)
		return ulp_errorf(-ERANGE, "0x%llx out of reach of 0x%llx",
				  (unsigned long long)dest, (unsigned long long)k->addr);
	return 0;
}

static int ulp_entry_pokes(struct ulp_applied_patch *ap, enum ulp_entry_to to,
			   struct ulp_poke **out, size_t *nr)
{
	size_t n = ulp_patch_nr_funcs(ap);
	struct ulp_poke *pk = calloc(n ? n : 1, sizeof(*pk));

	if (!pk)
		return ulp_errorf(-ENOMEM, "out of memory");
	n = 0;
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		int ret;

		/* under a newer version: the entry leads there, whatever this one does */
		if (fs->above)
			continue;
		ret = ulp_entry_poke_of(fs, to, &pk[n++]);

		if (ret < 0) {
			free(pk);
			return ret;
		}
	}
	*out = pk;
	*nr = n;
	return 0;
}

bool ulp_entries_are(struct ulp_process *p, struct ulp_applied_patch *ap, enum ulp_entry_to to)
{
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		struct ulp_poke k = { 0 };
		uint8_t now[ULP_POKE_MAX];

		if (fs->above)
			continue;
		if (ulp_entry_poke_of(fs, to, &k) < 0 || ulp_mem_read(p, k.addr, now, k.len) < 0 ||
		    memcmp(now, k.bytes, k.len) != 0) {
			ulp_error_clear();
			return false;
		}
	}
	return true;
}

int ulp_object_entries_write(struct ulp_process *p, struct ulp_applied_object *os,
			     enum ulp_entry_to to)
{
	for (size_t f = 0; f < os->nr_funcs; f++) {
		struct ulp_poke k = { 0 };
		int ret;

		if (os->funcs[f].above)
			continue;
		ret = ulp_entry_poke_of(&os->funcs[f], to, &k);

		if (ret == 0)
			ret = ulp_mem_write(p, k.addr, k.bytes, k.len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Visit: a thread inside the bytes about to be overwritten goes on in the trampoline. */
static int ulp_move_out_of_displaced(struct ulp_process *p, struct ulp_thread *th, void *arg)
{
	struct ulp_applied_patch *ap = arg;

	ULP_FOR_EACH_FUNC(ap, fs)
	{
		const struct ulp_prologue *pr = &fs->prologue;
		uint64_t rip = th->regs.rip, new_rip;
		int ret;

		if (rip <= pr->patch_addr || rip >= pr->patch_addr + pr->displaced_len)
			continue;
		ret = ulp_prologue_map_rip(pr, rip, &new_rip);
		if (ret < 0)
			return ulp_errorf(ret, "thread %d stopped inside an instruction at 0x%llx",
					  th->tid, (unsigned long long)rip);
		th->regs.rip = new_rip;
		return ulp_thread_set_regs(p, th);
	}
	return 0;
}

/*
 * A thread preempted inside a slot while the original bytes come back is
 * moved to the equivalent place in the original function: the dispatch has
 * not started the function yet (its entry is equivalent), and each
 * relocated instruction has its original twin.  -EAGAIN if a thread is
 * somewhere that has no equivalent.
 */
static int ulp_slot_rip_to_original(const struct ulp_applied_func *fs, uint64_t rip, uint64_t *out)
{
	const struct ulp_prologue *pr = &fs->prologue;
	size_t back_off;

	if ((rip >= fs->slot && rip < pr->tramp_addr) ||
	    (rip >= fs->slot + ULP_SLOT_UNPATCH_OFF &&
	     rip < fs->slot + ULP_SLOT_UNPATCH_OFF + ULP_SLOT_DISPATCH_LEN)) {
		*out = pr->patch_addr;
		return 0;
	}
	/*
	 * Where the entry leads to another version, the original's bytes
	 * under it are no twin: a thread on its way into the original
	 * (old_func) must get there, so it is waited for (the trampoline is
	 * straight-line code).
	 */
	if (fs->above || fs->below)
		return -EAGAIN;
	for (size_t i = 0; i < pr->nr_insns; i++) {
		if (rip == pr->tramp_addr + pr->reloc_off[i]) {
			*out = pr->patch_addr + pr->insn_off[i];
			return 0;
		}
	}
	/* the jump back: jmp rel32 (5 bytes) or jmp *0(%rip) + address (14) */
	back_off = pr->tramp_len >= 5 && pr->tramp[pr->tramp_len - 5] == 0xe9 ? pr->tramp_len - 5
									      : pr->tramp_len - 14;
	if (rip == pr->tramp_addr + back_off) {
		*out = pr->patch_addr + pr->displaced_len;
		return 0;
	}
	return -EAGAIN;
}

struct ulp_leave_ctx {
	struct ulp_target *t;
	struct ulp_applied_patch *ap;
};

/*
 * Visit: a thread inside a slot goes on at its twin in the original
 * function; one in the runtime's self-switch code on its way back to a slot
 * is waited for.
 */
static int ulp_move_out_of_slot(struct ulp_process *p, struct ulp_thread *th, void *arg)
{
	struct ulp_leave_ctx *c = arg;
	struct ulp_applied_patch *ap = c->ap;

	for (int i = 0; i < 2; i++)
		if (th->regs.rip >= c->t->self_uncounted[i][0] &&
		    th->regs.rip < c->t->self_uncounted[i][1])
			return -EAGAIN;

	ULP_FOR_EACH_FUNC(ap, fs)
	{
		uint64_t to;
		int ret;

		if (th->regs.rip < fs->slot || th->regs.rip >= fs->slot + ULP_SLOT_SIZE)
			continue;
		ret = ulp_slot_rip_to_original(fs, th->regs.rip, &to);
		if (ret < 0)
			return ret;
		th->regs.rip = to;
		return ulp_thread_set_regs(p, th);
	}
	return 0;
}

/*
 * Code ranges a visit looks for threads in: the displaced bytes after each
 * entry's first byte, or the whole slots.
 */
static int ulp_entry_ranges(struct ulp_applied_patch *ap, bool slots, struct ulp_addr_range **out,
			    size_t *nr)
{
	size_t n = ulp_patch_nr_funcs(ap);
	struct ulp_addr_range *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return ulp_errorf(-ENOMEM, "out of memory");
	n = 0;
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		if (slots)
			r[n++] = (struct ulp_addr_range){ fs->slot, fs->slot + ULP_SLOT_SIZE };
		else
			r[n++] = (struct ulp_addr_range){ fs->prologue.patch_addr + 1,
							  fs->prologue.patch_addr +
								  fs->prologue.displaced_len };
	}
	*out = r;
	*nr = n;
	return 0;
}

/*
 * Point every entry of the patch elsewhere while threads run (poke.h).
 * Going to the patching dispatch moves threads out of the displaced bytes
 * first; if that fails, nothing changed.
 */
int ulp_entries_poke(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap,
		     enum ulp_entry_to to)
{
	struct ulp_visit v = { .fn = ulp_move_out_of_displaced, .arg = ap };
	struct ulp_addr_range *ranges = NULL;
	struct ulp_poke *pokes = NULL;
	size_t n = 0;
	int ret;

	ret = ulp_entry_pokes(ap, to, &pokes, &n);
	if (ret < 0)
		return ret;
	if (to == ULP_ENTRY_PATCHING) {
		ret = ulp_entry_ranges(ap, false, &ranges, &v.nr_ranges);
		v.ranges = ranges;
	}
	if (ret == 0)
		ret = ulp_text_poke(t, p, pokes, n, to == ULP_ENTRY_PATCHING ? &v : NULL);
	free(ranges);
	free(pokes);
	return ret;
}

/*
 * Once the original bytes are back, no thread enters a slot; wait for those
 * inside to leave (moving them to the original code where they can be).
 */
int ulp_threads_leave_slots(struct ulp_target *t, struct ulp_process *p,
			    struct ulp_applied_patch *ap)
{
	struct ulp_leave_ctx c = { .t = t, .ap = ap };
	struct ulp_visit v = { .fn = ulp_move_out_of_slot, .arg = &c };
	struct ulp_addr_range *ranges = NULL, *all;
	int ret = ulp_entry_ranges(ap, true, &ranges, &v.nr_ranges);

	if (ret < 0)
		return ret;
	/* asleep in the kernel with a pc in the uncounted code: also a visit */
	all = realloc(ranges, (v.nr_ranges + 2) * sizeof(*all));
	if (!all) {
		free(ranges);
		return ulp_errorf(-ENOMEM, "out of memory");
	}
	for (int i = 0; i < 2; i++)
		all[v.nr_ranges++] =
			(struct ulp_addr_range){ t->self_uncounted[i][0], t->self_uncounted[i][1] };
	v.ranges = all;
	/*
	 * Once nobody is in a slot or on the uncounted way in, no thread can
	 * enter the check any more; then those inside it leave, back through a
	 * slot: visit again.
	 */
	ret = ulp_visit_all(p, &v, ULP_SLOT_LEAVE_MS);
	if (ret == 0)
		ret = ulp_self_checks_wait(t, p, ULP_SLOT_LEAVE_MS);
	if (ret == 0)
		ret = ulp_visit_all(p, &v, ULP_SLOT_LEAVE_MS);
	free(all);
	return ret;
}

int ulp_stack_bridge(struct ulp_process *p, struct ulp_applied_patch *ap)
{
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		uint64_t prev;
		int ret;

		if (!fs->above)
			continue;
		prev = fs->below ? fs->below->new_addr : fs->above->prologue.tramp_addr;
		ret = ulp_mem_write_u64(p, fs->above->slot + ULP_SLOT_PREV_PTR_OFF, prev);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Write the unpatching dispatch of every slot for generation gen; no thread runs it yet. */
int ulp_unpatch_dispatch_write(struct ulp_target *t, struct ulp_process *p,
			       struct ulp_applied_patch *ap, unsigned char gen)
{
	ULP_FOR_EACH_FUNC(ap, fs)
	{
		uint8_t d[ULP_SLOT_DISPATCH_LEN];
		int ret;

		ulp_dispatch_build(d, ULP_SLOT_UNPATCH_OFF, t->tls_offset, gen,
				   t->self_check_entry != 0);
		ret = ulp_mem_write(p, fs->slot + ULP_SLOT_UNPATCH_OFF, d, sizeof(d));
		if (ret < 0)
			return ret;
	}
	return 0;
}

struct ulp_range_list {
	struct ulp_addr_range *r;
	size_t n, cap;
};

static int ulp_range_add(struct ulp_range_list *l, uint64_t start, uint64_t len)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct ulp_addr_range *g = realloc(l->r, cap * sizeof(*g));

		if (!g)
			return ulp_errorf(-ENOMEM, "out of memory");
		l->r = g;
		l->cap = cap;
	}
	l->r[l->n++] = (struct ulp_addr_range){ start, start + (len ? len : 1) };
	return 0;
}

/*
 * A version's slot code: a thread in a dispatch or at the steady entry has
 * chosen its version already.
 */
static int ulp_range_add_slot(struct ulp_range_list *l, const struct ulp_applied_func *fs)
{
	int ret = ulp_range_add(l, fs->slot, ULP_SLOT_TRAMP_OFF);

	if (ret == 0)
		ret = ulp_range_add(l, fs->slot + ULP_SLOT_UNPATCH_OFF, ULP_SLOT_DISPATCH_LEN);
	return ret;
}

int ulp_busy_ranges(struct ulp_applied_patch *ap, bool patching, struct ulp_addr_range **out,
		    size_t *nr)
{
	struct ulp_range_list l = { 0 };
	int ret = 0;

	ULP_FOR_EACH_FUNC(ap, fs)
	{
		if (patching) {
			/*
			 * the old versions, wherever a thread can be running
			 * them: the original, the trampolines leading into it,
			 * the versions of the patches below
			 */
			ret = ulp_range_add(&l, fs->old_addr, fs->old_size);
			for (const struct ulp_applied_func *b = fs; b && ret == 0; b = b->below) {
				ret = ulp_range_add(&l, b->prologue.tramp_addr,
						    b->prologue.tramp_len);
				if (ret == 0)
					ret = ulp_range_add_slot(&l, b);
				if (ret == 0 && b != fs)
					ret = ulp_range_add(&l, b->new_addr, b->new_size);
			}
		} else {
			ret = ulp_range_add(&l, fs->new_addr, fs->new_size);
			if (ret == 0)
				ret = ulp_range_add_slot(&l, fs);
			/* a no-op's version is the original itself */
			if (ret == 0 && fs->nop)
				ret = ulp_range_add(&l, fs->old_addr, fs->old_size);
		}
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		free(l.r);
		return ret;
	}
	*out = l.r ? l.r : calloc(1, sizeof(*l.r));
	*nr = l.n;
	return *out ? 0 : ulp_errorf(-ENOMEM, "out of memory");
}
