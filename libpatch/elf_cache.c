/* SPDX-License-Identifier: MIT */
/* ELF files that many processes map, opened and parsed once (see elf_cache.h). */
#include "elf_cache.h"

#include "process.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* A process maps a few dozen files; a fleet of one program, the same ones. */
#define ELF_CACHE_SIZE 64
/* An entry unused this long is dropped, unpinning its file. */
#define ELF_CACHE_IDLE_US (30 * 1000000ull)

struct elf_cache_entry {
	struct ulp_file_id id;
	Elf *elf; /* NULL: a free entry */
	uint64_t used_us;
};

static struct elf_cache_entry elf_cache[ELF_CACHE_SIZE];

static bool same_file(const struct ulp_file_id *a, const struct ulp_file_id *b)
{
	return a->ino == b->ino && a->dev_major == b->dev_major && a->dev_minor == b->dev_minor;
}

static void drop(struct elf_cache_entry *e)
{
	elf_end(e->elf);
	memset(e, 0, sizeof(*e));
}

void ulp_elf_cache_expire(uint64_t now)
{
	for (size_t i = 0; i < ELF_CACHE_SIZE; i++) {
		if (elf_cache[i].elf && now - elf_cache[i].used_us > ELF_CACHE_IDLE_US)
			drop(&elf_cache[i]);
	}
}

Elf *ulp_elf_cache_get(const struct ulp_file_id *id)
{
	uint64_t now = ulp_now_us();

	ulp_elf_cache_expire(now);
	for (size_t i = 0; i < ELF_CACHE_SIZE; i++) {
		struct elf_cache_entry *e = &elf_cache[i];

		if (e->elf && same_file(&e->id, id)) {
			e->used_us = now;
			/* Of the same handle: libelf counts the references. */
			return elf_begin(-1, ELF_C_READ_MMAP, e->elf);
		}
	}
	return NULL;
}

int ulp_elf_cache_add(const struct ulp_file_id *id, int fd, Elf **out)
{
	struct elf_cache_entry *slot = NULL;
	struct stat st;
	Elf *elf;

	*out = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_ino != id->ino || major(st.st_dev) != id->dev_major ||
	    minor(st.st_dev) != id->dev_minor)
		return -ESTALE;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	/*
	 * All of it in memory (mapped, or read if it could not be) and the
	 * descriptor let go, so that the caller closes fd.
	 */
	if (elf_kind(elf) != ELF_K_ELF || elf_cntl(elf, ELF_C_FDREAD) < 0) {
		elf_end(elf);
		return -ENOEXEC;
	}
	for (size_t i = 0; i < ELF_CACHE_SIZE; i++) {
		struct elf_cache_entry *e = &elf_cache[i];

		if (!e->elf || same_file(&e->id, id)) {
			slot = e;
			break;
		}
		if (!slot || e->used_us < slot->used_us)
			slot = e; /* the least recently used, if none is free */
	}
	if (slot->elf)
		drop(slot);
	*out = elf_begin(-1, ELF_C_READ_MMAP, elf);
	if (!*out) {
		elf_end(elf);
		return -ENOMEM;
	}
	slot->id = *id;
	slot->elf = elf;
	slot->used_us = ulp_now_us();
	return 0;
}

void ulp_elf_cache_flush(void)
{
	for (size_t i = 0; i < ELF_CACHE_SIZE; i++) {
		if (elf_cache[i].elf)
			drop(&elf_cache[i]);
	}
}
