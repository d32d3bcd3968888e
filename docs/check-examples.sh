#!/usr/bin/env bash
# usage: check-examples.sh MAN CC NM INCLUDE_DIR SOURCE_DIR
# Compile the patch examples of ulp-patch(7), docs/patch-guide.md and
# README.md against the source tree's <ulp/patch.h>, so the documentation
# follows the header.
set -euo pipefail
man=$1
cc=$2
nm=$3
include=$4
src=$5

work=$(mktemp -d "${TMPDIR:-/tmp}/ulp-doc-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
cflags=(-Wall -Wextra -Werror -O2 -I"$include")

fail()
{
	echo "check-examples: FAIL: $*" >&2
	exit 1
}

build_patch()
{
	local c=$1
	[ -s "$c" ] || fail "no example extracted into $(basename "$c")"
	timeout 60 "$cc" -shared -fPIC "${cflags[@]}" "$c" -o "${c%.c}.so" ||
		fail "$(basename "$c") does not compile"
	"$nm" -D --defined-only "${c%.c}.so" |
		awk '$3 == "ulp_patch_descriptor" { f = 1 } END { exit !f }' ||
		fail "$(basename "$c") does not export ulp_patch_descriptor"
	echo "ok: $(basename "$c")"
}

# ulp-patch(7): the program and the patch of EXAMPLES.
MANWIDTH=200 timeout 30 "$man" -l "$src/docs/ulp-patch.7" 2>/dev/null | awk -v dir="$work" '
	/^       A program with a function to fix/ { m = 1; next }
	/^       The patch, fix.c/ { m = 2; next }
	/^       Build both/ { m = 0 }
	/^[^ ]/ { m = 0 }
	m == 1 && /^           / { print substr($0, 12) > (dir "/man-counter.c") }
	m == 1 && /^$/ { print "" > (dir "/man-counter.c") }
	m == 2 && /^           / { print substr($0, 12) > (dir "/man-fix.c") }
	m == 2 && /^$/ { print "" > (dir "/man-fix.c") }'
[ -s "$work/man-counter.c" ] || fail "no program extracted from ulp-patch.7"
timeout 60 "$cc" -Wall -Wextra -Werror -O0 "$work/man-counter.c" -o "$work/man-counter" ||
	fail "the program of ulp-patch(7) does not compile"
echo "ok: man-counter.c"
build_patch "$work/man-fix.c"

# The first ```c block of README.md and of docs/patch-guide.md.
extract_md()
{
	awk '/^```c$/ && !done { m = 1; next } /^```$/ && m { m = 0; done = 1 } m' "$1"
}
extract_md "$src/README.md" >"$work/readme-fix.c"
build_patch "$work/readme-fix.c"
extract_md "$src/docs/patch-guide.md" >"$work/guide-fix.c"
build_patch "$work/guide-fix.c"
