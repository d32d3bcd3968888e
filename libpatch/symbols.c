/* SPDX-License-Identifier: MIT */
/*
 * Symbols of a running process through elfutils' libdwfl (see symbols.h).
 *
 * libdwfl reports one module per file mapped in /proc/PID/maps (plus the
 * vDSO), finds each module's ELF file, its separate debuginfo and symbol
 * table, and biases symbol values to runtime addresses.  This file adds what
 * ulp needs on top: objects named the way patches name them, the kernel's
 * sympos rules, and a check that the file read from disk is the one that is
 * mapped (same build-id), since a file replaced on disk after the process
 * started would give addresses for code the process does not run.
 */
#include "symbols.h"

#include "elf_cache.h"
#include "elf_read.h"
#include "error.h"
#include "unwind_tables.h"

#include <dirent.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define NOTE_SEGMENT_MAX 4096
#define MAPPED_PHDRS_MAX 64
/* Candidates listed in an ambiguity message; the rest are counted. */
#define AMBIGUOUS_LISTED 8

struct sym_object {
	struct ulp_object_map map; /* first: ulp_symbols_object() hands out &map */
	Dwfl_Module *mod;
	Elf *elf; /* NULL when the file could not be found or read */
	char *name, *path, *build_id;
	/* Why the symbols of this object cannot be used, or NULL. */
	char *unusable;
};

/* An entry of /proc/PID/map_files: one mapping, "start-end" in hex. */
struct map_file {
	uint64_t start;
	char name[40];
};

/* An executable file mapping of /proc/PID/maps. */
struct exec_range {
	uint64_t start, end;
	char *path;
};

/* Where a file's first mapping starts, and which file it is. */
struct file_start {
	uint64_t start;
	struct ulp_file_id id;
};

struct ulp_symbols {
	pid_t pid;
	Dwfl *dwfl;
	struct sym_object *objs;
	size_t nr, cap;
	int err; /* first error while collecting modules */
	struct exec_range *exec;
	size_t nr_exec;
	struct map_file *map_files;
	size_t nr_map_files;
	bool map_files_listed, map_files_denied;
	struct file_start *files; /* every file mapping whose offset is 0 */
	size_t nr_files;
	char *exe; /* the link /proc/PID/exe, or NULL */
	bool exe_read;
};

struct candidate {
	uint64_t addr;
	GElf_Sym sym;
};

/* The version bit that marks a non-default ("name@VERSION") definition. */
#define VERSYM_HIDDEN 0x8000

static char *debuginfo_path; /* NULL: libdwfl's default search path */

/* Open path for libdwfl, which records `name` as the module's file name. */
static int open_for_dwfl(const char *path, const char *name, char **file_name)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	*file_name = strdup(name);
	if (!*file_name) {
		close(fd);
		return -1;
	}
	return fd;
}

static void list_map_files(struct ulp_symbols *syms)
{
	struct dirent *de;
	char path[64];
	DIR *dir;

	syms->map_files_listed = true;
	snprintf(path, sizeof(path), "/proc/%d/map_files", (int)syms->pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		struct map_file *mf;
		char *end;
		void *p;

		if (strlen(de->d_name) >= sizeof(mf->name))
			continue;
		if (syms->nr_map_files % 64 == 0) {
			p = realloc(syms->map_files, (syms->nr_map_files + 64) * sizeof(*mf));
			if (!p)
				break;
			syms->map_files = p;
		}
		mf = &syms->map_files[syms->nr_map_files];
		mf->start = strtoull(de->d_name, &end, 16);
		if (*end != '-')
			continue;
		strcpy(mf->name, de->d_name);
		syms->nr_map_files++;
	}
	closedir(dir);
}

/*
 * The very file the process has mapped at base, whatever became of its path
 * since (replaced by a package upgrade, deleted, another mount namespace):
 * /proc/PID/map_files/START-END.  Opening those takes CAP_SYS_ADMIN (or
 * CAP_CHECKPOINT_RESTORE), which ulpd normally has.
 */
static int open_mapped_file(struct ulp_symbols *syms, const char *module_name, Dwarf_Addr base,
			    char **file_name)
{
	char path[128];
	int fd;

	if (!syms->map_files_listed)
		list_map_files(syms);
	if (syms->map_files_denied)
		return -1;
	for (size_t i = 0; i < syms->nr_map_files; i++) {
		if (syms->map_files[i].start != base)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%s", (int)syms->pid,
			 syms->map_files[i].name);
		fd = open_for_dwfl(path, module_name, file_name);
		if (fd < 0 && (errno == EPERM || errno == EACCES))
			syms->map_files_denied = true; /* no use trying the others */
		return fd;
	}
	return -1;
}

/* Is module_name the file /proc/PID/exe links to?  The link is read once. */
static bool is_main_exe(struct ulp_symbols *syms, const char *module_name)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	if (!syms->exe_read) {
		syms->exe_read = true;
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)syms->pid);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			syms->exe = strdup(target);
		}
	}
	return syms->exe && !strcmp(syms->exe, module_name);
}

static const struct ulp_file_id *mapped_file_at(const struct ulp_symbols *syms, uint64_t start)
{
	for (size_t i = 0; i < syms->nr_files; i++) {
		if (syms->files[i].start == start)
			return &syms->files[i].id;
	}
	return NULL;
}

/*
 * The cached ELF of the file mapped at base, or a new entry for it read
 * from fd; -1 (libdwfl then reads fd itself) when it cannot be cached.
 */
static int cached_elf(struct ulp_symbols *syms, const char *module_name, Dwarf_Addr base, int fd,
		      Elf **elfp)
{
	const struct ulp_file_id *id = mapped_file_at(syms, base);

	/* A memfd (a patch, a runtime loaded from one) is one process's own. */
	if (!id || !strncmp(module_name, "/memfd:", 7))
		return -1;
	if (fd < 0) {
		*elfp = ulp_elf_cache_get(id);
		return *elfp ? 0 : -1;
	}
	return ulp_elf_cache_add(id, fd, elfp) < 0 ? -1 : 0;
}

/*
 * Which file to read a module's symbols from.  In order of preference: the
 * mapped file itself (map_files, privileged); for a deleted file, the
 * executable through /proc/PID/exe (any caller allowed to read the
 * process's maps); else the path in the process's own root, so that a
 * process in a container gets its files, not ours.  Failing those, the
 * standard callback opens the path as we see it, and reads the vDSO from
 * process memory.  Whatever is opened, its build-id is later checked
 * against the one mapped in the process (set_build_id()).
 */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *module_name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	struct ulp_symbols *syms = *userdata;
	static const char deleted[] = " (deleted)";
	size_t len = strlen(module_name);
	char path[PATH_MAX];
	int fd;

	if (syms && module_name[0] == '/') {
		/* libdwfl takes the reference and the name; -1: no descriptor. */
		if (!cached_elf(syms, module_name, base, -1, elfp)) {
			*file_name = strdup(module_name);
			if (*file_name)
				return -1;
			elf_end(*elfp);
			*elfp = NULL;
		}
		fd = open_mapped_file(syms, module_name, base, file_name);
		if (fd < 0 && len > strlen(deleted) &&
		    !strcmp(module_name + len - strlen(deleted), deleted)) {
			snprintf(path, sizeof(path), "/proc/%d/exe", (int)syms->pid);
			if (is_main_exe(syms, module_name))
				fd = open_for_dwfl(path, module_name, file_name);
		} else if (fd < 0 && snprintf(path, sizeof(path), "/proc/%d/root%s", (int)syms->pid,
					      module_name) < (int)sizeof(path)) {
			fd = open_for_dwfl(path, path, file_name);
		}
		/* The very file mapped (same inode): what later processes get. */
		if (fd >= 0 && !cached_elf(syms, module_name, base, fd, elfp)) {
			close(fd);
			return -1;
		}
		if (fd >= 0)
			return fd;
	}
	return dwfl_linux_proc_find_elf(mod, userdata, module_name, base, file_name, elfp);
}

static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static int read_target(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	char path[64];
	ssize_t n;
	int fd;

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return 0;
	/* process_vm_readv refuses what /proc/PID/mem may still allow. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, (off_t)addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * The GNU build-id of what the process has mapped at start, read from its
 * memory alone: the ELF header there, its program headers, its PT_NOTE
 * segments.  Nothing is taken from the file found on disk, which is what
 * this is checked against.  NULL when it cannot be read (no permission, no
 * note, no ELF header mapped).
 */
static char *mapped_build_id(pid_t pid, uint64_t start)
{
	/*
	 * The first page holds the header, the program headers and, in
	 * practice, the notes: one read instead of one for each.
	 */
	unsigned char page[4096], notes[NOTE_SEGMENT_MAX];
	uint64_t min_vaddr = UINT64_MAX, bias;
	long page_size = sysconf(_SC_PAGESIZE);
	Elf64_Phdr ph[MAPPED_PHDRS_MAX];
	Elf64_Ehdr eh;
	size_t n;

	if (read_target(pid, start, page, sizeof(page)))
		return NULL;
	memcpy(&eh, page, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || !eh.e_phnum || eh.e_phnum > MAPPED_PHDRS_MAX)
		return NULL;
	n = eh.e_phnum;
	if (eh.e_phoff <= sizeof(page) && n * sizeof(ph[0]) <= sizeof(page) - eh.e_phoff)
		memcpy(ph, page + eh.e_phoff, n * sizeof(ph[0]));
	else if (read_target(pid, start + eh.e_phoff, ph, n * sizeof(ph[0])))
		return NULL;
	/* The lowest PT_LOAD is mapped at start, from its page boundary. */
	for (size_t i = 0; i < n; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr < min_vaddr)
			min_vaddr = ph[i].p_vaddr;
	}
	if (min_vaddr == UINT64_MAX)
		return NULL;
	bias = start - (min_vaddr & ~(uint64_t)(page_size - 1));

	for (size_t i = 0; i < n; i++) {
		size_t align = ph[i].p_align == 8 ? 8 : 4;
		uint64_t at = bias + ph[i].p_vaddr;
		const void *src = notes;
		char *id;

		if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > sizeof(notes))
			continue;
		if (at >= start && at - start <= sizeof(page) &&
		    ph[i].p_filesz <= sizeof(page) - (at - start))
			src = page + (at - start);
		else if (read_target(pid, at, notes, ph[i].p_filesz))
			continue;
		/* Out of memory reads as "unreadable": the file's build-id is used then. */
		if (!ulp_elf_notes_build_id(src, ph[i].p_filesz, align, &id) && id)
			return id;
	}
	return NULL;
}

/* DT_SONAME of the ELF, from its SHT_DYNAMIC section; NULL if none. */
static const char *elf_soname(Elf *elf)
{
	Elf_Data *data;
	GElf_Shdr shdr;
	Elf_Scn *scn;

	scn = ulp_elf_find_section(elf, SHT_DYNAMIC, &shdr);
	if (!scn || !shdr.sh_entsize || !(data = elf_getdata(scn, NULL)))
		return NULL;
	for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; i++) {
		GElf_Dyn dyn;

		if (!gelf_getdyn(data, i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_SONAME)
			return elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
	}
	return NULL;
}

/*
 * The object's build-id, and whether the file libdwfl found is the one the
 * process has mapped: a file replaced on disk (or a path that means another
 * file in our mount namespace than in the target's) would give addresses
 * of code the process does not run.
 */
static int set_build_id(struct ulp_symbols *syms, struct sym_object *obj)
{
	const unsigned char *bits;
	GElf_Addr note_vaddr;
	char *file_id = NULL, *mapped_id;
	int len;

	len = dwfl_module_build_id(obj->mod, &bits, &note_vaddr);
	if (len > 0 && ulp_elf_build_id_hex(bits, len, &file_id))
		return -ENOMEM;
	mapped_id = mapped_build_id(syms->pid, obj->map.start);

	if (mapped_id && (!file_id || strcmp(mapped_id, file_id)) &&
	    asprintf(&obj->unusable,
		     "the file %s is not the one process %d has mapped "
		     "(build-id %s on disk, %s in memory)",
		     obj->path, (int)syms->pid, file_id ? file_id : "none", mapped_id) < 0) {
		obj->unusable = NULL;
		free(file_id);
		free(mapped_id);
		return -ENOMEM;
	}
	/* The target's own copy is the truth; the file's when memory is unreadable. */
	if (mapped_id) {
		obj->build_id = mapped_id;
		free(file_id);
	} else {
		obj->build_id = file_id;
	}
	obj->map.build_id = obj->build_id;
	return 0;
}

/* The whole of /proc/PID/maps, NUL-terminated, in *out; its length in *len. */
static int read_maps_text(pid_t pid, char **out, size_t *len)
{
	size_t cap = 16384, n = 0;
	char path[64], *buf = malloc(cap);
	int fd;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t got;

		if (cap - n < 4096) {
			char *p = realloc(buf, cap * 2);

			if (!p) {
				close(fd);
				free(buf);
				return -ENOMEM;
			}
			buf = p;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int err = -errno;

			close(fd);
			free(buf);
			return err;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int add_exec_range(struct ulp_symbols *syms, size_t *cap, const struct ulp_unw_map *m,
			  const char *file)
{
	if (syms->nr_exec == *cap) {
		size_t ncap = *cap ? 2 * *cap : 32;
		void *p = realloc(syms->exec, ncap * sizeof(*syms->exec));

		if (!p)
			return -ENOMEM;
		syms->exec = p;
		*cap = ncap;
	}
	syms->exec[syms->nr_exec].path = strdup(file);
	if (!syms->exec[syms->nr_exec].path)
		return -ENOMEM;
	syms->exec[syms->nr_exec].start = m->start;
	syms->exec[syms->nr_exec].end = m->end;
	syms->nr_exec++;
	return 0;
}

static int add_file_start(struct ulp_symbols *syms, size_t *cap, const struct ulp_unw_map *m)
{
	if (syms->nr_files == *cap) {
		size_t ncap = *cap ? 2 * *cap : 32;
		void *p = realloc(syms->files, ncap * sizeof(*syms->files));

		if (!p)
			return -ENOMEM;
		syms->files = p;
		*cap = ncap;
	}
	/* the same spelling as the ELF cache's: major and minor apart */
	syms->files[syms->nr_files].start = m->start;
	syms->files[syms->nr_files].id.dev_major = (unsigned int)(m->dev >> 32);
	syms->files[syms->nr_files].id.dev_minor = (unsigned int)m->dev;
	syms->files[syms->nr_files].id.ino = m->ino;
	syms->nr_files++;
	return 0;
}

/*
 * Report the process's modules to libdwfl from one read of its maps, which
 * also gives the executable file mappings (libdwfl reports every mapped
 * file as a module, but only those with code mapped are loaded objects: a
 * library the process merely mmap()s as data, a debugger's, a linker's or
 * ulpd's own, would otherwise pass for a second copy of it), the identity
 * of each file for the ELF cache, and the vDSO.  Returns 0, -errno from
 * reading the maps, or 1 when libdwfl refused the report.
 */
static int report_modules(struct ulp_symbols *syms)
{
	size_t len = 0, exec_cap = 0, files_cap = 0;
	uint64_t vdso_start = 0, vdso_end = 0;
	char *text, *line, *next;
	struct ulp_unw_map m;
	const char *file;
	int ret;
	FILE *f;

	ret = read_maps_text(syms->pid, &text, &len);
	if (ret < 0)
		return ret;
	f = fmemopen(text, len ? len : 1, "r");
	if (!f) {
		free(text);
		return -ENOMEM;
	}
	ret = len ? dwfl_linux_proc_maps_report(syms->dwfl, f) : 0;
	fclose(f);
	if (ret) {
		free(text);
		return 1;
	}
	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (ulp_maps_parse_line(line, &m, &file) < 0)
			continue;
		if (m.flags & ULP_MAP_VDSO) {
			vdso_start = m.start;
			vdso_end = m.end;
		}
		if (file[0] != '/')
			continue;
		if (m.offset == 0 && (ret = add_file_start(syms, &files_cap, &m)) < 0)
			break;
		if ((m.flags & ULP_MAP_X) && (ret = add_exec_range(syms, &exec_cap, &m, file)) < 0)
			break;
	}
	free(text);
	if (ret < 0)
		return ret;
	/* Named so that libdwfl's own callback reads its image from memory. */
	if (vdso_start) {
		char name[32];

		snprintf(name, sizeof(name), "[vdso: %d]", (int)syms->pid);
		if (!dwfl_report_module(syms->dwfl, name, vdso_start, vdso_end))
			return 1;
	}
	return 0;
}

static bool has_code_mapped(const struct ulp_symbols *syms, const char *path, uint64_t low,
			    uint64_t high)
{
	for (size_t i = 0; i < syms->nr_exec; i++) {
		const struct exec_range *r = &syms->exec[i];

		if (r->start >= low && r->end <= high && !strcmp(r->path, path))
			return true;
	}
	return false;
}

/* Record a module; errors are kept in syms->err (callbacks cannot fail nicely). */
static int collect_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
			  void *arg)
{
	struct ulp_symbols *syms = arg;
	struct sym_object *obj;
	Dwarf_Addr low, high;
	GElf_Addr bias = 0;
	Elf *elf;

	(void)start;
	*userdata = syms; /* for find_elf */

	if (syms->nr == syms->cap) {
		size_t ncap = syms->cap ? 2 * syms->cap : 32;
		void *p = realloc(syms->objs, ncap * sizeof(*syms->objs));

		if (!p) {
			syms->err = -ENOMEM;
			return DWARF_CB_ABORT;
		}
		syms->objs = p;
		syms->cap = ncap;
	}

	dwfl_module_info(mod, NULL, &low, &high, NULL, NULL, NULL, NULL);
	if (name[0] == '/' && !has_code_mapped(syms, name, low, high))
		return DWARF_CB_OK;
	elf = dwfl_module_getelf(mod, &bias);
	/* Pseudo-modules without an image ([vdso] unreadable) are of no use. */
	if (!elf && name[0] != '/')
		return DWARF_CB_OK;

	obj = &syms->objs[syms->nr++];
	memset(obj, 0, sizeof(*obj));
	obj->mod = mod;
	obj->elf = elf;
	obj->path = strdup(name);
	if (!obj->path) {
		syms->err = -ENOMEM;
		return DWARF_CB_ABORT;
	}
	obj->map.path = obj->path;
	obj->map.start = low;
	obj->map.end = high;
	if (!elf) {
		if (asprintf(&obj->unusable, "cannot read the ELF file %s: %s", name,
			     dwfl_errmsg(-1)) < 0) {
			obj->unusable = NULL;
			syms->err = -ENOMEM;
			return DWARF_CB_ABORT;
		}
		return DWARF_CB_OK;
	}
	obj->map.bias = bias;
	syms->err = set_build_id(syms, obj);
	return syms->err ? DWARF_CB_ABORT : DWARF_CB_OK;
}

static int cmp_objects(const void *a, const void *b)
{
	const struct sym_object *x = a, *y = b;

	return x->map.start < y->map.start ? -1 : x->map.start > y->map.start;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Find the main program (see below) and give every object its name. */
static int name_objects(struct ulp_symbols *syms)
{
	struct sym_object *main_obj = NULL;

	/*
	 * The main program is the module mapped from /proc/PID/exe's file:
	 * e_type cannot tell (a PIE is ET_DYN like any library).  Both paths
	 * come from the kernel's d_path, so they compare as strings, " (deleted)"
	 * included.
	 */
	for (size_t i = 0; i < syms->nr && !main_obj; i++) {
		if (is_main_exe(syms, syms->objs[i].path))
			main_obj = &syms->objs[i];
	}
	/* Without access to the link, the one ET_EXEC module, if any. */
	for (size_t i = 0; i < syms->nr && !main_obj; i++) {
		GElf_Ehdr ehdr;

		if (syms->objs[i].elf && !syms->objs[i].unusable &&
		    gelf_getehdr(syms->objs[i].elf, &ehdr) && ehdr.e_type == ET_EXEC)
			main_obj = &syms->objs[i];
	}

	for (size_t i = 0; i < syms->nr; i++) {
		struct sym_object *obj = &syms->objs[i];
		/* Not from a file that is not the mapped one. */
		const char *soname = obj->elf && !obj->unusable ? elf_soname(obj->elf) : NULL;

		if (obj == main_obj) {
			obj->map.is_main = true;
			obj->name = strdup("main");
		} else {
			obj->name = strdup(soname ? soname : base_name(obj->path));
		}
		if (!obj->name)
			return -ENOMEM;
		obj->map.name = obj->name;
	}
	return 0;
}

/*
 * Nothing of the process's memory can be read: say why.  A zombie, a kernel
 * thread or a process in exit still has its /proc entry, but its auxv and
 * maps read as ESRCH or empty.
 */
static int process_gone(pid_t pid)
{
	char path[32], stat[512], *paren;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return ulp_errorf(-ESRCH, "no such process: %d", (int)pid);
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* "pid (comm) S ...": the state follows the last parenthesis. */
	paren = strrchr(stat, ')');
	if (paren && (paren[2] == 'Z' || paren[2] == 'X'))
		return ulp_errorf(-ESRCH, "process %d has exited (it is a zombie)", (int)pid);
	return ulp_errorf(-ESRCH,
			  "process %d has no user-space memory (a kernel thread, or exiting)",
			  (int)pid);
}

int ulp_symbols_open(pid_t pid, struct ulp_symbols **out)
{
	struct ulp_symbols *syms;
	int err, r;

	*out = NULL;
	if (pid <= 0)
		return ulp_errorf(-ESRCH, "no such process: %d", (int)pid);

	syms = calloc(1, sizeof(*syms));
	if (!syms)
		return ulp_errorf(-ENOMEM, "out of memory");
	syms->pid = pid;
	syms->dwfl = dwfl_begin(&dwfl_callbacks);
	if (!syms->dwfl) {
		err = ulp_errorf(-ENOMEM, "cannot start libdwfl: %s", dwfl_errmsg(-1));
		goto fail;
	}

	dwfl_report_begin(syms->dwfl);
	r = report_modules(syms);
	if (dwfl_report_end(syms->dwfl, NULL, NULL) && !r)
		r = 1;
	if (r == -ENOENT || r == -ESRCH) {
		err = process_gone(pid);
		goto fail;
	}
	if (r < 0) {
		err = ulp_errorf(r, "cannot read the memory map of process %d: %s", (int)pid,
				 strerror(-r));
		goto fail;
	}
	if (r > 0) {
		err = ulp_errorf(-EIO, "cannot read the memory map of process %d: %s", (int)pid,
				 dwfl_errmsg(-1));
		goto fail;
	}

	dwfl_getmodules(syms->dwfl, collect_module, syms, 0);
	if (syms->err) {
		err = ulp_errorf(syms->err, "cannot list the objects of process %d: %s", (int)pid,
				 strerror(-syms->err));
		goto fail;
	}
	/* An exiting process may have dropped its mappings already. */
	if (!syms->nr) {
		err = process_gone(pid);
		goto fail;
	}
	qsort(syms->objs, syms->nr, sizeof(*syms->objs), cmp_objects);
	err = name_objects(syms);
	if (err) {
		err = ulp_errorf(err, "out of memory");
		goto fail;
	}
	*out = syms;
	return 0;

fail:
	ulp_symbols_close(syms);
	return err;
}

void ulp_symbols_close(struct ulp_symbols *syms)
{
	if (!syms)
		return;
	for (size_t i = 0; i < syms->nr; i++) {
		free(syms->objs[i].name);
		free(syms->objs[i].path);
		free(syms->objs[i].build_id);
		free(syms->objs[i].unusable);
	}
	free(syms->objs);
	free(syms->map_files);
	free(syms->files);
	free(syms->exe);
	for (size_t i = 0; i < syms->nr_exec; i++)
		free(syms->exec[i].path);
	free(syms->exec);
	if (syms->dwfl)
		dwfl_end(syms->dwfl);
	free(syms);
}

size_t ulp_symbols_nr_objects(const struct ulp_symbols *syms)
{
	return syms->nr;
}

const struct ulp_object_map *ulp_symbols_object(const struct ulp_symbols *syms, size_t i)
{
	return i < syms->nr ? &syms->objs[i].map : NULL;
}

static struct sym_object *find_object(const struct ulp_symbols *syms, const char *name)
{
	bool want_main = !name || !strcmp(name, "main");

	for (size_t i = 0; i < syms->nr; i++) {
		struct sym_object *obj = &syms->objs[i];

		if (want_main ? obj->map.is_main : !strcmp(obj->name, name))
			return obj;
	}
	return NULL;
}

const struct ulp_object_map *ulp_symbols_find_object(const struct ulp_symbols *syms,
						     const char *name)
{
	struct sym_object *obj = find_object(syms, name);

	return obj ? &obj->map : NULL;
}

const struct ulp_object_map *ulp_symbols_object_at(const struct ulp_symbols *syms, uint64_t addr)
{
	for (size_t i = 0; i < syms->nr; i++) {
		if (addr >= syms->objs[i].map.start && addr < syms->objs[i].map.end)
			return &syms->objs[i].map;
	}
	return NULL;
}

/* Symbols that can be patched or referenced: defined code and data. */
static bool usable_symbol(const GElf_Sym *sym)
{
	switch (GELF_ST_TYPE(sym->st_info)) {
	case STT_SECTION:
	case STT_FILE:
		return false;
	default:
		return sym->st_shndx != SHN_UNDEF;
	}
}

/*
 * A versioned definition in .symtab reads "name@@VERSION" (the default) or
 * "name@VERSION"; the default one answers to the plain name, as for ld.so.
 */
static bool default_version_of(const char *symname, const char *name, size_t len)
{
	return !strncmp(symname, name, len) && symname[len] == '@' && symname[len + 1] == '@';
}

static int add_candidate(struct candidate **cands, size_t *nr, size_t *cap, uint64_t addr,
			 const GElf_Sym *sym)
{
	/* An alias at the same address is the same function: counted once. */
	for (size_t i = 0; i < *nr; i++) {
		if ((*cands)[i].addr == addr)
			return 0;
	}
	if (*nr == *cap) {
		size_t ncap = *cap ? 2 * *cap : 4;
		void *p = realloc(*cands, ncap * sizeof(**cands));

		if (!p)
			return -ENOMEM;
		*cands = p;
		*cap = ncap;
	}
	(*cands)[*nr].addr = addr;
	(*cands)[*nr].sym = *sym;
	(*nr)++;
	return 0;
}

static int collect_candidates(struct sym_object *obj, const char *name, bool versioned,
			      struct candidate **cands, size_t *nr, size_t *cap)
{
	size_t len = strlen(name);
	int n = dwfl_module_getsymtab(obj->mod);

	for (int i = 0; i < n; i++) {
		const char *symname;
		GElf_Addr addr;
		GElf_Sym sym;
		int err;

		symname = dwfl_module_getsym_info(obj->mod, i, &sym, &addr, NULL, NULL, NULL);
		if (!symname || !usable_symbol(&sym))
			continue;
		if (versioned ? !default_version_of(symname, name, len) : strcmp(symname, name))
			continue;
		/* A TLS symbol's value is an offset in the TLS block, not an address. */
		if (GELF_ST_TYPE(sym.st_info) == STT_TLS)
			addr = sym.st_value;
		err = add_candidate(cands, nr, cap, addr, &sym);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Is the definition of name at addr only an old, non-default version in
 * .dynsym (realpath@GLIBC_2.2.5 next to realpath@@GLIBC_2.3)?  Those keep
 * the plain name in .dynsym, with the version in .gnu.version.
 */
static bool only_old_versions(const struct sym_object *obj, const char *name, uint64_t addr)
{
	Elf_Data *syms, *versyms;
	GElf_Shdr shdr, vshdr;
	Elf_Scn *scn, *vscn;
	bool found = false;
	size_t n;

	scn = ulp_elf_find_section(obj->elf, SHT_DYNSYM, &shdr);
	vscn = ulp_elf_find_section(obj->elf, SHT_GNU_versym, &vshdr);
	if (!scn || !vscn || !shdr.sh_entsize || !(syms = elf_getdata(scn, NULL)) ||
	    !(versyms = elf_getdata(vscn, NULL)))
		return false;
	n = shdr.sh_size / shdr.sh_entsize;
	for (size_t i = 1; i < n; i++) {
		GElf_Versym vs;
		const char *symname;
		GElf_Sym sym;

		if (!gelf_getsym(syms, i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    sym.st_value + obj->map.bias != addr)
			continue;
		symname = elf_strptr(obj->elf, shdr.sh_link, sym.st_name);
		if (!symname || strcmp(symname, name) || !gelf_getversym(versyms, i, &vs))
			continue;
		if (!(vs & VERSYM_HIDDEN))
			return false;
		found = true;
	}
	return found;
}

/*
 * With sympos 0, a name with several versions means its default version,
 * as for the dynamic linker: the one candidate that is not only an old
 * version, if there is exactly one.
 */
static struct candidate *default_version(const struct sym_object *obj, const char *name,
					 struct candidate *cands, size_t nr)
{
	struct candidate *pick = NULL;

	for (size_t i = 0; i < nr; i++) {
		if (only_old_versions(obj, name, cands[i].addr))
			continue;
		if (pick)
			return NULL;
		pick = &cands[i];
	}
	return pick;
}

static int ambiguous(const char *name, const char *object, const struct candidate *cands, size_t nr)
{
	char list[768];
	size_t used = 0;

	list[0] = '\0';
	for (size_t i = 0; i < nr && i < AMBIGUOUS_LISTED; i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s0x%" PRIx64 " (sympos %zu)",
				 i ? ", " : "", cands[i].addr, i + 1);

		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += n;
	}
	if (nr > AMBIGUOUS_LISTED && used < sizeof(list))
		snprintf(list + used, sizeof(list) - used, ", and %zu more", nr - AMBIGUOUS_LISTED);
	return ulp_errorf(
		-ENOTUNIQ,
		"symbol '%s' is ambiguous in object '%s': %zu candidates: %s; set old_sympos", name,
		object, nr, list);
}

/*
 * Resolved symbols by build-id, name and sympos, relative to the object's
 * load bias: every process of a program maps the same files, and a lookup
 * scans a whole symbol table (apply --exe over many processes).  Only
 * successful lookups; process-wide, never freed (a few entries per patch).
 */
struct sym_cache_entry {
	char *key; /* "BUILDID/NAME/SYMPOS", or "BUILDID@OFFSET" for ulp_symbols_name_at() */
	struct ulp_symbol sym; /* addr relative to the bias */
	char *name; /* ulp_symbols_name_at(): the name (NULL: none there) */
};

/* ulp_symbols_name_at() adds entries up to this many (a long-lived ulpd) */
#define SYM_CACHE_NAMES_MAX 4096

static struct sym_cache_entry *sym_cache;
static size_t sym_cache_nr, sym_cache_cap;

static char *sym_cache_key(const char *build_id, const char *name, unsigned long sympos)
{
	char *key = NULL;

	if (asprintf(&key, "%s/%s/%lu", build_id, name, sympos) < 0)
		return NULL;
	return key;
}

static const struct sym_cache_entry *sym_cache_find(const char *key)
{
	for (size_t i = 0; key && i < sym_cache_nr; i++)
		if (!strcmp(sym_cache[i].key, key))
			return &sym_cache[i];
	return NULL;
}

/* What a symbol's cached value is relative to: a TLS offset is the same in every process. */
static uint64_t sym_cache_bias(const struct ulp_symbol *sym, uint64_t bias)
{
	return sym->type == STT_TLS ? 0 : bias;
}

static void sym_cache_add(char *key, const struct ulp_symbol *sym, uint64_t bias)
{
	if (sym_cache_nr == sym_cache_cap) {
		size_t cap = sym_cache_cap ? 2 * sym_cache_cap : 64;
		struct sym_cache_entry *n = realloc(sym_cache, cap * sizeof(*n));

		if (!n) {
			free(key);
			return;
		}
		sym_cache = n;
		sym_cache_cap = cap;
	}
	sym_cache[sym_cache_nr].key = key;
	sym_cache[sym_cache_nr].sym = *sym;
	sym_cache[sym_cache_nr].sym.addr -= sym_cache_bias(sym, bias);
	sym_cache[sym_cache_nr].name = NULL;
	sym_cache_nr++;
}

static int ulp_symbols_lookup(struct sym_object *obj, const char *objname, const char *name,
			      unsigned long sympos, struct ulp_symbol *out);

int ulp_symbols_resolve(struct ulp_symbols *syms, const char *object, const char *name,
			unsigned long sympos, struct ulp_symbol *out)
{
	const char *objname = object ? object : "main";
	const struct sym_cache_entry *hit;
	struct sym_object *obj;
	char *key = NULL;
	int err;

	obj = find_object(syms, object);
	if (!obj)
		return ulp_errorf(-ENOENT, "object '%s' is not loaded in process %d", objname,
				  (int)syms->pid);
	if (obj->unusable)
		return ulp_errorf(obj->elf ? -ESTALE : -ENOENT, "symbol '%s' of object '%s': %s",
				  name, objname, obj->unusable);
	if (obj->map.build_id)
		key = sym_cache_key(obj->map.build_id, name, sympos);
	hit = sym_cache_find(key);
	if (hit) {
		free(key);
		*out = hit->sym;
		out->addr += sym_cache_bias(out, obj->map.bias);
		return 0;
	}
	err = ulp_symbols_lookup(obj, objname, name, sympos, out);
	if (err == 0 && key)
		sym_cache_add(key, out, obj->map.bias);
	else
		free(key);
	return err;
}

int ulp_symbols_libc_func(struct ulp_symbols *syms, const char *name, uint64_t *addr)
{
	struct ulp_symbol sym;
	int ret = ulp_symbols_resolve(syms, "libc.so.6", name, 0, &sym);

	if (ret == -ENOTUNIQ)
		ret = ulp_symbols_resolve(syms, "libc.so.6", name, 1, &sym);
	if (ret == 0)
		*addr = sym.addr;
	return ret;
}

static int ulp_symbols_lookup(struct sym_object *obj, const char *objname, const char *name,
			      unsigned long sympos, struct ulp_symbol *out)
{
	struct candidate *cands = NULL, *pick = NULL;
	size_t nr = 0, cap = 0;
	int err;

	if (dwfl_module_getsymtab(obj->mod) < 0)
		return ulp_errorf(-ENOENT,
				  "symbol '%s' not found in object '%s': no symbol table (%s)",
				  name, objname, dwfl_errmsg(-1));

	err = collect_candidates(obj, name, false, &cands, &nr, &cap);
	if (!err && !nr && !strchr(name, '@'))
		err = collect_candidates(obj, name, true, &cands, &nr, &cap);
	if (err) {
		err = ulp_errorf(err, "out of memory");
		goto out;
	}

	if (!nr) {
		err = ulp_errorf(-ENOENT, "symbol '%s' not found in object '%s'", name, objname);
	} else if (!sympos && nr > 1 && !(pick = default_version(obj, name, cands, nr))) {
		err = ambiguous(name, objname, cands, nr);
	} else if (sympos > nr) {
		err = ulp_errorf(
			-ERANGE,
			"symbol '%s' in object '%s': sympos %lu is out of range (%zu candidate%s)",
			name, objname, sympos, nr, nr == 1 ? "" : "s");
	} else {
		if (sympos || nr == 1)
			pick = &cands[sympos ? sympos - 1 : 0];
		out->addr = pick->addr;
		out->size = pick->sym.st_size;
		out->type = GELF_ST_TYPE(pick->sym.st_info);
		out->local = GELF_ST_BIND(pick->sym.st_info) == STB_LOCAL;
	}
out:
	free(cands);
	return err;
}

const char *ulp_symbols_name_at(struct ulp_symbols *syms, uint64_t addr, uint64_t *start)
{
	Dwfl_Module *mod = dwfl_addrmodule(syms->dwfl, addr);
	struct sym_object *obj = NULL;
	struct ulp_symbol sym = { 0 };
	const struct sym_cache_entry *hit = NULL;
	const char *name;
	char *key = NULL;
	GElf_Off offset;
	GElf_Sym esym;

	if (!mod)
		return NULL;
	/* Only from objects whose symbols can be trusted (see collect_module()). */
	for (size_t i = 0; i < syms->nr && !obj; i++)
		if (syms->objs[i].mod == mod)
			obj = &syms->objs[i];
	if (!obj || obj->unusable)
		return NULL;
	/* the same return addresses in every process of a program: asked once each */
	if (obj->map.build_id &&
	    asprintf(&key, "%s@%" PRIx64, obj->map.build_id, addr - obj->map.bias) < 0)
		key = NULL;
	hit = sym_cache_find(key);
	if (hit) {
		free(key);
		if (hit->name && start)
			*start = hit->sym.addr + obj->map.bias;
		return hit->name;
	}
	name = dwfl_module_addrinfo(mod, addr, &offset, &esym, NULL, NULL, NULL);
	if (name && start)
		*start = addr - offset;
	if (key && sym_cache_nr >= SYM_CACHE_NAMES_MAX) {
		free(key);
		key = NULL;
	}
	if (key) {
		size_t n = sym_cache_nr;

		sym.addr = addr - offset;
		sym_cache_add(key, &sym, obj->map.bias);
		/* kept for the life of ulpd: the Dwfl's string goes with syms */
		if (sym_cache_nr > n && name) {
			sym_cache[n].name = strdup(name);
			if (sym_cache[n].name)
				name = sym_cache[n].name;
		}
	}
	return name;
}

int ulp_symbols_code_tail(const struct ulp_symbols *syms, const char *object, uint64_t *addr,
			  size_t *len)
{
	const struct sym_object *obj = find_object(syms, object);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), best_end = 0, best_len = 0;
	size_t nr_phdrs;

	/* A file other than the one mapped would place us in live code. */
	if (!obj || !obj->elf || obj->unusable || elf_getphdrnum(obj->elf, &nr_phdrs) < 0)
		return -ENOENT;
	for (size_t i = 0; i < nr_phdrs; i++) {
		GElf_Phdr phdr;
		uint64_t end, page_end;
		bool mapped = false;

		if (!gelf_getphdr(obj->elf, (int)i, &phdr) || phdr.p_type != PT_LOAD ||
		    !(phdr.p_flags & PF_X) || phdr.p_memsz != phdr.p_filesz)
			continue;
		end = obj->map.bias + phdr.p_vaddr + phdr.p_memsz;
		page_end = (end + page - 1) & ~(page - 1);
		for (size_t r = 0; r < syms->nr_exec && !mapped; r++)
			mapped = syms->exec[r].start < page_end && syms->exec[r].end >= page_end &&
				 syms->exec[r].start <= end &&
				 !strcmp(syms->exec[r].path, obj->path);
		if (mapped && page_end - end > best_len) {
			best_end = end;
			best_len = page_end - end;
		}
	}
	if (!best_len)
		return -ENOSPC;
	*addr = best_end;
	*len = best_len;
	return 0;
}
