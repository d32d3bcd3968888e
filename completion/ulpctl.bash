# bash completion for ulpctl(8)                              -*- shell-script -*-
# SPDX-License-Identifier: MIT
#
# Installed as share/bash-completion/completions/ulpctl, where bash-completion
# loads it on first use; it also works when sourced alone (no function of
# bash-completion is needed, _filedir is used when there).
#
# Completes the commands, their options, PATCH.so files (apply, check),
# PIDs after -p and patch names (revert, force).  For revert and force, the
# patch names and the PIDs come from `ulpctl status --json`, run under a
# timeout (ULPCTL_COMPLETION_TIMEOUT seconds, default 1) so that a busy or
# absent ulpd never blocks the shell; otherwise, or without an answer, -p
# offers every PID in /proc.  The JSON is read with bash and grep only.

# shellcheck shell=bash disable=SC2207

# The commands and the options each takes (-s/--socket and -h/--help: all).
_ulpctl_commands='apply revert check status threads force log'
_ulpctl_global_opts='-s --socket -h --help -V --version'

_ulpctl_cmd_opts()
{
	case $1 in
	apply) echo '-p --pid -e --exe --persist --no-wait -t --timeout --json' ;;
	revert) echo '-p --pid -e --exe --no-wait --json' ;;
	check | force) echo '-p --pid' ;;
	status | threads) echo '-p --pid --json' ;;
	log) echo '-p --pid -f --follow' ;;
	esac
	echo '-s --socket -h --help'
}

# Options followed by a value (as a separate word or after '=').
_ulpctl_opt_takes_arg()
{
	case $1 in
	-s | --socket | -p | --pid | -e | --exe | -t | --timeout) return 0 ;;
	esac
	return 1
}

# Reads `ulpctl status --json` on stdin; prints one line "PID" per process
# and one line "PID<TAB>NAME" per applied patch.  Only the keys
# processes[].pid and processes[].patches[].name matter; any order of keys
# and any other content is skipped.
_ulpctl_parse_status()
{
	local tok key='' path='' kinds='' state='' seg val pid='' n
	local -a segs=() names=()

	while IFS= read -r tok; do
		case $tok in
		'{' | '[')
			# path: /processes/@/patches/@ for a patch ('@' = array element)
			if [[ ${kinds: -1} == a ]]; then
				seg=/@
			elif [[ -n $kinds ]]; then
				seg=/$key
			else
				seg=
			fi
			segs+=("$seg")
			path+=$seg
			if [[ $tok == '{' ]]; then
				kinds+=o
				state=k
				if [[ $path == /processes/@ ]]; then
					pid=
					names=()
				fi
			else
				kinds+=a
				state=
			fi
			;;
		'}' | ']')
			if [[ $tok == '}' && $path == /processes/@ && $pid =~ ^[0-9]+$ ]]; then
				printf '%s\n' "$pid"
				for n in "${names[@]}"; do
					printf '%s\t%s\n' "$pid" "$n"
				done
			fi
			((${#segs[@]})) || return 0
			path=${path%"${segs[-1]}"}
			unset 'segs[-1]'
			kinds=${kinds%?}
			state=
			;;
		:) state=v ;;
		,) [[ ${kinds: -1} == o ]] && state=k ;;
		*)
			val=$tok
			if [[ $val == \"*\" ]]; then
				val=${val:1:${#val}-2}
				val=${val//\\\//\/}
				val=${val//\\\"/\"}
				val=${val//\\\\/\\}
			fi
			if [[ ${kinds: -1} == o && $state == k ]]; then
				key=$val
				state=
			elif [[ ${kinds: -1} == o && $state == v ]]; then
				if [[ $path == /processes/@ && $key == pid ]]; then
					pid=$val
				elif [[ $path == /processes/@/patches/@ && $key == name ]]; then
					names+=("$val")
				fi
				state=
			fi
			;;
		esac
	done < <(LC_ALL=C grep -oE '"([^"\\]|\\.)*"|[][{}:,]|[^][{}:,[:space:]"]+')
}

# _ulpctl_status ULPCTL [ARGS...]: the parsed status (see above), or nothing
# when ulpd does not answer within the timeout.
_ulpctl_status()
{
	local ulpctl=$1 t=${ULPCTL_COMPLETION_TIMEOUT:-1} json
	shift
	json=$(timeout -k 1 "$t" "$ulpctl" "$@" status --json </dev/null 2>/dev/null) || return 1
	_ulpctl_parse_status <<<"$json"
}

# Appends the words of $2 (one a line) that start with $1 to COMPREPLY.
_ulpctl_add_matches()
{
	local w
	while IFS= read -r w; do
		[[ -n $w && $w == "$1"* ]] && COMPREPLY+=("$w")
	done <<<"$2"
}

_ulpctl_files()
{
	local cur=$1 ext=${2-}

	if declare -F _filedir >/dev/null; then
		_filedir ${ext:+"$ext"}
		return
	fi
	compopt -o filenames 2>/dev/null
	local IFS=$'\n'
	if [[ -n $ext ]]; then
		COMPREPLY+=($(compgen -d -- "$cur") $(compgen -f -X "!*.$ext" -- "$cur"))
	else
		COMPREPLY+=($(compgen -f -- "$cur"))
	fi
}

_ulpctl()
{
	local cur prev ulpctl cmd='' operand='' pid='' opt='' i w
	local -a words=("${COMP_WORDS[@]}") sockargs=()
	local cword=$COMP_CWORD

	COMPREPLY=()
	cur=${words[cword]}
	prev=
	((cword > 0)) && prev=${words[cword - 1]}

	# --opt=VALUE, whether or not '=' is in COMP_WORDBREAKS.
	if [[ $cur == --*=* ]]; then
		opt=${cur%%=*}
		cur=${cur#*=}
	elif [[ $cur == = && $prev == --* ]]; then
		opt=$prev
		cur=
	elif [[ $prev == = ]] && ((cword > 1)) && [[ ${words[cword - 2]} == --* ]]; then
		opt=${words[cword - 2]}
	elif _ulpctl_opt_takes_arg "$prev"; then
		opt=$prev
	fi

	# The command, its operand, -p and --socket, from every other word
	# (getopt permutes: options may come before the command).
	for ((i = 1; i < ${#words[@]}; i++)); do
		((i == cword)) && continue
		w=${words[i]}
		if [[ ${words[i + 1]-} == = && $w == --* ]] && _ulpctl_opt_takes_arg "$w"; then
			# --opt = VALUE split by COMP_WORDBREAKS
			if ((i + 2 != cword)); then
				[[ $w == --pid ]] && pid=${words[i + 2]-}
				[[ $w == --socket ]] && sockargs=(--socket "${words[i + 2]-}")
			fi
			((i += 2))
			continue
		fi
		case $w in
		-p | --pid | -s | --socket | -e | --exe | -t | --timeout)
			if ((i + 1 != cword)); then
				case $w in
				-p | --pid) pid=${words[i + 1]-} ;;
				-s | --socket) sockargs=(--socket "${words[i + 1]-}") ;;
				esac
			fi
			((i++))
			;;
		--pid=*) pid=${w#*=} ;;
		--socket=*) sockargs=(--socket "${w#*=}") ;;
		-p?*) pid=${w#-p} ;;
		-s?*) sockargs=(--socket "${w#-s}") ;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			elif [[ -z $operand ]] && ((i < cword)); then
				operand=$w
			fi
			;;
		esac
	done
	[[ $pid =~ ^[0-9]+$ ]] || pid=

	# The ulpctl being completed (e.g. ./build/cli/ulpctl), else the one on PATH.
	ulpctl=${words[0]}
	[[ $ulpctl == \~/* ]] && ulpctl=$HOME/${ulpctl#\~/}
	command -v "$ulpctl" >/dev/null 2>&1 || ulpctl=ulpctl

	case $opt in
	-p | --pid)
		local status pids=
		# revert, force: the processes ulpd has patched (with that patch,
		# once it is named); else, or if ulpd knows none, every process.
		if [[ $cmd == revert || $cmd == force ]] &&
			status=$(_ulpctl_status "$ulpctl" "${sockargs[@]}"); then
			if [[ -n $operand ]]; then
				pids=$(while IFS=$'\t' read -r i w; do
					[[ $w == "$operand" ]] && printf '%s\n' "$i"
				done <<<"$status")
			else
				pids=$(grep -v $'\t' <<<"$status")
			fi
		fi
		if [[ -z $pids ]]; then
			local -a all=(/proc/[0-9]*)
			pids=$(printf '%s\n' "${all[@]#/proc/}")
		fi
		_ulpctl_add_matches "$cur" "$pids"
		return 0
		;;
	-s | --socket | -e | --exe)
		_ulpctl_files "$cur"
		return 0
		;;
	-t | --timeout)
		return 0
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_ulpctl_global_opts" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_ulpctl_commands" -- "$cur"))
		fi
		return 0
	fi

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_ulpctl_cmd_opts "$cmd")" -- "$cur"))
		return 0
	fi

	if [[ -z $operand ]]; then
		case $cmd in
		apply | check)
			_ulpctl_files "$cur" so
			return 0
			;;
		revert | force)
			local status names
			if status=$(_ulpctl_status "$ulpctl" "${sockargs[@]}" ${pid:+-p "$pid"}); then
				names=$(while IFS=$'\t' read -r i w; do
					[[ -n $w && (-z $pid || $i == "$pid") ]] && printf '%s\n' "$w"
				done <<<"$status" | sort -u)
				_ulpctl_add_matches "$cur" "$names"
			fi
			return 0
			;;
		esac
	fi

	# Nothing else to complete: the options of the command.
	COMPREPLY=($(compgen -W "$(_ulpctl_cmd_opts "$cmd")" -- "$cur"))
	return 0
} && complete -F _ulpctl ulpctl

# ex: filetype=sh
