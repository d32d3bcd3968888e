/* SPDX-License-Identifier: MIT */
/*
 * Small readers of ELF data that the patch reader (patch_file.c) and the
 * symbol resolver (symbols.c) both need, so that the rules they apply (which
 * section, which note is the build-id, how a build-id is spelled) are the
 * same in both places.
 */
#ifndef ULP_ELF_READ_H
#define ULP_ELF_READ_H

#include <gelf.h>
#include <stddef.h>

/* Build-ids are 20 bytes (sha1) in practice; notes larger than this are not read. */
#define ULP_BUILD_ID_MAX 64

/* The first section of the given type, its header in *shdr; NULL if none. */
Elf_Scn *ulp_elf_find_section(Elf *elf, GElf_Word type, GElf_Shdr *shdr);

/* A build-id's bytes as the lowercase hex string ulp compares and shows. */
int ulp_elf_build_id_hex(const unsigned char *bits, size_t len, char **out);

/*
 * The NT_GNU_BUILD_ID among the raw notes of one PT_NOTE segment (in the
 * host's byte order, align 4 or 8 as its p_align says), as hex in *out;
 * *out is NULL when there is none.  The notes may come from a file or from
 * a process's memory, so nothing in them is trusted.
 */
int ulp_elf_notes_build_id(const void *notes, size_t len, size_t align, char **out);

/* The NT_GNU_BUILD_ID of an ELF image, from its PT_NOTE segments (*out NULL if none). */
int ulp_elf_build_id(Elf *elf, char **out);
/* The same for the file at path: 0, or -errno / -ENOEXEC. */
int ulp_elf_file_build_id(const char *path, char **out);

#endif
