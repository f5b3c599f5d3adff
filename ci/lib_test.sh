#!/usr/bin/env bash
# shellcheck disable=SC2016 # the scripts under test are single-quoted: they expand in the child bash
# Tests for ci/lib.sh: the port allocator, the waits' deadlines and failure messages, the
# control protocol (`ok` / `error` / silence / exit) against small fakes, and cleanup at exit.
# Each failure case runs in its own bash, so its `die` is observed as an exit status and a
# message. About 10 s; needs bash, curl and python3 (for one HTTP server).
#
#   bash ci/lib_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
check() { # DESCRIPTION COMMAND...
  if "${@:2}"; then
    passed=$((passed + 1))
    printf 'ok   %s\n' "$1"
  else
    failed=$((failed + 1))
    printf 'FAIL %s\n     last run: status %s, output:\n' "$1" "$status"
    printf '       | %s\n' "${out//$'\n'/$'\n       | '}"
  fi
}
contains() { [[ $1 == *"$2"* ]]; }
not_contains() { [[ $1 != *"$2"* ]]; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lib-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs SCRIPT in a fresh bash that sources ci/lib.sh; sets `status` and `out` (stdout+stderr)
# and how long it took in `took_ms`.
status=0
out=
took_ms=0
run() { # SCRIPT
  local t0=${EPOCHREALTIME//[!0-9]/}
  status=0
  out=$(bash -c "set -euo pipefail; lib_name=t; source ci/lib.sh; $1" 2>&1) || status=$?
  took_ms=$(((${EPOCHREALTIME//[!0-9]/} - t0) / 1000))
}

# ---- free_port
run 'for i in $(seq 40); do free_port; done'
check "free_port succeeds" test "$status" -eq 0
check "free_port never repeats a port, even across \$(...) calls" \
  test "$(sort -u <<<"$out" | wc -l)" -eq 40
low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range)
in_range=1
while read -r p; do ((p >= 10000 && p < low)) || in_range=; done <<<"$out"
check "free_port stays between 10000 and the ephemeral range ($low)" test -n "$in_range"

# A port someone listens on is never handed out: occupy one, then draw many.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$work/busy.port" &
busy_pid=$!
for _ in $(seq 50); do [[ -s $work/busy.port ]] && break; sleep 0.1; done
busy=$(cat "$work/busy.port")
run "tcp_open $busy && echo open; tcp_open 1 || echo closed"
check "tcp_open sees a listener and a closed port" test "$out" = $'open\nclosed'
kill "$busy_pid"
wait "$busy_pid" 2>/dev/null || true

# ---- waits: deadline, early exit, success
run 'spawn quiet "$lib_tmp/quiet.log" bash -c "echo starting up; echo still starting; sleep 30"
     wait_tcp quiet "$(free_port)" 1'
check "wait_tcp fails when nothing listens by the deadline" test "$status" -ne 0
check "  ... naming what never came up" contains "$out" "quiet did not come up within 1 s (listening on 127.0.0.1:"
check "  ... with the tail of its log" contains "$out" "    still starting"
check "  ... after about the deadline (${took_ms} ms)" test "$took_ms" -lt 4000

run 'spawn crash "$lib_tmp/crash.log" bash -c "echo cannot bind >&2; exit 3"
     wait_tcp crash "$(free_port)" 20'
check "wait_tcp fails when the process exits first" contains "$out" "crash exited (status 3) before listening"
check "  ... at once, not at the deadline (${took_ms} ms)" test "$took_ms" -lt 5000
check "  ... with its log" contains "$out" "    cannot bind"

run 'port=$(free_port)
     spawn web "$lib_tmp/web.log" python3 -m http.server --bind 127.0.0.1 "$port"
     wait_http web "http://127.0.0.1:$port/" 20 && echo up'
check "wait_http returns once the URL answers" test "$status:$out" = "0:up"

run 'wait_until nothing 1 "the flag file" test -e "$lib_tmp/never"'
check "wait_until without a process dies at the deadline" \
  contains "$out" "nothing did not come up within 1 s (the flag file)"

# ---- control: the acknowledgement protocol
# The fakes read control lines on stdin and answer on stdout as mongo-wire --stdin-control does.
fake_ok='while IFS= read -r l; do printf "ok %s\n" "$l"; done'
run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c '$fake_ok'
     control fake 'latency 20' && control fake 'latency 0' && echo done; cat \"\$lib_tmp/fake.log\""
check "control returns on an ok line" test "$status" -eq 0
check "  ... and records each line and reply in the log" \
  test "$out" = $'done\ncontrol> latency 20\ncontrol< ok latency 20\ncontrol> latency 0\ncontrol< ok latency 0'

run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c 'read -r l; echo \"error unknown control command \\\"\$l\\\"\"; sleep 30'
     control fake 'latnecy 20'; echo not reached"
check "control dies on an error line" test "$status" -ne 0
check "  ... quoting the reply" contains "$out" "fake refused \"latnecy 20\": unknown control command"
check "  ... and stops there" not_contains "$out" "not reached"

run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c 'read -r l; echo \"applying \$l\" >&2; sleep 30'
     control fake 'latency 20' 1"
check "control dies when no ok comes within its deadline" \
  contains "$out" "fake did not acknowledge \"latency 20\" within 1 s"
check "  ... with the log tail" contains "$out" "    applying latency 20"
check "  ... after about the deadline (${took_ms} ms)" test "$took_ms" -lt 4000

run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c 'read -r l; exit 2'
     control fake 'latency 20' 20"
check "control dies at once when the process exits" contains "$out" "fake exited (status 2) before acknowledging"
check "  ... not at the deadline (${took_ms} ms)" test "$took_ms" -lt 5000

run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c 'read -r l; echo chatter; printf o; sleep 0.5; echo \"k \$l\"; sleep 30'
     control fake 'latency 7' && cat \"\$lib_tmp/fake.log\""
check "control skips other lines and joins a reply split across reads" \
  test "$out" = $'control> latency 7\ncontrol< chatter\ncontrol< ok latency 7'

# Acknowledged means applied: a fake that takes 0.5 s to apply (and only then answers) is
# waited for, with no sleep in the caller.
run "spawn_controlled fake \"\$lib_tmp/fake.log\" bash -c 'read -r l; sleep 0.5; touch \"\$1\"; echo ok; sleep 30' _ \"\$lib_tmp/applied\"
     control fake 'latency 1' && test -e \"\$lib_tmp/applied\" && echo applied"
check "control returns only after the fake applied the line" test "$status:$out" = "0:applied"

# ---- cleanup at exit
run 'spawn sleeper "$lib_tmp/s.log" sleep 300; echo "${proc_pid[sleeper]}"
     spawn_controlled fake "$lib_tmp/f.log" bash -c "trap \"\" TERM; while read -r l; do echo ok; done"
     echo "${proc_pid[fake]}"; echo "$lib_tmp"'
mapfile -t lines <<<"$out"
gone=1
for pid in "${lines[0]}" "${lines[1]}"; do ! kill -0 "$pid" 2>/dev/null || gone=; done
check "spawned processes are stopped at exit (one ignores TERM: KILLed)" test -n "$gone"
check "  ... and the helper's temporary directory removed" test ! -e "${lines[2]}"

run 'on_exit() { echo "on_exit $1"; }; spawn s "$lib_tmp/s.log" sleep 300; exit 7'
check "on_exit runs with the script's status, which is kept" test "$status:$out" = "7:on_exit 7"

run 'spawn s "$lib_tmp/s.log" sleep 300; pid=${proc_pid[s]}; stop_proc s
     kill -0 "$pid" 2>/dev/null || echo "stopped ${proc_pid[s]:-and forgotten}"'
check "stop_proc stops and forgets a process" test "$out" = "stopped and forgotten"

echo "lib_test: $passed passed, $failed failed"
((failed == 0))
