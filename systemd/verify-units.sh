#!/usr/bin/env bash
# usage: verify-units.sh UNIT... [SYSUSERS.conf...] -- systemd-analyze verify
# the units, with ExecStart= pointed at an existing binary (ulpd may not be
# installed yet); check sysusers.d snippets with systemd-sysusers --dry-run
# in an empty root (nothing is created).  Prints systemd-analyze security's
# view of the service, for information.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/ulp-units.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/units" "$work/root"
sysusers=()
for f in "$@"; do
	case $f in
	*.conf) sysusers+=("$f") ;;
	*) sed 's|^ExecStart=[^ ]*|ExecStart=/bin/true|' "$f" >"$work/units/$(basename "$f")" ;;
	esac
done
cd "$work/units"
out=$(timeout 60 systemd-analyze verify --man=no ./* 2>&1) || {
	echo "$out" >&2
	exit 1
}
# verify exits 0 on some warnings; treat any output about our units as failure.
if grep -E '^(ulpd\.service|ulpd\.socket|.*/ulpd\.(service|socket)):' <<<"$out" >&2; then
	exit 1
fi
for f in "${sysusers[@]}"; do
	out=$(timeout 60 systemd-sysusers --dry-run --root="$work/root" "$f" 2>&1) || {
		echo "$out" >&2
		echo "systemd-sysusers rejects $f" >&2
		exit 1
	}
	grep -q "ulp" <<<"$out" || {
		echo "$out" >&2
		echo "systemd-sysusers would create no group ulp from $f" >&2
		exit 1
	}
done
if [ -e ulpd.service ]; then
	timeout 60 systemd-analyze security --offline=yes --no-pager ./ulpd.service 2>&1 |
		tail -n 1 || true
fi
echo "units verified: $*"
