/* SPDX-License-Identifier: MIT */
/*
 * Symbols of a running process, per object (the main program and each
 * shared object it has mapped), through elfutils' libdwfl: .symtab where
 * present, .dynsym otherwise, separate debuginfo when installed.  Objects are
 * named like patch objects name them: "main" for the executable, else the
 * DT_SONAME (the file name when there is none).
 */
#ifndef ULP_SYMBOLS_H
#define ULP_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ulp_symbols;

struct ulp_object_map {
	const char *name; /* "main" or SONAME/file name; owned by ulp_symbols */
	const char *path; /* file path as mapped in the target */
	uint64_t start, end; /* lowest address mapped, and one past the highest */
	uint64_t bias; /* load bias: runtime address - link-time address */
	const char *build_id; /* lowercase hex or NULL; as mapped in the target when readable */
	bool is_main;
};

struct ulp_symbol {
	uint64_t addr; /* runtime address in the target */
	uint64_t size;
	int type; /* STT_FUNC, STT_OBJECT, STT_TLS, ... */
	bool local; /* STB_LOCAL */
};

/* Report every object mapped by pid.  -ESRCH if there is no such process. */
int ulp_symbols_open(pid_t pid, struct ulp_symbols **out);
void ulp_symbols_close(struct ulp_symbols *syms);

/* Objects in address order. */
size_t ulp_symbols_nr_objects(const struct ulp_symbols *syms);
const struct ulp_object_map *ulp_symbols_object(const struct ulp_symbols *syms, size_t i);

/* By name: NULL or "main" for the main program.  NULL if not mapped. */
const struct ulp_object_map *ulp_symbols_find_object(const struct ulp_symbols *syms,
						     const char *name);

/* The object containing addr, or NULL. */
const struct ulp_object_map *ulp_symbols_object_at(const struct ulp_symbols *syms, uint64_t addr);

/*
 * Resolve `name` in `object` (NULL/"main" = main program).  sympos 0 means
 * the name must be unique in that object; sympos N picks the Nth occurrence
 * in symbol-table order (the kernel's sympos).  Aliases at one address count
 * once.  A name defined in several symbol versions (realpath@GLIBC_2.2.5,
 * realpath@@GLIBC_2.3) means its default version with sympos 0, as for the
 * dynamic linker; sympos reaches the others.  Errors, each with a message
 * naming object and symbol:
 *   -ENOENT   no such object mapped, or no such symbol
 *   -ENOTUNIQ several candidates and sympos 0: the message lists each
 *             candidate's address and the sympos that selects it
 *   -ERANGE   sympos larger than the number of candidates
 *   -ESTALE   the object's file is not the one the process has mapped (its
 *             build-id differs: replaced on disk, or another mount
 *             namespace's file), so its symbols cannot be trusted
 */
int ulp_symbols_resolve(struct ulp_symbols *syms, const char *object, const char *name,
			unsigned long sympos, struct ulp_symbol *out);

/*
 * The address of C library function name (in libc.so.6), for ulp's own
 * calls into the process: with several definitions by that name, the
 * first (sympos 1) instead of -ENOTUNIQ.
 */
int ulp_symbols_libc_func(struct ulp_symbols *syms, const char *name, uint64_t *addr);

/*
 * Name of the symbol containing addr and its start, for diagnostics
 * (e.g. "sleeping in function foo").  NULL if none.
 */
const char *ulp_symbols_name_at(struct ulp_symbols *syms, uint64_t addr, uint64_t *start);

/*
 * The unused end of the last page of one of an object's executable
 * segments: mapped executable, reached by no code of the object.  ulp
 * places the few instructions it needs before anything of its own is
 * loaded there.  -ENOENT when the object is not mapped or its file is not
 * the one mapped; -ENOSPC when no segment leaves room.
 */
int ulp_symbols_code_tail(const struct ulp_symbols *syms, const char *object, uint64_t *addr,
			  size_t *len);
#endif
