/* SPDX-License-Identifier: MIT */
#include "elf_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Elf_Scn *ulp_elf_find_section(Elf *elf, GElf_Word type, GElf_Shdr *shdr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, shdr) && shdr->sh_type == type)
			return scn;
	}
	return NULL;
}

int ulp_elf_build_id_hex(const unsigned char *bits, size_t len, char **out)
{
	static const char digits[] = "0123456789abcdef";
	char *s;

	s = malloc(2 * len + 1);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		s[2 * i] = digits[bits[i] >> 4];
		s[2 * i + 1] = digits[bits[i] & 0xf];
	}
	s[2 * len] = '\0';
	*out = s;
	return 0;
}

/*
 * Parsed by hand rather than with gelf_getnote() because the symbol resolver
 * reads notes out of the target's memory, where there is no Elf handle.
 */
int ulp_elf_notes_build_id(const void *notes, size_t len, size_t align, char **out)
{
	const unsigned char *buf = notes;
	size_t off = 0;

	*out = NULL;
	while (off + 12 <= len) {
		uint32_t namesz, descsz, type;
		size_t name_off, desc_off;

		memcpy(&namesz, buf + off, 4);
		memcpy(&descsz, buf + off + 4, 4);
		memcpy(&type, buf + off + 8, 4);
		name_off = off + 12;
		/* Both bounded by len, so the sums below cannot wrap. */
		if (namesz > len || descsz > len)
			break;
		desc_off = name_off + ((namesz + align - 1) & ~(align - 1));
		if (desc_off > len || descsz > len - desc_off)
			break;
		if (type == NT_GNU_BUILD_ID && namesz == sizeof("GNU") &&
		    !memcmp(buf + name_off, "GNU", sizeof("GNU")) && descsz &&
		    descsz <= ULP_BUILD_ID_MAX)
			return ulp_elf_build_id_hex(buf + desc_off, descsz, out);
		off = desc_off + ((descsz + align - 1) & ~(align - 1));
	}
	return 0;
}

int ulp_elf_build_id(Elf *elf, char **out)
{
	size_t nr_phdrs;
	GElf_Phdr ph;

	*out = NULL;
	if (elf_getphdrnum(elf, &nr_phdrs))
		return -ENOEXEC;
	for (size_t i = 0; i < nr_phdrs; i++) {
		Elf_Data *data;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_NOTE)
			continue;
		/* raw bytes: x86-64 files are little-endian, as the host */
		data = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz, ELF_T_BYTE);
		if (!data)
			continue;
		if (ulp_elf_notes_build_id(data->d_buf, data->d_size, ph.p_align == 8 ? 8 : 4, out))
			return -ENOMEM;
		if (*out)
			return 0;
	}
	return 0;
}

int ulp_elf_file_build_id(const char *path, char **out)
{
	/* a path from a client: never an open that blocks (a FIFO) or acts (a device) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), ret;
	struct stat st;
	Elf *elf;

	*out = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOEXEC;
	}
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	ret = elf && elf_kind(elf) == ELF_K_ELF ? ulp_elf_build_id(elf, out) : -ENOEXEC;
	elf_end(elf);
	close(fd);
	return ret;
}
