#!/bin/sh
# make_foreign.sh IN OUT: copy the ELF file IN to OUT with e_machine set to
# EM_AARCH64 (183): a valid-looking patch for the wrong architecture.
set -eu
cp "$1" "$2.tmp"
# e_machine is the little-endian 16-bit field at offset 18 of the ELF header.
printf '\267\000' | dd of="$2.tmp" bs=1 seek=18 count=2 conv=notrunc status=none
mv "$2.tmp" "$2"
