/* SPDX-License-Identifier: MIT */
/*
 * Reading a patch descriptor from the patch's ELF file (see patch_file.h).
 *
 * The file is never loaded or executed: its PT_LOAD segments are copied into
 * a buffer at their p_vaddr, the dynamic relocations that matter for data
 * (pointers inside the patch) are applied with load base 0, and the
 * descriptor is then read out of that buffer with memcpy.  The buffer stands
 * for "the patch as it would look if loaded at address 0", so every pointer
 * read from it is a vaddr of the file.  Nothing read from the file is
 * trusted: every pointer is checked against the buffer before use.
 */
#include "patch_file.h"

#include "elf_read.h"
#include "error.h"

#include <ulp/patch.h>

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A patch is a small shared object.  Refusing absurd layouts keeps a crafted
 * file from making us allocate gigabytes (memsz is not backed by the file).
 */
#define ULP_PATCH_IMAGE_MAX (256UL << 20)

struct patch_image {
	const char *path; /* for messages */
	Elf *elf;
	unsigned char *buf; /* the patch laid out at base 0 */
	size_t size;
};

static int malformed(const struct patch_image *img, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int malformed(const struct patch_image *img, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ulp_errorf(-ENOEXEC, "%s: malformed patch: %s", img->path, msg);
}

static int elf_failure(const struct patch_image *img, const char *what)
{
	return ulp_errorf(-ENOEXEC, "%s: malformed patch: %s: %s", img->path, what, elf_errmsg(-1));
}

/* Is [vaddr, vaddr + len) inside the image?  vaddr 0 is NULL, never valid. */
static bool image_has(const struct patch_image *img, uint64_t vaddr, uint64_t len)
{
	return vaddr != 0 && vaddr < img->size && len <= img->size - vaddr;
}

static int image_read(const struct patch_image *img, uint64_t vaddr, void *dst, size_t len,
		      const char *what)
{
	if (!image_has(img, vaddr, len))
		return malformed(img, "%s (0x%llx) points outside the patch image", what,
				 (unsigned long long)vaddr);
	memcpy(dst, img->buf + vaddr, len);
	return 0;
}

/*
 * Entry i of a descriptor array at base into dst (len bytes, the entry's
 * size); fmt and what follows name the entry in messages.  The caller stops
 * at the array's terminating entry; an array without one runs into the end
 * of the image, where image_read() refuses the entry.
 */
static int read_entry(const struct patch_image *img, uint64_t base, size_t i, void *dst, size_t len,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int read_entry(const struct patch_image *img, uint64_t base, size_t i, void *dst, size_t len,
		      const char *fmt, ...)
{
	char what[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return image_read(img, base + i * len, dst, len, what);
}

/* A copy of the NUL-terminated string at vaddr; vaddr 0 gives NULL. */
static int image_strdup(const struct patch_image *img, uint64_t vaddr, const char *what, char **out)
{
	const unsigned char *nul;

	*out = NULL;
	if (!vaddr)
		return 0;
	if (!image_has(img, vaddr, 1))
		return malformed(img, "%s (0x%llx) points outside the patch image", what,
				 (unsigned long long)vaddr);
	nul = memchr(img->buf + vaddr, '\0', img->size - vaddr);
	if (!nul)
		return malformed(img, "%s (0x%llx) is not NUL-terminated", what,
				 (unsigned long long)vaddr);
	*out = strdup((const char *)img->buf + vaddr);
	if (!*out)
		return ulp_errorf(-ENOMEM, "%s: out of memory", img->path);
	return 0;
}

/* Grow *arr (of element size elsz) so that index n fits. */
static int grow(const struct patch_image *img, void **arr, size_t *cap, size_t n, size_t elsz)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 4;
	p = realloc(*arr, ncap * elsz);
	if (!p)
		return ulp_errorf(-ENOMEM, "%s: out of memory", img->path);
	memset((char *)p + *cap * elsz, 0, (ncap - *cap) * elsz);
	*arr = p;
	*cap = ncap;
	return 0;
}

static int check_header(struct patch_image *img)
{
	GElf_Ehdr ehdr;

	if (elf_kind(img->elf) != ELF_K_ELF)
		return ulp_errorf(-ENOEXEC, "%s: not an ELF file", img->path);
	if (!gelf_getehdr(img->elf, &ehdr))
		return ulp_errorf(-ENOEXEC, "%s: not an ELF file (%s)", img->path, elf_errmsg(-1));
	if (ehdr.e_ident[EI_CLASS] != ELFCLASS64)
		return ulp_errorf(-ENOEXEC,
				  "%s: wrong architecture (%s ELF machine %u, expected x86-64)",
				  img->path,
				  ehdr.e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "unknown-class",
				  ehdr.e_machine);
	if (ehdr.e_machine != EM_X86_64 || ehdr.e_ident[EI_DATA] != ELFDATA2LSB)
		return ulp_errorf(-ENOEXEC,
				  "%s: wrong architecture (ELF machine %u, expected x86-64)",
				  img->path, ehdr.e_machine);
	if (ehdr.e_type != ET_DYN)
		return ulp_errorf(-ENOEXEC, "%s: not a shared object (ELF type %u)", img->path,
				  ehdr.e_type);
	return 0;
}

/* Copy the PT_LOAD segments to their vaddrs in a zeroed buffer. */
static int layout_segments(struct patch_image *img)
{
	const unsigned char *file;
	size_t file_size, nr_phdrs, i;
	uint64_t end = 0;
	GElf_Phdr ph;

	file = (const unsigned char *)elf_rawfile(img->elf, &file_size);
	if (!file)
		return elf_failure(img, "cannot read the file");
	if (elf_getphdrnum(img->elf, &nr_phdrs))
		return elf_failure(img, "bad program headers");

	for (i = 0; i < nr_phdrs; i++) {
		if (!gelf_getphdr(img->elf, i, &ph))
			return elf_failure(img, "bad program header");
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_memsz > ULP_PATCH_IMAGE_MAX ||
		    ph.p_vaddr > ULP_PATCH_IMAGE_MAX - ph.p_memsz)
			return malformed(img, "loadable segment %zu is too large or misplaced", i);
		if (ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset)
			return malformed(img,
					 "loadable segment %zu lies beyond the end of the file", i);
		if (ph.p_vaddr + ph.p_memsz > end)
			end = ph.p_vaddr + ph.p_memsz;
	}
	if (!end)
		return malformed(img, "no loadable segments");

	img->buf = calloc(1, end);
	if (!img->buf)
		return ulp_errorf(-ENOMEM, "%s: out of memory", img->path);
	img->size = end;

	for (i = 0; i < nr_phdrs; i++) {
		if (!gelf_getphdr(img->elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		memcpy(img->buf + ph.p_vaddr, file + ph.p_offset, ph.p_filesz);
	}
	return 0;
}

static int apply_rela_section(struct patch_image *img, Elf_Scn *scn, const GElf_Shdr *shdr)
{
	Elf_Data *data, *symdata = NULL;
	size_t i, nr_relas, nr_syms = 0;
	Elf_Scn *symscn;
	GElf_Shdr symshdr;

	data = elf_getdata(scn, NULL);
	if (!data)
		return elf_failure(img, "cannot read relocations");
	if (!shdr->sh_entsize)
		return malformed(img, "relocation section with entry size 0");
	nr_relas = shdr->sh_size / shdr->sh_entsize;

	if (shdr->sh_link) {
		symscn = elf_getscn(img->elf, shdr->sh_link);
		if (!symscn || !gelf_getshdr(symscn, &symshdr) || !symshdr.sh_entsize ||
		    !(symdata = elf_getdata(symscn, NULL)))
			return elf_failure(img, "cannot read the symbols of a relocation section");
		nr_syms = symshdr.sh_size / symshdr.sh_entsize;
	}

	for (i = 0; i < nr_relas; i++) {
		size_t symidx;
		uint64_t value;
		GElf_Rela rela;
		GElf_Sym sym;

		if (!gelf_getrela(data, i, &rela))
			return elf_failure(img, "bad relocation");
		symidx = GELF_R_SYM(rela.r_info);

		switch (GELF_R_TYPE(rela.r_info)) {
		case R_X86_64_RELATIVE:
			value = rela.r_addend;
			break;
		case R_X86_64_64:
		case R_X86_64_GLOB_DAT:
		case R_X86_64_JUMP_SLOT:
			if (!symidx) {
				value = rela.r_addend;
				break;
			}
			if (symidx >= nr_syms || !gelf_getsym(symdata, symidx, &sym))
				return malformed(img, "relocation %zu names a bad symbol", i);
			/*
			 * Symbols of other objects (ulp_log, libc...) are only
			 * known once the patch is loaded in a target: 0 here.
			 */
			if (sym.st_shndx == SHN_UNDEF)
				value = 0;
			else
				value = sym.st_value + rela.r_addend;
			break;
		default:
			/* TLS, IRELATIVE, ...: nothing a descriptor points through. */
			continue;
		}
		if (!image_has(img, rela.r_offset, sizeof(value)))
			return malformed(img, "relocation %zu at 0x%llx lies outside the image", i,
					 (unsigned long long)rela.r_offset);
		memcpy(img->buf + rela.r_offset, &value, sizeof(value));
	}
	return 0;
}

static int apply_relocations(struct patch_image *img)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	int err;

	/* Allocated RELA sections are the dynamic ones (.rela.dyn, .rela.plt). */
	while ((scn = elf_nextscn(img->elf, scn))) {
		if (!gelf_getshdr(scn, &shdr))
			return elf_failure(img, "bad section header");
		if (shdr.sh_type != SHT_RELA || !(shdr.sh_flags & SHF_ALLOC))
			continue;
		err = apply_rela_section(img, scn, &shdr);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Look a defined symbol up by name (want_name) or by value (want_name NULL),
 * in the symbol table section of the given type.
 */
static bool lookup_symbol(struct patch_image *img, GElf_Word type, const char *want_name,
			  uint64_t want_value, GElf_Sym *out, const char **name_out)
{
	Elf_Data *data;
	GElf_Shdr shdr;
	Elf_Scn *scn;
	size_t i, n;

	scn = ulp_elf_find_section(img->elf, type, &shdr);
	if (!scn || !shdr.sh_entsize || !(data = elf_getdata(scn, NULL)))
		return false;
	n = shdr.sh_size / shdr.sh_entsize;
	for (i = 1; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF)
			continue;
		if (want_name) {
			name = elf_strptr(img->elf, shdr.sh_link, sym.st_name);
			if (!name || strcmp(name, want_name))
				continue;
		} else if (sym.st_value != want_value || !sym.st_size) {
			continue;
		}
		*out = sym;
		if (name_out)
			*name_out = elf_strptr(img->elf, shdr.sh_link, sym.st_name);
		return true;
	}
	return false;
}

/*
 * Size and name of the function at vaddr (0 and NULL if unknown): .symtab
 * knows static functions too.
 */
static int function_symbol(struct patch_image *img, uint64_t vaddr, uint64_t *size, char **name)
{
	const char *n = NULL;
	GElf_Sym sym;

	*size = 0;
	*name = NULL;
	if (!lookup_symbol(img, SHT_SYMTAB, NULL, vaddr, &sym, &n) &&
	    !lookup_symbol(img, SHT_DYNSYM, NULL, vaddr, &sym, &n))
		return 0;
	*size = sym.st_size;
	if (n && n[0] && !(*name = strdup(n)))
		return ulp_errorf(-ENOMEM, "%s: out of memory", img->path);
	return 0;
}

/* The patch's own NT_GNU_BUILD_ID, from its PT_NOTE segments. */
static int read_build_id(struct patch_image *img, char **out)
{
	int ret = ulp_elf_build_id(img->elf, out);

	if (ret == -ENOEXEC)
		return elf_failure(img, "bad program headers");
	if (ret < 0)
		return ulp_errorf(-ENOMEM, "%s: out of memory", img->path);
	return 0;
}

/* A build-id a patch pins an object to: hex digits, stored lowercase. */
static int check_pinned_build_id(struct patch_image *img, char *id, const char *what)
{
	size_t len = strlen(id), i;

	if (!len || len % 2 || len > 2 * ULP_BUILD_ID_MAX)
		return malformed(img, "%s \"%s\" is not a hex build-id", what, id);
	for (i = 0; i < len; i++) {
		char c = id[i];

		if (c >= 'A' && c <= 'F')
			id[i] = c - 'A' + 'a';
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return malformed(img, "%s \"%s\" is not a hex build-id", what, id);
	}
	return 0;
}

/* "main" and NULL both name the main program; keep NULL only. */
static void normalize_object_name(char **name)
{
	if (*name && !strcmp(*name, "main")) {
		free(*name);
		*name = NULL;
	}
}

static int code_pointer(struct patch_image *img, const void *ptr, const char *what, uint64_t *out)
{
	uint64_t vaddr = (uint64_t)(uintptr_t)ptr;

	*out = vaddr;
	if (vaddr && !image_has(img, vaddr, 1))
		return malformed(img, "%s (0x%llx) points outside the patch image", what,
				 (unsigned long long)vaddr);
	return 0;
}

static int read_funcs(struct patch_image *img, uint64_t base, size_t obj_index,
		      struct ulp_patch_object_info *oi)
{
	size_t cap = 0;
	char what[96];
	int err;

	if (!base)
		return 0;
	for (size_t i = 0;; i++) {
		struct ulp_patch_func_info *fi;
		uint64_t desc = base + i * sizeof(struct ulp_func);
		struct ulp_func f;

		err = read_entry(img, base, i, &f, sizeof(f), "objs[%zu].funcs[%zu]", obj_index, i);
		if (err)
			return err;
		if (!f.old_name && !f.new_func)
			return 0;

		err = grow(img, (void **)&oi->funcs, &cap, oi->nr_funcs, sizeof(*oi->funcs));
		if (err)
			return err;
		fi = &oi->funcs[oi->nr_funcs++];
		fi->desc = desc;
		fi->old_sympos = f.old_sympos;

		snprintf(what, sizeof(what), "objs[%zu].funcs[%zu].old_name", obj_index, i);
		err = image_strdup(img, (uintptr_t)f.old_name, what, &fi->old_name);
		if (err)
			return err;
		if (!fi->old_name || !fi->old_name[0])
			return malformed(img, "objs[%zu].funcs[%zu] has no old_name", obj_index, i);

		snprintf(what, sizeof(what), "objs[%zu].funcs[%zu].new_func ('%s')", obj_index, i,
			 fi->old_name);
		err = code_pointer(img, f.new_func, what, &fi->new_func);
		if (err)
			return err;
		if (!fi->new_func)
			return malformed(img, "objs[%zu].funcs[%zu] ('%s') has no new_func",
					 obj_index, i, fi->old_name);
		err = function_symbol(img, fi->new_func, &fi->new_size, &fi->new_name);
		if (err)
			return err;
	}
}

/* The callbacks of objs[obj_index]: code of the patch, or 0 for none. */
static int read_callbacks(struct patch_image *img, const struct ulp_callbacks *cb, size_t obj_index,
			  struct ulp_patch_object_info *oi)
{
	const struct {
		const char *name;
		const void *ptr;
		uint64_t *out;
	} fns[] = {
		{ "pre_patch", (const void *)cb->pre_patch, &oi->pre_patch },
		{ "post_patch", (const void *)cb->post_patch, &oi->post_patch },
		{ "pre_unpatch", (const void *)cb->pre_unpatch, &oi->pre_unpatch },
		{ "post_unpatch", (const void *)cb->post_unpatch, &oi->post_unpatch },
	};
	char what[96];
	int err;

	for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
		snprintf(what, sizeof(what), "objs[%zu].callbacks.%s", obj_index, fns[k].name);
		err = code_pointer(img, fns[k].ptr, what, fns[k].out);
		if (err)
			return err;
	}
	return 0;
}

static int read_objects(struct patch_image *img, uint64_t base, struct ulp_patch_info *info)
{
	size_t cap = 0;
	char what[96];
	int err;

	if (!base)
		return malformed(img, "the patch has no objects");
	for (size_t i = 0;; i++) {
		uint64_t desc = base + i * sizeof(struct ulp_object);
		struct ulp_patch_object_info *oi;
		struct ulp_object o;

		err = read_entry(img, base, i, &o, sizeof(o), "objs[%zu]", i);
		if (err)
			return err;
		if (!o.name && !o.funcs)
			break;

		err = grow(img, (void **)&info->objs, &cap, info->nr_objs, sizeof(*info->objs));
		if (err)
			return err;
		oi = &info->objs[info->nr_objs++];
		oi->desc = desc;

		snprintf(what, sizeof(what), "objs[%zu].name", i);
		err = image_strdup(img, (uintptr_t)o.name, what, &oi->name);
		if (err)
			return err;
		if (oi->name && !oi->name[0])
			return malformed(img, "objs[%zu] has an empty name", i);
		normalize_object_name(&oi->name);

		snprintf(what, sizeof(what), "objs[%zu].build_id", i);
		err = image_strdup(img, (uintptr_t)o.build_id, what, &oi->build_id);
		if (!err && oi->build_id)
			err = check_pinned_build_id(img, oi->build_id, what);
		if (err)
			return err;

		err = read_callbacks(img, &o.callbacks, i, oi);
		if (err)
			return err;

		err = read_funcs(img, (uintptr_t)o.funcs, i, oi);
		if (err)
			return err;
	}
	if (!info->nr_objs)
		return malformed(img, "the patch has no objects");
	return 0;
}

static int read_states(struct patch_image *img, uint64_t base, struct ulp_patch_info *info)
{
	size_t cap = 0;
	int err;

	if (!base)
		return 0;
	for (size_t i = 0;; i++) {
		struct ulp_state s;

		err = read_entry(img, base, i, &s, sizeof(s), "states[%zu]", i);
		if (err)
			return err;
		if (!s.id)
			return 0;
		err = grow(img, (void **)&info->states, &cap, info->nr_states,
			   sizeof(*info->states));
		if (err)
			return err;
		info->states[info->nr_states].id = s.id;
		info->states[info->nr_states].version = s.version;
		info->nr_states++;
	}
}

static int read_symrefs(struct patch_image *img, uint64_t base, struct ulp_patch_info *info)
{
	size_t cap = 0;
	char what[64];
	int err;

	if (!base)
		return 0;
	for (size_t i = 0;; i++) {
		struct ulp_patch_symref_info *ri;
		struct ulp_symbol_ref r;

		err = read_entry(img, base, i, &r, sizeof(r), "symbols[%zu]", i);
		if (err)
			return err;
		if (!r.name)
			return 0;

		err = grow(img, (void **)&info->symrefs, &cap, info->nr_symrefs,
			   sizeof(*info->symrefs));
		if (err)
			return err;
		ri = &info->symrefs[info->nr_symrefs++];
		ri->sympos = r.sympos;
		ri->addr_slot = (uintptr_t)r.addr;

		snprintf(what, sizeof(what), "symbols[%zu].name", i);
		err = image_strdup(img, (uintptr_t)r.name, what, &ri->name);
		if (err)
			return err;
		if (!ri->name[0])
			return malformed(img, "symbols[%zu] has an empty name", i);
		snprintf(what, sizeof(what), "symbols[%zu].object", i);
		err = image_strdup(img, (uintptr_t)r.object, what, &ri->object);
		if (err)
			return err;
		normalize_object_name(&ri->object);
		/* The slot is written in the target: it must be patch data. */
		if (!image_has(img, ri->addr_slot, sizeof(void *)))
			return malformed(
				img,
				"symbols[%zu] ('%s').addr (0x%llx) points outside the patch image",
				i, ri->name, (unsigned long long)ri->addr_slot);
	}
}

static int read_descriptor(struct patch_image *img, struct ulp_patch_info *info)
{
	struct ulp_patch p;
	GElf_Sym sym;
	int err;

	if (!lookup_symbol(img, SHT_DYNSYM, ULP_PATCH_SYMBOL, 0, &sym, NULL) &&
	    !lookup_symbol(img, SHT_SYMTAB, ULP_PATCH_SYMBOL, 0, &sym, NULL))
		return ulp_errorf(-ENOEXEC, "%s is not a ulp patch: no patch descriptor (%s)",
				  img->path, ULP_PATCH_SYMBOL);
	info->desc = sym.st_value;

	/* abi_version and struct_size first: they say how to read the rest. */
	memset(&p, 0, sizeof(p));
	err = image_read(img, info->desc, &p, offsetof(struct ulp_patch, name), ULP_PATCH_SYMBOL);
	if (err)
		return err;
	if (p.abi_version != ULP_ABI_VERSION)
		return ulp_errorf(
			-EPROTO,
			"%s: patch ABI version %u is not supported (this ulp reads version %d)",
			img->path, p.abi_version, ULP_ABI_VERSION);
	/*
	 * Fields are only ever appended: a smaller struct_size comes from an
	 * older build (missing fields read as 0), a larger one from a newer
	 * build whose extra fields this version does not know.
	 */
	if (p.struct_size < offsetof(struct ulp_patch, objs) + sizeof(p.objs))
		return malformed(img, "struct_size %u is too small", p.struct_size);
	err = image_read(img, info->desc, &p, p.struct_size < sizeof(p) ? p.struct_size : sizeof(p),
			 ULP_PATCH_SYMBOL);
	if (err)
		return err;

	err = image_strdup(img, (uintptr_t)p.name, "name", &info->name);
	if (err)
		return err;
	if (!info->name || !info->name[0])
		return malformed(img, "the patch has no name");
	if (p.struct_size > offsetof(struct ulp_patch, replace)) {
		unsigned char replace;

		/* a byte from the file: any value, not only what a bool may hold */
		memcpy(&replace, (const char *)&p + offsetof(struct ulp_patch, replace), 1);
		info->replace = replace != 0;
	}

	err = read_objects(img, (uintptr_t)p.objs, info);
	if (!err)
		err = read_states(img, (uintptr_t)p.states, info);
	if (!err)
		err = read_symrefs(img, (uintptr_t)p.symbols, info);
	return err;
}

int ulp_patch_info_read_fd(int fd, const char *display_name, struct ulp_patch_info **out)
{
	struct patch_image img = { .path = display_name };
	struct ulp_patch_info *info;
	struct stat st;
	int err;

	*out = NULL;
	if (fstat(fd, &st))
		return ulp_errorf(-errno, "%s: %s", display_name, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return ulp_errorf(-EISDIR, "%s: %s", display_name, strerror(EISDIR));

	elf_version(EV_CURRENT);
	img.elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!img.elf)
		return ulp_errorf(-ENOEXEC, "%s: not an ELF file (%s)", display_name,
				  elf_errmsg(-1));

	info = calloc(1, sizeof(*info));
	if (!info) {
		err = ulp_errorf(-ENOMEM, "%s: out of memory", display_name);
		goto out;
	}
	err = check_header(&img);
	if (!err)
		err = layout_segments(&img);
	if (!err)
		err = apply_relocations(&img);
	if (!err)
		err = read_descriptor(&img, info);
	if (!err)
		err = read_build_id(&img, &info->build_id);
out:
	if (err)
		ulp_patch_info_free(info);
	else
		*out = info;
	free(img.buf);
	elf_end(img.elf);
	return err;
}

int ulp_patch_info_read(const char *path, struct ulp_patch_info **out)
{
	int fd, err;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ulp_errorf(-errno, "%s: %s", path, strerror(errno));
	err = ulp_patch_info_read_fd(fd, path, out);
	close(fd);
	return err;
}

void ulp_patch_info_free(struct ulp_patch_info *info)
{
	size_t i, j;

	if (!info)
		return;
	for (i = 0; i < info->nr_objs; i++) {
		struct ulp_patch_object_info *oi = &info->objs[i];

		for (j = 0; j < oi->nr_funcs; j++) {
			free(oi->funcs[j].old_name);
			free(oi->funcs[j].new_name);
		}
		free(oi->funcs);
		free(oi->name);
		free(oi->build_id);
	}
	free(info->objs);
	free(info->states);
	for (i = 0; i < info->nr_symrefs; i++) {
		free(info->symrefs[i].object);
		free(info->symrefs[i].name);
	}
	free(info->symrefs);
	free(info->name);
	free(info->build_id);
	free(info);
}
