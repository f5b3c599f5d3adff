# shellcheck shell=bash
# Helpers shared by bench/run.sh and ci/e2e.sh; sourced after `set -euo pipefail`, not run.
#
#   die MESSAGE...                 message to stderr, exit 1 (a script may redefine it; every
#                                  failure below goes through it)
#   free_port                      prints a loopback port nothing listens on, never one it
#                                  printed before in this run
#   spawn NAME LOG COMMAND...      COMMAND in the background, stdout and stderr to LOG
#   track NAME PID LOG             adopt a background process started some other way
#   spawn_controlled NAME LOG COMMAND...
#                                  as spawn, with stdout and stdin kept for `control`
#   control NAME LINE [SECONDS]    LINE on NAME's stdin; waits for its `ok ...` reply line
#   wait_tcp NAME PORT [SECONDS]   until NAME listens on 127.0.0.1:PORT
#   wait_http NAME URL [SECONDS]   until URL answers 2xx
#   wait_until NAME SECONDS WHAT COMMAND...
#                                  until COMMAND succeeds
#   stop_proc NAME [GRACE]         TERM, KILL after GRACE seconds (0: KILL now), reap
#
# Every wait has a deadline. When it passes, or the process being waited on exits first, the
# script dies naming what never came up, with the last lines of that process's log. Whatever
# was spawned is stopped when the script exits; a script may define `on_exit STATUS` to do more
# (it runs after the processes are stopped).

lib_name=${lib_name:-$(basename "$0" .sh)}
lib_tmp=$(mktemp -d "${TMPDIR:-/tmp}/$lib_name-lib.XXXXXX")
declare -A proc_pid=() proc_log=() proc_in=() proc_out=()

die() {
  printf '%s: error: %s\n' "$lib_name" "$*" >&2
  exit 1
}

# The last lines of a log, indented, for a failure message.
log_tail() { # LOG
  if [[ -s $1 ]]; then
    printf '\nlast lines of %s:\n' "$1"
    tail -n 20 "$1" | sed 's/^/    /'
  else
    printf '\n(%s is empty)' "$1"
  fi
}

# Microseconds since the epoch (EPOCHREALTIME's separator follows the locale).
now_us() { printf '%s\n' "${EPOCHREALTIME//[!0-9]/}"; }

# ---- ports

# Chosen at random so parallel runs and other engineers' daemons are left alone, and below the
# ephemeral range so a load generator's many outgoing connections never hold one. Printed ports
# are remembered in a file, so calls in $(...) never hand out the same one twice.
free_port() {
  local low span p tries
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((low > 11000)) || low=60000 # an unusual range: take what is left above 10000
  span=$((low - 10000))
  touch "$lib_tmp/ports"
  for ((tries = 0; tries < 500; tries++)); do
    p=$((10000 + ((RANDOM << 15) | RANDOM) % span))
    grep -qx "$p" "$lib_tmp/ports" && continue
    tcp_open "$p" && continue
    echo "$p" >>"$lib_tmp/ports"
    echo "$p"
    return 0
  done
  die "no free loopback port found between 10000 and $low"
}

tcp_open() { # PORT: something accepts connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---- processes

track() { # NAME PID LOG
  [[ -z ${proc_pid[$1]:-} ]] || die "internal: a process named $1 is already running"
  proc_pid[$1]=$2
  proc_log[$1]=$3
}

spawn() { # NAME LOG COMMAND...
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  track "$name" $! "$log"
}

# Stdin and stdout go through fifos this shell holds open read-write: opening them never
# blocks, NAME never sees end of input, and a write never raises SIGPIPE if NAME has died
# (control notices that instead). stderr goes to LOG, as do the control lines and replies.
spawn_controlled() { # NAME LOG COMMAND...
  local name=$1 log=$2 fd_in fd_out
  shift 2
  mkfifo "$lib_tmp/$name.in" "$lib_tmp/$name.out"
  : >"$log"
  "$@" <"$lib_tmp/$name.in" >"$lib_tmp/$name.out" 2>>"$log" &
  track "$name" $! "$log"
  exec {fd_in}<>"$lib_tmp/$name.in" {fd_out}<>"$lib_tmp/$name.out"
  proc_in[$name]=$fd_in
  proc_out[$name]=$fd_out
}

# True if NAME has exited; its exit status is then in proc_status and it is forgotten. (Not
# for $(...): only this shell can collect the status of its children.)
proc_status=
proc_exited() { # NAME
  local pid=${proc_pid[$1]:-}
  [[ -n $pid ]] || return 1
  ! kill -0 "$pid" 2>/dev/null || return 1
  proc_status=0
  wait "$pid" 2>/dev/null || proc_status=$?
  unset "proc_pid[$1]"
}

# Sends LINE to NAME's standard input and waits for its acknowledgement, one line on its
# standard output: `ok <what was applied>` returns, `error <why>` dies. Other lines (none are
# expected) go to the log. Dies if NAME exits or SECONDS pass without a reply.
control() { # NAME LINE [SECONDS]
  local name=$1 line=$2 secs=${3:-5}
  local fd_in=${proc_in[$name]:-} fd_out=${proc_out[$name]:-} log=${proc_log[$name]:-/dev/null}
  local deadline reply partial='' status
  [[ -n $fd_in ]] || die "internal: $name was not started with spawn_controlled"
  deadline=$(($(now_us) + secs * 1000000))
  printf 'control> %s\n' "$line" >>"$log"
  printf '%s\n' "$line" >&"$fd_in"
  while :; do
    status=0
    IFS= read -r -t 0.2 -u "$fd_out" reply || status=$?
    if ((status == 0)); then
      reply=$partial$reply
      partial=
      printf 'control< %s\n' "$reply" >>"$log"
      case $reply in
        ok | "ok "*) return 0 ;;
        error | "error "*) reply=${reply#error} && die "$name refused \"$line\":${reply:- (no reason given)}$(log_tail "$log")" ;;
      esac
      continue
    fi
    # A timed-out read keeps what it got of an unfinished line in `reply`.
    ((status > 128)) && partial+=$reply
    ! proc_exited "$name" ||
      die "$name exited (status $proc_status) before acknowledging \"$line\"$(log_tail "$log")"
    (($(now_us) < deadline)) ||
      die "$name did not acknowledge \"$line\" within ${secs} s (no \"ok\" line on its stdout)$(log_tail "$log")"
  done
}

# Polls COMMAND every 0.2 s. Dies when NAME (a spawned process, or any word) exits first, or
# when SECONDS pass, with "NAME did not come up (WHAT)".
wait_until() { # NAME SECONDS WHAT COMMAND...
  local name=$1 secs=$2 what=$3 deadline log
  shift 3
  log=${proc_log[$name]:-}
  deadline=$(($(now_us) + secs * 1000000))
  until "$@"; do
    ! proc_exited "$name" || die "$name exited (status $proc_status) before $what${log:+$(log_tail "$log")}"
    (($(now_us) < deadline)) || die "$name did not come up within ${secs} s ($what)${log:+$(log_tail "$log")}"
    sleep 0.2
  done
}

wait_tcp() { # NAME PORT [SECONDS]
  wait_until "$1" "${3:-15}" "listening on 127.0.0.1:$2" tcp_open "$2"
}

wait_http() { # NAME URL [SECONDS]
  wait_until "$1" "${3:-20}" "answering $2" http_ok "$2"
}

http_ok() { # URL: answers 2xx within 2 s
  curl -fs -o /dev/null --max-time 2 "$1" 2>/dev/null
}

stop_proc() { # NAME [GRACE]: TERM, then KILL after GRACE seconds (default 5; 0: KILL at once)
  local name=$1 grace=${2:-5} pid deadline
  pid=${proc_pid[$name]:-}
  [[ -n $pid ]] || return 0
  if ((grace > 0)); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_us) + grace * 1000000))
    while kill -0 "$pid" 2>/dev/null && (($(now_us) < deadline)); do sleep 0.1; done
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "proc_pid[$name]"
  close_control "$name"
}

close_control() { # NAME
  local fd
  for fd in "${proc_in[$1]:-}" "${proc_out[$1]:-}"; do
    [[ -z $fd ]] || exec {fd}>&-
  done
  unset "proc_in[$1]" "proc_out[$1]"
}

# Everything still running: TERM all at once, KILL what is left after 5 s.
stop_all() {
  local name pid deadline alive
  for pid in "${proc_pid[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$(($(now_us) + 5000000))
  while (($(now_us) < deadline)); do
    alive=
    for pid in "${proc_pid[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ -n $alive ]] || break
    sleep 0.1
  done
  for name in "${!proc_pid[@]}"; do stop_proc "$name" 0; done
}

lib_exit() {
  local status=$?
  trap - EXIT
  # A background child signalled between fork and exec still has these traps: it must not
  # clean up after the script.
  [[ $BASHPID == "$$" ]] || exit "$status"
  stop_all
  rm -rf "$lib_tmp"
  if declare -F on_exit >/dev/null; then on_exit "$status" || true; fi
  exit "$status"
}
trap lib_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
