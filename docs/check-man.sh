#!/usr/bin/env bash
# usage: check-man.sh MAN PAGE -- fail if PAGE renders with any warning.
set -euo pipefail
man=$1
page=$2
err=$(MANWIDTH=${MANWIDTH:-80} timeout 30 "$man" --warnings -l "$page" 2>&1 >/dev/null) || {
	echo "$err" >&2
	echo "check-man: $page: man failed" >&2
	exit 1
}
if [ -n "$err" ]; then
	echo "$err" >&2
	echo "check-man: $page: warnings" >&2
	exit 1
fi
echo "check-man: $page: ok"
