/* SPDX-License-Identifier: MIT */
/*
 * ELF files that many processes map, opened and parsed once.
 *
 * Every process of a program maps the same executable and libraries, and
 * `ulpctl apply --exe` reads the symbols of each of them: without a cache,
 * every process costs an open through /proc/PID/map_files, an mmap and a
 * parse of each of its files.  An entry is keyed by the device and inode
 * that /proc/PID/maps shows for the mapping, the kernel's own identity of
 * the mapped file: the entry's mmap keeps that inode alive, so no other file
 * can take its number while the entry exists.  Entries not used for a while
 * are dropped, so that a file replaced on disk (a package upgrade) is not
 * kept alive by ulpd for long.
 */
#ifndef ULP_ELF_CACHE_H
#define ULP_ELF_CACHE_H

#include <gelf.h>
#include <stdint.h>

/* The identity of a mapped file as /proc/PID/maps spells it. */
struct ulp_file_id {
	unsigned int dev_major, dev_minor;
	uint64_t ino;
};

/*
 * A new reference (elf_end() it) to the cached ELF of file id, or NULL when
 * it is not cached.
 */
Elf *ulp_elf_cache_get(const struct ulp_file_id *id);

/*
 * Parse the ELF file open on fd (fd stays the caller's), cache it under id
 * and return a new reference to it in *out.  -ESTALE when fd's file is not
 * the file id names (fstat disagrees: another file at that path now, or a
 * filesystem whose mapped inode differs from the opened one, such as
 * overlayfs); -ENOEXEC when it is not an ELF file; -ENOMEM.  On failure
 * *out is NULL and the caller reads the file some other way.
 */
int ulp_elf_cache_add(const struct ulp_file_id *id, int fd, Elf **out);

/*
 * Drop the entries unused for 30 s at time now (ulp_now_us()).  Lookups do
 * it too; a process that makes none for a while calls it on its own, or
 * the last files it read stay mapped.
 */
void ulp_elf_cache_expire(uint64_t now);

/* Drop every entry (their files stay open for references still held). */
void ulp_elf_cache_flush(void);

#endif
