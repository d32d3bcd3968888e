#!/usr/bin/env bash
# Checks completion/ulpctl.bash: sourced alone, and loaded on demand by
# bash-completion's framework when that is installed.  A fake `ulpctl` on
# PATH prints a canned `status --json` (and records its arguments) for the
# patch names and PIDs of revert and force; the real ulpctl's --help gives
# the commands and options the completion must know.
#
# usage: completion-test.sh COMPLETION_FILE ULPCTL [BASH_COMPLETION_SCRIPT]
#   BASH_COMPLETION_SCRIPT defaults to /usr/share/bash-completion/bash_completion;
#   the framework half is skipped when it does not exist.
set -uo pipefail

completion=$(realpath "$1")
real_ulpctl=$(realpath "$2")
framework=${3:-/usr/share/bash-completion/bash_completion}

[ -f "$completion" ] || {
	echo "completion-test: FAIL: no $completion" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ulp-completion-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The fake ulpctl: FAKE_MODE=ok|fail|hang, FAKE_JSON=file; logs its argv.
mkdir -p "$work/bin"
cat >"$work/bin/ulpctl" <<'EOF'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_LOG"
case $FAKE_MODE in
ok) cat "$FAKE_JSON" ;;
fail) echo "ulpctl: cannot connect" >&2; exit 1 ;;
hang) trap '' TERM; sleep 30; exit 0 ;;
esac
EOF
chmod +x "$work/bin/ulpctl"

# Two processes; objects are named too ("main", "libfoo.so"): only the
# patches' names count.  The second process lists its keys in another order.
cat >"$work/status.json" <<'EOF'
{"processes":[{"pid":111,"exe":"\/usr\/bin\/srv","patches":[{"name":"fix_a","enabled":true,"transition":false,"replace":false,"stack_order":1,"objects":[{"name":"main","patched":true,"functions":[{"old_name":"f","old_sympos":0,"old_addr":"0x1","new_addr":"0x2","new_name":"new_f"}]}]},{"name":"fix_b","enabled":true,"transition":true,"replace":false,"stack_order":2,"objects":[{"name":"libfoo.so","patched":false,"functions":[]}]}]},{"patches":[{"objects":[{"functions":[],"patched":true,"name":"main"}],"stack_order":1,"name":"fix_c","enabled":true}],"exe":"\/opt\/x","pid":222}]}
EOF
# The same, pretty-printed.
cat >"$work/status-pretty.json" <<'EOF'
{
  "processes": [
    {
      "pid": 333,
      "exe": "/bin/\"odd\" name",
      "patches": [
        { "name": "pretty_fix", "enabled": true,
          "objects": [ { "name": "main", "patched": true, "functions": [ ] } ] }
      ]
    }
  ]
}
EOF
echo '{"processes":[]}' >"$work/status-empty.json"

mkdir -p "$work/files/sub dir" "$work/files/lib"
touch "$work/files/fix.so" "$work/files/fix2.so" "$work/files/notes.txt" "$work/files/lib/deep.so"

# The driver, run once per mode in a clean non-interactive bash.
cat >"$work/driver.sh" <<'EOF'
fails=0
checks=0

# comp WORD... : complete the last word of the command line WORD...; the
# sorted COMPREPLY, one per line, in $out.
comp()
{
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>"$WORK/comp.err"
	out=$(printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort)
}

# comp_at CWORD WORD... : the same, with the cursor on word CWORD.
comp_at()
{
	local cw=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$cw
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[cw]}" "${COMP_WORDS[cw - 1]}" 2>"$WORK/comp.err"
	out=$(printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort)
}

expect()
{
	local what=$1 want
	want=$(printf '%s\n' "${@:2}" | LC_ALL=C sort)
	checks=$((checks + 1))
	if [[ $out != "$want" ]]; then
		echo "FAIL [$MODE] $what"
		echo "  expected: $(echo $want)"
		echo "  got:      $(echo $out)"
		fails=$((fails + 1))
	fi
}

expect_has()
{
	local what=$1 w
	checks=$((checks + 1))
	for w in "${@:2}"; do
		if ! grep -qxF -- "$w" <<<"$out"; then
			echo "FAIL [$MODE] $what: '$w' missing from: $(echo $out)"
			fails=$((fails + 1))
			return
		fi
	done
}

expect_lacks()
{
	local what=$1 w
	checks=$((checks + 1))
	for w in "${@:2}"; do
		if grep -qxF -- "$w" <<<"$out"; then
			echo "FAIL [$MODE] $what: '$w' offered: $(echo $out)"
			fails=$((fails + 1))
			return
		fi
	done
}

# called_with WHAT PART... : one call of the fake had every PART in its argv
called_with()
{
	local what=$1 line p ok
	shift
	checks=$((checks + 1))
	while IFS= read -r line; do
		ok=1
		for p in "$@"; do
			[[ " $line " == *" $p "* ]] || ok=0
		done
		((ok)) && return 0
	done <"$FAKE_LOG"
	echo "FAIL [$MODE] $what: no call of ulpctl with '$*'; calls: $(cat "$FAKE_LOG")"
	fails=$((fails + 1))
}

fake() # fake MODE [JSON]: how the fake ulpctl answers; clears its log
{
	export FAKE_MODE=$1 FAKE_JSON=${2:-$WORK/status.json}
	: >"$FAKE_LOG"
}

export FAKE_LOG=$WORK/fake.log
PATH=$WORK/bin:$PATH
fake fail

# --- commands and options
comp ulpctl ''
expect "commands" apply revert check status threads force log
comp ulpctl re
expect "command prefix" revert
comp ulpctl -
expect "global options" -s --socket -h --help -V --version
comp ulpctl --socket /tmp/s ''
expect "commands after --socket PATH" apply revert check status threads force log
comp ulpctl apply -
expect "apply options" -p --pid -e --exe --persist --no-wait -t --timeout --json -s --socket -h --help
comp ulpctl revert --n
expect "revert --n" --no-wait
comp ulpctl status --
expect "status long options" --pid --json --socket --help
comp ulpctl log -p 1 --f
expect "log --f" --follow
comp ulpctl threads --j
expect "threads --j" --json
comp ulpctl force -
expect "force options" -p --pid -s --socket -h --help
comp ulpctl check fix.so ''
expect "options once the operand is there" -p --pid -s --socket -h --help
comp ulpctl apply x.so --timeout ''
expect "no completion for a timeout"

# --- every command and long option of the real ulpctl --help is known
help=$("$REAL_ULPCTL" --help) || { echo "FAIL: $REAL_ULPCTL --help"; fails=$((fails + 1)); }
help_cmds=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | awk 'NF && !/^Commands:/ && $1 != "..." { print $1 }' |
	LC_ALL=C sort -u)
comp ulpctl ''
checks=$((checks + 1))
if [[ -z $help_cmds || $(LC_ALL=C sort <<<"$help_cmds") != "$out" ]]; then
	echo "FAIL [$MODE] commands differ from ulpctl --help: help: $(echo $help_cmds); completion: $(echo $out)"
	fails=$((fails + 1))
fi
all_opts=$(for c in '' $help_cmds; do
	if [[ -z $c ]]; then comp ulpctl -; else comp ulpctl "$c" -; fi
	printf '%s\n' "$out"
done | LC_ALL=C sort -u)
for o in $(grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' <<<"$help" | grep -oE -- '--?[a-zA-Z-]+' | sort -u); do
	checks=$((checks + 1))
	grep -qxF -- "$o" <<<"$all_opts" || {
		echo "FAIL [$MODE] option $o of ulpctl --help is not completed"
		fails=$((fails + 1))
	}
done

# --- PATCH.so files
cd "$WORK/files"
comp ulpctl apply ''
expect_has "apply: *.so and directories" fix.so fix2.so lib
expect_lacks "apply: not other files" notes.txt
comp ulpctl check f
expect_has "check f" fix.so fix2.so
expect_lacks "check f: not other files" notes.txt
comp ulpctl apply lib/
expect "apply lib/" lib/deep.so
comp ulpctl -p 5 apply ''
expect_has "apply after -p" fix.so
cd "$WORK"

# --- patch names from ulpctl status --json
fake ok
comp ulpctl revert ''
expect "revert: all patch names" fix_a fix_b fix_c
called_with "revert: ulpctl status --json" "status --json"
fake ok
comp ulpctl revert -p 111 ''
expect "revert -p 111" fix_a fix_b
called_with "revert -p 111: status of that process" "status --json" "-p 111"
comp_at 2 ulpctl revert '' -p 222
expect "revert (cursor before -p 222)" fix_c
comp ulpctl --pid=111 force fix_
expect "force --pid=111 fix_" fix_a fix_b
comp ulpctl revert --pid = 222 ''
expect "revert --pid = 222 (split at =)" fix_c
comp ulpctl revert -p222 ''
expect "revert -p222" fix_c
fake ok
comp ulpctl --socket /some/ulpd.sock revert ''
expect "revert with --socket" fix_a fix_b fix_c
called_with "--socket passed on" "status --json" "--socket /some/ulpd.sock"
comp ulpctl revert fix_a ''
expect "revert NAME: options" -p --pid -e --exe --no-wait --json -s --socket -h --help
fake ok "$WORK/status-pretty.json"
comp ulpctl revert ''
expect "pretty-printed JSON" pretty_fix
fake ok "$WORK/status-empty.json"
comp ulpctl revert ''
expect "no patched process"
fake fail
comp ulpctl revert ''
expect "ulpd not answering: no names"

# --- PIDs
fake ok
comp ulpctl revert -p ''
expect "revert -p: the patched processes" 111 222
comp ulpctl revert fix_c -p ''
expect "revert fix_c -p: the processes with fix_c" 222
comp ulpctl force fix_a --pid=''
expect "force fix_a --pid=" 111
comp ulpctl force fix_a --pid = ''
expect "force fix_a --pid = (split)" 111
comp ulpctl revert -p 2
expect "revert -p 2" 222
fake ok
comp ulpctl apply fix.so -p ''
expect_has "apply -p: every process" 1 "$$"
[[ -s $FAKE_LOG ]] && { echo "FAIL [$MODE] apply -p asked ulpd: $(cat "$FAKE_LOG")"; fails=$((fails + 1)); }
comp ulpctl threads -p "$$"
expect_has "threads -p \$\$" "$$"
expect_lacks "threads -p \$\$: only that prefix" 1
fake fail
comp ulpctl revert -p ''
expect_has "revert -p, ulpd not answering: every process" 1 "$$"

# --- a hanging ulpd does not hang the shell
fake hang
start=$(date +%s%N)
comp ulpctl revert -p ''
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_has "revert -p, ulpd hanging: every process" 1 "$$"
checks=$((checks + 1))
if ((elapsed_ms > 5000)); then
	echo "FAIL [$MODE] completion took ${elapsed_ms} ms with a hanging ulpctl"
	fails=$((fails + 1))
fi
start=$(date +%s%N)
ULPCTL_COMPLETION_TIMEOUT=0.2 comp ulpctl force ''
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect "force, ulpd hanging: nothing"
checks=$((checks + 1))
if ((elapsed_ms > 3000)); then
	echo "FAIL [$MODE] completion took ${elapsed_ms} ms with ULPCTL_COMPLETION_TIMEOUT=0.2"
	fails=$((fails + 1))
fi

# --- the ulpctl being completed is the one asked (e.g. a build tree's)
fake ok
comp "$WORK/bin/ulpctl" revert ''
expect "revert via a path to ulpctl" fix_a fix_b fix_c

if [[ -s $WORK/comp.err ]]; then
	echo "FAIL [$MODE] the last completion wrote to stderr: $(cat "$WORK/comp.err")"
	fails=$((fails + 1))
fi
echo "[$MODE] $checks checks, $fails failed"
exit $((fails > 0))
EOF

status=0

echo "== sourced alone"
env -i PATH="$PATH" HOME="$work" WORK="$work" REAL_ULPCTL="$real_ulpctl" MODE=plain \
	timeout 300 bash --norc --noprofile -c '
		source "$1" || exit 1
		complete -p ulpctl | grep -q -- "-F _ulpctl ulpctl" || { echo "FAIL: complete -p ulpctl: $(complete -p ulpctl)"; exit 1; }
		func=_ulpctl
		source "$WORK/driver.sh"' bash "$completion" || status=1

if [ -f "$framework" ]; then
	echo "== loaded by bash-completion ($framework)"
	# The user completion dir comes before the system's: an installed ulp
	# does not hide this file.
	mkdir -p "$work/user/completions"
	ln -s "$completion" "$work/user/completions/ulpctl"
	env -i PATH="$PATH" HOME="$work" WORK="$work" REAL_ULPCTL="$real_ulpctl" MODE=framework \
		BASH_COMPLETION_USER_DIR="$work/user" \
		timeout 300 bash --norc --noprofile -c '
			source "$1" || exit 1
			__load_completion ulpctl || { echo "FAIL: bash-completion did not load ulpctl"; exit 1; }
			spec=$(complete -p ulpctl) || exit 1
			[[ $spec == *"-F _ulpctl "* ]] || { echo "FAIL: complete -p ulpctl: $spec"; exit 1; }
			func=_ulpctl
			source "$WORK/driver.sh"' bash "$framework" || status=1
else
	echo "== bash-completion not installed ($framework): framework half skipped"
fi

if [ "$status" -eq 0 ]; then
	echo "completion-test: PASS"
else
	echo "completion-test: FAIL" >&2
fi
exit "$status"
