/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of remote unwinding (libpatch/unwind.c), kept apart so
 * they can be tested without a target: decoding an .eh_frame_hdr header,
 * parsing /proc/PID/maps lines and finding the mapping of an address.
 */
#ifndef ULP_UNWIND_TABLES_H
#define ULP_UNWIND_TABLES_H

#include <stddef.h>
#include <stdint.h>

/* Pointer encodings of .eh_frame_hdr (LSB, "DWARF Extensions"). */
#define ULP_EH_PE_absptr 0x00
#define ULP_EH_PE_udata2 0x02
#define ULP_EH_PE_udata4 0x03
#define ULP_EH_PE_udata8 0x04
#define ULP_EH_PE_sdata2 0x0a
#define ULP_EH_PE_sdata4 0x0b
#define ULP_EH_PE_sdata8 0x0c
#define ULP_EH_PE_pcrel 0x10
#define ULP_EH_PE_datarel 0x30
#define ULP_EH_PE_omit 0xff

/* The largest .eh_frame_hdr header: 4 bytes, then two 8-byte fields. */
#define ULP_EHHDR_MAX_HEADER 20

struct ulp_ehhdr {
	uint64_t eh_frame; /* address of .eh_frame */
	uint64_t table; /* address of the sorted (initial location, FDE) table */
	uint64_t fde_count; /* entries in that table */
};

/*
 * Decode one encoded value at *p (at most end), *p being at address addr in
 * the target; datarel is relative to data_base.  Advances *p.  Returns 0,
 * -ENOTSUP for an encoding not handled, -EINVAL if the field is truncated.
 */
int ulp_eh_read_encoded(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t addr,
			uint64_t data_base, uint64_t *out);

/*
 * Decode the header of the .eh_frame_hdr at address hdr_addr in the target,
 * whose first len bytes are in buf.  Returns 0 when it has a binary search
 * table in the one entry format libunwind's dwarf_search_unwind_table
 * reads (datarel|sdata4 pairs), -ENOTSUP when it has none or another
 * format (the caller falls back on a slower lookup), -EINVAL if malformed.
 */
int ulp_ehhdr_parse(const void *buf, size_t len, uint64_t hdr_addr, struct ulp_ehhdr *out);

#define ULP_MAP_R 0x1u
#define ULP_MAP_W 0x2u
#define ULP_MAP_X 0x4u
/* Backed by an ELF object: a file (inode != 0) or the vDSO. */
#define ULP_MAP_OBJECT 0x8u
#define ULP_MAP_VDSO 0x10u

struct ulp_unw_map {
	uint64_t start, end; /* [start, end) */
	uint64_t offset; /* file offset of start */
	uint64_t dev, ino;
	unsigned int flags; /* ULP_MAP_* */
	int obj; /* index of its object in the unwinder's table, or -1 */
};

/*
 * Parse one line of /proc/PID/maps.  Returns 0 or -EINVAL.  If path is not
 * NULL, *path points into line at the mapping's name ("" for none).
 */
int ulp_maps_parse_line(const char *line, struct ulp_unw_map *m, const char **path);

/*
 * Index of the mapping holding addr in maps[0..n), sorted by address and
 * disjoint as /proc/PID/maps lists them, or -1.
 */
long ulp_maps_find(const struct ulp_unw_map *maps, size_t n, uint64_t addr);

/*
 * Index of the mapping at which the ELF object mapped by maps[i] starts:
 * the nearest mapping at or before i of the same file at offset 0 (the
 * vDSO is one mapping).  -1 if there is none (e.g. the file is mapped
 * piecemeal, not by a loader).
 */
long ulp_maps_object_base(const struct ulp_unw_map *maps, size_t n, size_t i);

#endif
