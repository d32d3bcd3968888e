/* SPDX-License-Identifier: MIT */
#include "unwind_tables.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ulp_eh_read_encoded(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t addr,
			uint64_t data_base, uint64_t *out)
{
	size_t size;
	uint64_t v;

	if (enc == ULP_EH_PE_omit)
		return -ENOTSUP;
	switch (enc & 0x0f) {
	case ULP_EH_PE_absptr:
	case ULP_EH_PE_udata8:
	case ULP_EH_PE_sdata8:
		size = 8;
		break;
	case ULP_EH_PE_udata4:
	case ULP_EH_PE_sdata4:
		size = 4;
		break;
	case ULP_EH_PE_udata2:
	case ULP_EH_PE_sdata2:
		size = 2;
		break;
	default:
		return -ENOTSUP;
	}
	if ((size_t)(end - *p) < size)
		return -EINVAL;
	/* Fields are unaligned and little-endian like the target (x86_64). */
	switch (enc & 0x0f) {
	case ULP_EH_PE_udata2: {
		uint16_t x;

		memcpy(&x, *p, 2);
		v = x;
		break;
	}
	case ULP_EH_PE_sdata2: {
		int16_t x;

		memcpy(&x, *p, 2);
		v = (uint64_t)(int64_t)x;
		break;
	}
	case ULP_EH_PE_udata4: {
		uint32_t x;

		memcpy(&x, *p, 4);
		v = x;
		break;
	}
	case ULP_EH_PE_sdata4: {
		int32_t x;

		memcpy(&x, *p, 4);
		v = (uint64_t)(int64_t)x;
		break;
	}
	default:
		memcpy(&v, *p, 8);
		break;
	}
	/* Indirect (0x80) and the text/func-relative forms never occur here. */
	switch (enc & 0xf0) {
	case 0:
		break;
	case ULP_EH_PE_pcrel:
		v += addr;
		break;
	case ULP_EH_PE_datarel:
		v += data_base;
		break;
	default:
		return -ENOTSUP;
	}
	*p += size;
	*out = v;
	return 0;
}

int ulp_ehhdr_parse(const void *buf, size_t len, uint64_t hdr_addr, struct ulp_ehhdr *out)
{
	const uint8_t *b = buf, *p = b + 4, *end = b + len;
	uint8_t version, frame_enc, count_enc, table_enc;
	int ret;

	if (len < 4)
		return -EINVAL;
	version = b[0];
	frame_enc = b[1];
	count_enc = b[2];
	table_enc = b[3];
	if (version != 1)
		return -ENOTSUP;
	if (frame_enc == ULP_EH_PE_omit || count_enc == ULP_EH_PE_omit ||
	    table_enc == ULP_EH_PE_omit)
		return -ENOTSUP; /* no search table: a linear search of .eh_frame */
	/* dwarf_search_unwind_table reads 8-byte (start, fde) int32 pairs. */
	if (table_enc != (ULP_EH_PE_datarel | ULP_EH_PE_sdata4))
		return -ENOTSUP;
	ret = ulp_eh_read_encoded(&p, end, frame_enc, hdr_addr + (uint64_t)(p - b), hdr_addr,
				  &out->eh_frame);
	if (ret == 0)
		ret = ulp_eh_read_encoded(&p, end, count_enc, hdr_addr + (uint64_t)(p - b),
					  hdr_addr, &out->fde_count);
	if (ret < 0)
		return ret;
	/* A count relative to an address means a broken or foreign encoder. */
	if (count_enc & 0xf0)
		return -ENOTSUP;
	if (out->fde_count > (1u << 26))
		return -EINVAL;
	out->table = hdr_addr + (uint64_t)(p - b);
	return 0;
}

int ulp_maps_parse_line(const char *line, struct ulp_unw_map *m, const char **name)
{
	unsigned long long start, end, offset, ino;
	unsigned int major, minor;
	char perms[8];
	int pos = 0;
	const char *path;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset, &major,
		   &minor, &ino, &pos) != 7 ||
	    !pos || start >= end || strlen(perms) < 4)
		return -EINVAL;
	path = line + pos;
	memset(m, 0, sizeof(*m));
	m->start = start;
	m->end = end;
	m->offset = offset;
	m->dev = ((uint64_t)major << 32) | minor;
	m->ino = ino;
	m->obj = -1;
	if (perms[0] == 'r')
		m->flags |= ULP_MAP_R;
	if (perms[1] == 'w')
		m->flags |= ULP_MAP_W;
	if (perms[2] == 'x')
		m->flags |= ULP_MAP_X;
	if (ino)
		m->flags |= ULP_MAP_OBJECT;
	else if (strncmp(path, "[vdso]", 6) == 0)
		m->flags |= ULP_MAP_OBJECT | ULP_MAP_VDSO;
	if (name)
		*name = path;
	return 0;
}

long ulp_maps_find(const struct ulp_unw_map *maps, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	/* First mapping ending after addr; it holds addr if it starts at or before it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (maps[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && maps[lo].start <= addr)
		return (long)lo;
	return -1;
}

long ulp_maps_object_base(const struct ulp_unw_map *maps, size_t n, size_t i)
{
	const struct ulp_unw_map *m;

	if (i >= n || !(maps[i].flags & ULP_MAP_OBJECT))
		return -1;
	m = &maps[i];
	if (m->flags & ULP_MAP_VDSO)
		return (long)i;
	for (size_t j = i + 1; j-- > 0;) {
		const struct ulp_unw_map *b = &maps[j];

		if (b->dev != m->dev || b->ino != m->ino || !(b->flags & ULP_MAP_OBJECT))
			continue;
		if (b->offset == 0)
			return (long)j;
	}
	return -1;
}
