#!/usr/bin/env bash
# Builds the Debian package with `cpack -G DEB` and checks it: its control
# fields (dependencies from dpkg-shlibdeps, maintainer scripts), its files
# (binaries, runtime, headers, man pages, units, completion), the paths
# built into ulpd and ulpd.service, and, as root, that it installs into and
# purges from a scratch root (dpkg --root, maintainer scripts run with
# DPKG_ROOT): the group ulp and the enabled units appear there, nothing is
# left after the purge, and the machine itself is not touched.
#
# usage: package-test.sh SOURCE_DIR BUILD_DIR DEB_BUILD_DIR VERSION CMAKE CPACK CONFIGURE_ARGS...
#   BUILD_DIR is packaged if it was configured for /usr without sanitizers;
#   else DEB_BUILD_DIR is configured (for /usr, with CONFIGURE_ARGS) and
#   built, and BUILD_DIR's cpack must refuse to make a package.
set -euo pipefail
export LC_ALL=C

src=$1
build=$2
deb_build=$3
version=$4
cmake=$5
cpack=$6
shift 6
configure_args=("$@")
step_timeout=${ULP_PACKAGE_TEST_TIMEOUT:-900}

fail()
{
	echo "package-test: FAIL: $*" >&2
	exit 1
}

for tool in dpkg-deb dpkg-shlibdeps dpkg; do
	command -v "$tool" >/dev/null || fail "$tool not found (package dpkg-dev)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ulp-package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

cache_get() # cache_get BUILD_DIR VAR
{
	sed -n "/^$2:[A-Z]*=/{s///p;q}" "$1/CMakeCache.txt"
}

prefix=$(cache_get "$build" CMAKE_INSTALL_PREFIX)
sanitize=$(cache_get "$build" ULP_SANITIZE)
case $sanitize in ON | on | TRUE | true | 1 | YES | yes) sanitize=ON ;; *) sanitize=OFF ;; esac

if [ "$prefix" = /usr ] && [ "$sanitize" = OFF ]; then
	pkg_build=$build
	echo "== $build is configured for /usr: packaging it"
else
	# cpack must not make a package whose built-in paths are wrong.
	echo "== cpack in $build (prefix $prefix, ULP_SANITIZE=$sanitize) must refuse"
	if (cd "$build" && timeout "$step_timeout" "$cpack" -G DEB -B "$work/refused") >"$work/refused.log" 2>&1; then
		cat "$work/refused.log" >&2
		fail "cpack -G DEB made a package from a tree not configured for /usr without sanitizers"
	fi
	grep -q "ulp: a Debian package needs a build tree configured with" "$work/refused.log" || {
		cat "$work/refused.log" >&2
		fail "cpack failed in $build, but not with ulp's explanation"
	}
	pkg_build=$deb_build
	echo "== configuring and building $pkg_build for /usr"
	timeout "$step_timeout" "$cmake" -S "$src" -B "$pkg_build" -DCMAKE_INSTALL_PREFIX=/usr \
		-DBUILD_TESTING=OFF -DULP_SANITIZE=OFF "${configure_args[@]}" >"$work/configure.log" 2>&1 || {
		cat "$work/configure.log" >&2
		fail "configuring $pkg_build failed"
	}
	timeout "$step_timeout" "$cmake" --build "$pkg_build" -j 2 >"$work/build.log" 2>&1 || {
		tail -n 60 "$work/build.log" >&2
		fail "building $pkg_build failed"
	}
fi

echo "== cpack -G DEB"
(cd "$pkg_build" && timeout "$step_timeout" "$cpack" -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 || {
	cat "$work/cpack.log" >&2
	fail "cpack -G DEB failed"
}
arch=$(dpkg --print-architecture)
deb=$work/out/ulp_${version}-1_${arch}.deb
[ -f "$deb" ] || fail "no $deb; cpack made: $(ls "$work/out")"
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"

libdir=$(cache_get "$pkg_build" CMAKE_INSTALL_LIBDIR)
[ -n "$libdir" ] || fail "no CMAKE_INSTALL_LIBDIR in $pkg_build/CMakeCache.txt"
case $libdir in /*) ;; *) libdir=/usr/$libdir ;; esac

echo "== dpkg-deb -I (control fields)"
dpkg-deb -I "$deb" >"$work/info.txt" || fail "dpkg-deb -I failed"
cat "$work/info.txt"
field()
{
	dpkg-deb -f "$deb" "$1"
}
[ "$(field Package)" = ulp ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version-1" ] || fail "Version: $(field Version), expected $version-1"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = admin ] || fail "Section: $(field Section)"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
synopsis=$(field Description)
synopsis=${synopsis%%$'\n'*}
case $synopsis in *"live patching"*) ;; *) fail "Description: $synopsis" ;; esac
depends=$(field Depends)
# From dpkg-shlibdeps: the libraries ulpd, ulpctl and libulp-rt.so link.
for lib in 'libc6 \(>= ' 'libjson-c[0-9]+' 'libelf1' 'libdw1' 'libunwind8' 'libsystemd0' 'libzydis' 'passwd'; do
	echo "$depends" | grep -Eq "(^|, )$lib" || fail "Depends lacks $lib: $depends"
done
for script in postinst prerm postrm; do
	grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$script +#!/bin/sh" "$work/info.txt" ||
		fail "no executable $script (#!/bin/sh) in the control archive"
done
dpkg-deb -e "$deb" "$work/control" || fail "dpkg-deb -e failed"
for script in postinst prerm postrm; do
	sh -n "$work/control/$script" || fail "$script: syntax error"
	cmp -s "$work/control/$script" "$src/packaging/debian/$script" ||
		fail "$script differs from packaging/debian/$script"
done

echo "== dpkg-deb -c (files)"
dpkg-deb -c "$deb" >"$work/contents.txt" || fail "dpkg-deb -c failed"
awk '{ print $6 }' "$work/contents.txt" | sed 's|^\./|/|; s|/$||' | sort >"$work/paths.txt"
has()
{
	grep -qxE "$1" "$work/paths.txt" || fail "the package has no $1"
}
has /usr/bin/ulpd
has /usr/bin/ulpctl
has "$libdir/ulp/libulp-rt\.so"
has "$libdir/ulp/libulp-rt\.so\.0"
has /usr/include/ulp/patch\.h
has "$libdir/cmake/ulp/ulpConfig\.cmake"
has "$libdir/pkgconfig/ulp\.pc"
has '/usr/share/man/man8/ulpctl\.8(\.gz)?'
has '/usr/share/man/man8/ulpd\.8(\.gz)?'
has '/usr/share/man/man7/ulp-patch\.7(\.gz)?'
has '(/usr)?/lib/systemd/system/ulpd\.service'
has '(/usr)?/lib/systemd/system/ulpd\.socket'
has /usr/share/bash-completion/completions/ulpctl
bad=$(grep -vE '^(/usr(/.*)?|(/usr)?/lib(/systemd(/system(/.*)?)?)?|/etc(/.*)?|/var(/lib(/ulp)?)?|/)$' "$work/paths.txt" || true)
[ -z "$bad" ] || fail "files outside /usr: $bad"
bad=$(grep -E '^/usr/local|/(test_|ulp_fixture|ulp_bench|demo_server)|/tests?/' "$work/paths.txt" || true)
[ -z "$bad" ] || fail "files that do not belong in the package: $bad"
bad=$(awk '$2 != "root/root"' "$work/contents.txt")
[ -z "$bad" ] || fail "files not owned by root: $bad"
grep -E ' \./usr/bin/ulpd$| \./usr/bin/ulpctl$' "$work/contents.txt" | awk '$1 !~ /^-rwxr-xr-x$/ { bad = 1 } END { exit bad }' ||
	fail "ulpd or ulpctl not mode 0755"

echo "== the files themselves"
dpkg-deb -x "$deb" "$work/x" || fail "dpkg-deb -x failed"
unit=$work/x/usr/lib/systemd/system/ulpd.service
[ -f "$unit" ] || unit=$work/x/lib/systemd/system/ulpd.service
grep -qx 'ExecStart=/usr/bin/ulpd\( .*\)\?' "$unit" || fail "ulpd.service: $(grep ExecStart "$unit")"
grep -aqF "$libdir/ulp/libulp-rt.so" "$work/x/usr/bin/ulpd" ||
	fail "ulpd does not have $libdir/ulp/libulp-rt.so built in"
grep -aq '/usr/local' "$work/x/usr/bin/ulpd" && fail "ulpd has a /usr/local path built in"
cmp -s "$work/x/usr/share/bash-completion/completions/ulpctl" "$src/completion/ulpctl.bash" ||
	fail "the packaged completion differs from completion/ulpctl.bash"
for bin in ulpctl ulpd; do
	out=$("$work/x/usr/bin/$bin" --version) || fail "$bin --version failed"
	case $out in *"$version"*) ;; *) fail "$bin --version: $out" ;; esac
done

echo "== maintainer scripts under a running systemd (faked)"
# Copies of the scripts that see a fake /run/systemd/system, run with fake
# systemctl, deb-systemd-helper, deb-systemd-invoke, getent and ulpctl
# first on PATH; each fake logs its arguments.  The fake ulpd.service is
# active when $work/fake/active exists; the fake ulpctl status answers
# $work/fake/status, or fails when it is missing.
fake=$work/fake
mkdir -p "$fake/bin" "$fake/run-systemd-system"
for cmd in systemctl deb-systemd-helper deb-systemd-invoke getent ulpctl groupadd addgroup systemd-sysusers; do
	cat >"$fake/bin/$cmd" <<EOF
#!/bin/sh
echo "$cmd \$*" >>"$fake/log"
case "$cmd \$*" in
"systemctl --quiet is-active ulpd.service") [ -e "$fake/active" ] ;;
"ulpctl status --json") [ -e "$fake/status" ] && cat "$fake/status" ;;
"getent group ulp") echo "ulp:x:999:" ;;
"deb-systemd-helper --quiet was-enabled "*) exit 0 ;;
groupadd* | addgroup* | systemd-sysusers*) exit 1 ;;
esac
EOF
	chmod +x "$fake/bin/$cmd"
done
for script in postinst prerm postrm; do
	sed "s|/run/systemd/system|$fake/run-systemd-system|g" "$work/control/$script" >"$fake/$script"
	chmod +x "$fake/$script"
	grep -q "$fake/run-systemd-system" "$fake/$script" || fail "$script does not look at /run/systemd/system"
done
# run_fake SCRIPT ARGS...: the invocations of start, restart and stop, one a line
run_fake()
{
	local script=$1
	shift
	: >"$fake/log"
	env -u DPKG_ROOT PATH="$fake/bin:$PATH" timeout 60 "$fake/$script" "$@" 2>"$fake/stderr" ||
		fail "$script $* failed: $(cat "$fake/stderr")"
	grep -E '^(deb-systemd-invoke|systemctl) (start|restart|stop)' "$fake/log" || true
}
expect_calls()
{
	local what=$1 got
	got=$(cat)
	[ "$got" = "$2" ] || fail "$what: expected
$2
got
$got
(log: $(cat "$fake/log"))"
}
nl='
'
no_patches='{"processes":[]}'
patches='{"processes":[{"pid":4242,"exe":"/usr/bin/srv","patches":[{"name":"fix","enabled":true,"objects":[]}]}]}'

rm -f "$fake/active" "$fake/status"
run_fake postinst configure | expect_calls "first installation" \
	"deb-systemd-invoke start ulpd.socket${nl}deb-systemd-invoke start ulpd.service"
grep -q '^deb-systemd-helper enable ulpd.socket$' "$fake/log" || fail "postinst did not enable ulpd.socket: $(cat "$fake/log")"
grep -q '^deb-systemd-helper enable ulpd.service$' "$fake/log" || fail "postinst did not enable ulpd.service: $(cat "$fake/log")"
grep -q '^systemctl --system daemon-reload$' "$fake/log" || fail "postinst did not reload systemd: $(cat "$fake/log")"

touch "$fake/active"
echo "$no_patches" >"$fake/status"
run_fake postinst configure 0.0.9-1 | expect_calls "upgrade, no live patches" \
	"deb-systemd-invoke start ulpd.socket${nl}deb-systemd-invoke restart ulpd.service"

echo "$patches" >"$fake/status"
run_fake postinst configure 0.0.9-1 | expect_calls "upgrade, live patches" \
	"deb-systemd-invoke start ulpd.socket"
grep -q 'not restarted' "$fake/stderr" || fail "no notice that ulpd was not restarted: $(cat "$fake/stderr")"

rm -f "$fake/status"
run_fake postinst configure 0.0.9-1 | expect_calls "upgrade, ulpd not answering" \
	"deb-systemd-invoke start ulpd.socket"

rm -f "$fake/active"
run_fake postinst configure 0.0.9-1 | expect_calls "upgrade, ulpd.service not running" \
	"deb-systemd-invoke start ulpd.socket${nl}deb-systemd-invoke start ulpd.service"

touch "$fake/active"
echo "$patches" >"$fake/status"
run_fake prerm remove | expect_calls "prerm remove" "deb-systemd-invoke stop ulpd.service ulpd.socket"
grep -q 'live patches' "$fake/stderr" || fail "prerm remove did not warn of live patches: $(cat "$fake/stderr")"
echo "$no_patches" >"$fake/status"
run_fake prerm remove >/dev/null
[ -s "$fake/stderr" ] && fail "prerm remove warned without live patches: $(cat "$fake/stderr")"
run_fake prerm upgrade 0.2.0-1 | expect_calls "prerm upgrade" ""
run_fake postrm remove | expect_calls "postrm remove" ""
grep -q '^deb-systemd-helper mask ulpd.socket ulpd.service$' "$fake/log" || fail "postrm remove did not mask: $(cat "$fake/log")"
echo "ok: start on installation, restart on upgrade only without live patches, stop on removal"

if [ "$(id -u)" -ne 0 ]; then
	echo "== not root: installing into a scratch root skipped"
	echo "package-test: PASS"
	exit 0
fi

echo "== dpkg --root (scratch root; maintainer scripts with DPKG_ROOT)"
host_state()
{
	getent group ulp || true
	ls -la /etc/systemd/system/sockets.target.wants/ulpd.socket \
		/etc/systemd/system/multi-user.target.wants/ulpd.service 2>/dev/null || true
	find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
		-name '*ulpd*' 2>/dev/null | sort || true
	ls -d /var/lib/ulp 2>/dev/null || true
	dpkg-query -W -f='${Status}\n' ulp 2>/dev/null || true
}
host_state >"$work/host-before.txt"

# new_root DIR: an empty dpkg database and the accounts files.
new_root()
{
	r=$1
	mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/triggers" "$r/etc"
	: >"$r/var/lib/dpkg/status"
	echo 'root:x:0:' >"$r/etc/group"
	echo 'root:*::' >"$r/etc/gshadow"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'root:*:19000:0:99999:7:::' >"$r/etc/shadow"
	chmod 640 "$r/etc/gshadow" "$r/etc/shadow"
}
new_root "$work/root"

rdpkg()
{
	timeout "$step_timeout" dpkg --root="$r" --force-script-chrootless --force-depends \
		--log=/dev/null "$@" >>"$work/dpkg.log" 2>&1 || {
		cat "$work/dpkg.log" >&2
		fail "dpkg --root $* failed"
	}
}
rstatus()
{
	dpkg-query --admindir="$r/var/lib/dpkg" -W -f='${Status}' ulp 2>/dev/null || true
}
enabled()
{
	local link=$r/etc/systemd/system/$1
	[ -L "$link" ] && case $(readlink "$link") in
	/usr/lib/systemd/system/* | /lib/systemd/system/*) true ;;
	*) false ;;
	esac
}

rdpkg -i "$deb"
[ "$(rstatus)" = "install ok installed" ] || fail "after dpkg -i: status '$(rstatus)'"
[ -x "$r/usr/bin/ulpd" ] || fail "ulpd not installed into the scratch root"
grep -q '^ulp:x:[0-9]*:' "$r/etc/group" || fail "postinst did not create the group ulp: $(cat "$r/etc/group")"
enabled sockets.target.wants/ulpd.socket || fail "postinst did not enable ulpd.socket"
enabled multi-user.target.wants/ulpd.service || fail "postinst did not enable ulpd.service"
echo "ok: installed; group ulp; ulpd.socket and ulpd.service enabled"

# Reinstalling (postinst configure OLD-VERSION) keeps an admin's choice:
# `systemctl disable ulpd.service` removes the link.
rm "$r/etc/systemd/system/multi-user.target.wants/ulpd.service"
rdpkg -i "$deb"
[ "$(rstatus)" = "install ok installed" ] || fail "after a reinstall: status '$(rstatus)'"
enabled multi-user.target.wants/ulpd.service && fail "a reinstall enabled the disabled ulpd.service again"
enabled sockets.target.wants/ulpd.socket || fail "a reinstall disabled ulpd.socket"
[ "$(grep -c '^ulp:' "$r/etc/group")" = 1 ] || fail "a reinstall changed the group ulp: $(cat "$r/etc/group")"
echo "ok: reinstalled; a disabled unit stays disabled"

# ulpd's state, as if it had run.
mkdir -p "$r/var/lib/ulp/patches" "$r/run/ulp"
echo x >"$r/var/lib/ulp/patches/fix.so"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$r/run/ulp/ulpd.sock" 2>/dev/null ||
	: >"$r/run/ulp/ulpd.sock"

rdpkg --remove ulp
[ -e "$r/usr/bin/ulpd" ] && fail "ulpd left after dpkg --remove"
[ -f "$r/var/lib/ulp/patches/fix.so" ] || fail "dpkg --remove deleted ulpd's state (only a purge may)"
rdpkg --purge ulp
[ -z "$(rstatus)" ] || [ "$(rstatus)" = "unknown ok not-installed" ] || fail "after the purge: status '$(rstatus)'"
[ -e "$r/var/lib/ulp" ] && fail "/var/lib/ulp left after the purge"
[ -e "$r/run/ulp" ] && fail "/run/ulp left after the purge"
left=$(cd "$r" && find . \( -path ./var/lib/dpkg -o -path './etc/group*' -o -path './etc/gshadow*' \
	-o -path './etc/passwd*' -o -path './etc/shadow*' -o -path ./etc/.pwd.lock \) -prune \
	-o ! -type d -print)
[ -z "$left" ] || fail "left in the scratch root after the purge: $left"
echo "ok: removed (state kept), purged (nothing left but the group ulp)"

# Without a working systemd-sysusers (or without ulp's sysusers.d file),
# postinst creates the group with groupadd.
mkdir -p "$work/no-sysusers"
printf '#!/bin/sh\nexit 1\n' >"$work/no-sysusers/systemd-sysusers"
chmod +x "$work/no-sysusers/systemd-sysusers"
new_root "$work/root2"
PATH=$work/no-sysusers:$PATH rdpkg -i "$deb"
grep -q '^ulp:x:[0-9]*:' "$r/etc/group" || fail "no group ulp without systemd-sysusers: $(cat "$r/etc/group")"
rdpkg --purge ulp
echo "ok: group ulp created by groupadd when systemd-sysusers fails"

host_state >"$work/host-after.txt"
diff -u "$work/host-before.txt" "$work/host-after.txt" ||
	fail "installing into the scratch root changed this machine"

echo "package-test: PASS"
