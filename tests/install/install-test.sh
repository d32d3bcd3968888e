#!/usr/bin/env bash
# Install the build tree into a scratch prefix, then build an out-of-tree
# patch against it twice: with find_package(ulp) + ulp_add_patch(), and with
# `cc -shared -fPIC $(pkg-config --cflags ulp)`.  Both must export the
# descriptor symbol ulp_patch_descriptor.
#
# usage: install-test.sh BUILD_DIR PROJECT_DIR LIBDIR [CMAKE [CC [NM]]]
#   LIBDIR is CMAKE_INSTALL_LIBDIR (relative to the prefix).
set -euo pipefail

build_dir=$1
project_dir=$2
libdir=$3
cmake=${4:-cmake}
cc=${5:-cc}
nm=${6:-nm}
step_timeout=${ULP_INSTALL_TEST_TIMEOUT:-300}

fail()
{
	echo "install-test: FAIL: $*" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ulp-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# DESTDIR keeps any absolute install destination inside the scratch tree; the
# prefix differs from the configured one to check the files are relocatable.
prefix=/opt/ulp-install-test
root=$work/root
echo "== cmake --install $build_dir (DESTDIR=$root, prefix $prefix)"
DESTDIR=$root timeout "$step_timeout" "$cmake" --install "$build_dir" --prefix "$prefix" \
	>"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	fail "cmake --install failed"
}
inst=$root$prefix

[ -f "$inst/include/ulp/patch.h" ] || fail "include/ulp/patch.h not installed"
[ -f "$inst/$libdir/cmake/ulp/ulpConfig.cmake" ] || fail "$libdir/cmake/ulp/ulpConfig.cmake not installed"
[ -f "$inst/$libdir/cmake/ulp/ulpConfigVersion.cmake" ] || fail "ulpConfigVersion.cmake not installed"
[ -f "$inst/$libdir/cmake/ulp/UlpAddPatch.cmake" ] || fail "UlpAddPatch.cmake not installed"
[ -f "$inst/$libdir/pkgconfig/ulp.pc" ] || fail "$libdir/pkgconfig/ulp.pc not installed"

check_descriptor()
{
	local so=$1
	[ -f "$so" ] || fail "$so was not built"
	"$nm" -D --defined-only "$so" | awk '$3 == "ulp_patch_descriptor" { found = 1 } END { exit !found }' ||
		fail "$so does not export ulp_patch_descriptor"
	echo "ok: $so exports ulp_patch_descriptor"
}

echo "== find_package(ulp) + ulp_add_patch()"
timeout "$step_timeout" "$cmake" -S "$project_dir" -B "$work/project-build" \
	-DCMAKE_PREFIX_PATH="$inst" -DCMAKE_C_COMPILER="$cc" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
	-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF >"$work/configure.log" 2>&1 || {
	cat "$work/configure.log" >&2
	fail "configuring the out-of-tree patch project failed"
}
grep -q "ulp_DIR:PATH=$inst/" "$work/project-build/CMakeCache.txt" ||
	fail "find_package(ulp) did not pick the scratch install: $(grep ulp_DIR "$work/project-build/CMakeCache.txt")"
timeout "$step_timeout" "$cmake" --build "$work/project-build" >"$work/build.log" 2>&1 || {
	cat "$work/build.log" >&2
	fail "building the out-of-tree patch project failed"
}
check_descriptor "$work/project-build/fix.so"

echo "== pkg-config"
command -v pkg-config >/dev/null || fail "pkg-config not found"
cflags=$(PKG_CONFIG_PATH="$inst/$libdir/pkgconfig" PKG_CONFIG_LIBDIR="$inst/$libdir/pkgconfig" \
	timeout "$step_timeout" pkg-config --cflags ulp) || fail "pkg-config --cflags ulp failed"
echo "pkg-config --cflags ulp: $cflags"
# shellcheck disable=SC2086 # cflags is a list of words
timeout "$step_timeout" "$cc" -shared -fPIC -Wall -Wextra -Werror $cflags \
	"$project_dir/fix.c" -o "$work/fix-pc.so" || fail "cc with pkg-config flags failed"
check_descriptor "$work/fix-pc.so"

echo "install-test: PASS"
