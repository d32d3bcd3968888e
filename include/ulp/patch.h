/* SPDX-License-Identifier: MIT */
/*
 * <ulp/patch.h> - what a patch author writes against.
 *
 * A patch is an ELF shared object that defines one `struct ulp_patch`
 * through ULP_PATCH().  ulp reads that descriptor from the file (so a patch
 * can be checked without a target) and again from the target once loaded.
 * The layout is ABI: fields are only ever appended, and `abi_version`
 * changes when a field's meaning does.
 */
#ifndef ULP_PATCH_H
#define ULP_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ULP_ABI_VERSION 1

/* The name of the descriptor symbol every patch exports. */
#define ULP_PATCH_SYMBOL "ulp_patch_descriptor"

struct ulp_object;

struct ulp_callbacks {
	/* Return 0, or a negative errno to refuse the patch for this object. */
	int (*pre_patch)(struct ulp_object *obj);
	void (*post_patch)(struct ulp_object *obj);
	void (*pre_unpatch)(struct ulp_object *obj);
	void (*post_unpatch)(struct ulp_object *obj);
};

struct ulp_func {
	/* Name of the function to replace in the object. */
	const char *old_name;
	/* The replacement; same prototype as the old function. */
	void *new_func;
	/*
	 * 1-based position among local symbols of that name in the object's
	 * symbol table, for static functions present more than once.  0 means
	 * "the name must be unique".
	 */
	unsigned long old_sympos;
	/* Filled by ulp once the patch is loaded in a target. */
	void *old_func;
};

/* What an object is doing while its callbacks run (ulp_object_describe()). */
enum ulp_object_state {
	ULP_OBJECT_LIVE = 0,
	ULP_OBJECT_COMING = 1,
	ULP_OBJECT_GOING = 2,
};

struct ulp_object {
	/* DT_SONAME of a shared object (its file name if it has none); NULL = main program. */
	const char *name;
	struct ulp_func *funcs;
	struct ulp_callbacks callbacks;
	/* Optional: lowercase hex GNU build-id the object must have. */
	const char *build_id;
	/* Filled by ulp. */
	int state;
	bool patched;
};

struct ulp_state {
	unsigned long id;
	unsigned int version;
	void *data;
};

/*
 * A reference to a (possibly static) symbol of the target, filled at load:
 * *addr receives its address; for a thread-local variable, a handle to
 * pass to ulp_tls_addr(), which gives the calling thread's copy.
 */
struct ulp_symbol_ref {
	const char *object; /* "main" or NULL for the main program, else a SONAME */
	const char *name;
	unsigned long sympos;
	void **addr;
};

struct ulp_patch {
	unsigned int abi_version;
	unsigned int struct_size;
	const char *name;
	struct ulp_object *objs;
	struct ulp_state *states;
	bool replace;
	struct ulp_symbol_ref *symbols;
};

/*
 * ULP_PATCH("name", .objs = objs, ...) defines the patch descriptor.  The
 * object must not be `static`: ulp finds it by its exported name.
 */
#define ULP_PATCH(patch_name, ...)                                                                 \
	__attribute__((used, visibility("default"))) struct ulp_patch ulp_patch_descriptor = {     \
		.abi_version = ULP_ABI_VERSION,                                                    \
		.struct_size = sizeof(struct ulp_patch),                                           \
		.name = (patch_name),                                                              \
		__VA_ARGS__                                                                        \
	}

/*
 * The patch's printk: ulp_log(fmt, ...) adds one line to the target's event
 * log, as "<patch>: <text>", ordered with ulp's own lines.  Provided by
 * libulp-rt.so, which is loaded into every patched process before any
 * patch.  The macro passes the patch's own descriptor, so the line is
 * attributed right even from a tail call.
 */
void ulp_log_patch(const struct ulp_patch *patch, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Older form: the patch is found from the caller's address. */
void ulp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern struct ulp_patch ulp_patch_descriptor;
#define ulp_log(...) ulp_log_patch(&ulp_patch_descriptor, __VA_ARGS__)

/* "main", or "libx.so -> [ULP_OBJECT_LIVE] Normal state" and the like. */
const char *ulp_object_describe(const struct ulp_object *obj);

/*
 * System states (the kernel's klp_get_state / klp_get_prev_state): the
 * state id patch declares, or NULL; and, during a transition, the same
 * state as the newest patch installed before the one in transition declared
 * it, or NULL (also outside a transition).
 */
/* The calling thread's copy of a thread-local variable of the target (see ulp_symbol_ref). */
void *ulp_tls_addr(const void *handle);

struct ulp_state *ulp_get_state(struct ulp_patch *patch, unsigned long id);
struct ulp_state *ulp_get_prev_state(unsigned long id);

/*
 * Shadow variables, as the kernel's klp_shadow_*: size bytes (zeroed, then
 * given to ctor) attached to any address obj under id, kept by
 * libulp-rt.so across patches.  alloc refuses (NULL, and a line in the
 * event log) when <obj, id> exists; get_or_alloc returns the existing one.
 * A ctor returning non-zero makes the allocation fail.  ctor and dtor run
 * under the shadow variables' lock: they must not use shadow variables.
 */
typedef int (*ulp_shadow_ctor_t)(void *obj, void *shadow_data, void *ctor_data);
typedef void (*ulp_shadow_dtor_t)(void *obj, void *shadow_data);

void *ulp_shadow_get(void *obj, unsigned long id);
void *ulp_shadow_alloc(void *obj, unsigned long id, size_t size, ulp_shadow_ctor_t ctor,
		       void *ctor_data);
void *ulp_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, ulp_shadow_ctor_t ctor,
			      void *ctor_data);
void ulp_shadow_free(void *obj, unsigned long id, ulp_shadow_dtor_t dtor);
void ulp_shadow_free_all(unsigned long id, ulp_shadow_dtor_t dtor);

#ifdef __cplusplus
}
#endif

#endif /* ULP_PATCH_H */
