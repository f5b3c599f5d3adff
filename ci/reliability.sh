#!/usr/bin/env bash
# The reliability suite: the daemon under overload, database faults, config churn, hostile and
# slow clients, shutdown and a long soak — black-box, against the built binaries and mongo-wire
# (with --stdin-control for faults), on loopback. Every check prints its figures and a verdict
# line, `reliability: PASS <check>: ...` or `reliability: FAIL <check>: ...`; the run exits 1 if
# any check failed. RELIABILITY.md records the figures of a run and these commands.
#
#   bash ci/reliability.sh overload [sync|async|both]     3x measured capacity, then recovery
#   bash ci/reliability.sh faults [sync|async|both] [refuse|stall|drop|all]
#                                                         DB faults under load, then recovery
#   bash ci/reliability.sh boundary [sync|async|both]     request_timeout 1 s far past capacity:
#                                                         504s and 503s, never a 500
#   bash ci/reliability.sh reload                         200 mutated config files, live
#   bash ci/reliability.sh fuzz                           10,000 hostile HTTP requests
#   bash ci/reliability.sh sigterm [sync|async|both]      SIGTERM under load, order writes
#                                                         under connection drops, checked
#                                                         against the stored documents
#   bash ci/reliability.sh slowloris                      slow heads and bodies, both listeners
#   bash ci/reliability.sh soak [SECONDS]                 60% of capacity, mode flip every 30 s
#   bash ci/reliability.sh quick                          CI: fuzz, sync overload, boundary,
#                                                         sync outage
#   bash ci/reliability.sh all                            everything but the soak
#
# The admin-token matrix is an integration test: cargo test --test it reliability::
#
# Environment: RELIABILITY_PROFILE (release; `dev` uses target/debug), RELIABILITY_NO_BUILD=1
# (use the binaries as built), RELIABILITY_LATENCY_MS (20), RELIABILITY_OUT (where logs and
# figures go; default target/reliability/<timestamp>), RELIABILITY_SEED (1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
command=${1:-}
case $command in
  overload | faults | boundary | reload | fuzz | sigterm | slowloris | quick | all) max_seconds=2400 ;;
  soak) max_seconds=$((${2:-600} + 600)) ;;
  *) usage ;;
esac
# Bound the run: past max_seconds, timeout(1) sends TERM and ci/lib.sh cleans up.
if [[ -z ${RELIABILITY_BOUNDED:-} ]]; then
  RELIABILITY_BOUNDED=1 exec timeout --kill-after=15 "$max_seconds" bash "$0" "$@"
fi

lib_name=reliability
# shellcheck source=ci/lib.sh
source ci/lib.sh

profile=${RELIABILITY_PROFILE:-release}
latency_ms=${RELIABILITY_LATENCY_MS:-20}
seed=${RELIABILITY_SEED:-1}
out=${RELIABILITY_OUT:-$repo/target/reliability/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
failed=0
passed=0

log() { printf 'reliability: %s\n' "$*" >&2; }
# verdict CHECK PASS|FAIL FIGURES...: the one line per check that the summary keeps.
verdict() {
  local check=$1 result=$2
  shift 2
  if [[ $result == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf 'reliability: %s %s: %s\n' "$result" "$check" "$*" | tee -a "$summary"
}
on_exit() { # STATUS: after ci/lib.sh has stopped every process
  echo "reliability: $passed passed, $failed failed; logs and figures in $out"
  [[ -s $summary ]] && cat "$summary" >&2
  return 0
}

for tool in curl jq awk; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

# --- binaries ---------------------------------------------------------------------------------
case $profile in
  release) bin_dir=$repo/target/release ;;
  dev | debug) profile=dev bin_dir=$repo/target/debug ;;
  *) die "RELIABILITY_PROFILE must be release or dev, not $profile" ;;
esac
[[ -z ${CARGO_TARGET_DIR:-} ]] || bin_dir=$CARGO_TARGET_DIR/${bin_dir##*/}
if [[ ${RELIABILITY_NO_BUILD:-0} != 1 ]]; then
  log "building ($profile): reclaimd, mongo-wire, examples/reliability"
  nice -n 10 cargo build -q --profile "$profile" -p reclaimd -p mongo-wire --bins --example reliability >&2 ||
    die "cargo build failed"
fi
reclaimd=$bin_dir/reclaimd
mongo_wire=$bin_dir/mongo-wire
helper=$bin_dir/examples/reliability
for b in "$reclaimd" "$mongo_wire" "$helper"; do
  [[ -x $b ]] || die "$b is missing: cargo build --profile $profile -p reclaimd -p mongo-wire --bins --example reliability"
done
log "binaries from $bin_dir; output in $out"

# --- processes --------------------------------------------------------------------------------
mongo_uri=
# start_mongo: mongo-wire with the latency, seeded with 1000 users and 20,000 orders.
start_mongo() {
  local port
  port=$(free_port)
  spawn_controlled mongo-wire "$out/mongo-wire.log" "$mongo_wire" --listen "127.0.0.1:$port" \
    --latency-ms "$latency_ms" --stdin-control
  wait_tcp mongo-wire "$port" 15
  mongo_uri="mongodb://127.0.0.1:$port/?directConnection=true"
  RECLAIMD_MONGODB__URI=$mongo_uri timeout 180 "$reclaimd" seed --users 1000 --orders 20000 \
    >"$out/seed.log" 2>&1 || die "reclaimd seed failed$(log_tail "$out/seed.log")"
}

# start_daemon NAME MODE [VAR=VALUE...]: `reclaimd serve` in MODE with one sync worker and
# one async thread (the README's comparison), spans off, its config file at $out/NAME.toml
# (watched: edit it to reload); extra settings as environment. Sets app, admin, app_addr,
# admin_addr and daemon_pid.
app='' admin='' app_addr='' admin_addr='' daemon_pid=''
start_daemon() {
  local name=$1 mode=$2 app_port admin_port
  shift 2
  app_port=$(free_port)
  admin_port=$(free_port)
  printf 'mode = "%s"\n\n[telemetry]\nspans = false\n' "$mode" >"$out/$name.toml"
  spawn "$name" "$out/$name.log" env -u OTEL_EXPORTER_OTLP_ENDPOINT -u RECLAIMD_MODE \
    RECLAIMD_SERVER__LISTEN="127.0.0.1:$app_port" RECLAIMD_ADMIN__LISTEN="127.0.0.1:$admin_port" \
    RECLAIMD_MONGODB__URI="$mongo_uri" RECLAIMD_SYNC__WORKERS=1 RECLAIMD_ASYNC__WORKER_THREADS=1 \
    RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 "$@" "$reclaimd" serve --config "$out/$name.toml"
  daemon_pid=${proc_pid[$name]}
  app_addr=127.0.0.1:$app_port
  admin_addr=127.0.0.1:$admin_port
  app=http://$app_addr
  admin=http://$admin_addr
  wait_http "$name" "$admin/readyz" 30
}

# metric SAMPLE_REGEX: the sum of the samples whose name-and-labels match (0 if none).
metric() {
  curl -fsS --max-time 5 "$admin/metrics" |
    awk -v re="$1" '$1 ~ "^" re "$" { s += $2 } END { printf "%.0f\n", s + 0 }'
}

# jget FILE FILTER: one value from a `reclaimd load --json` report (first target).
jget() { jq -r ".targets[0]$2" "$1"; }

# load_errors FILE: "503:12 504:0 ..." of a load report.
load_errors() { jq -r '.targets[0].errors | to_entries | map("\(.key):\(.value)") | join(",") | if . == "" then "none" else . end' "$1"; }

# fge A B: A >= B, as decimals.
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

alive() { # NAME: the process is still running
  local pid=${proc_pid[$1]:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

no_panic() { # LOG
  ! grep -qiE 'panicked|RUST_BACKTRACE' "$1"
}

measure_capacity() { # MODE → prints req/s (2xx) of the closed-loop run
  local mode=$1 concurrency=4
  [[ $mode == async ]] && concurrency=64
  "$helper" capacity --url "$app" --concurrency "$concurrency" --for 10s >"$out/capacity-$mode.txt" ||
    die "capacity run failed"
  sed -n 's/^capacity_rps=\([0-9.]*\).*/\1/p' "$out/capacity-$mode.txt"
}

# --- overload ---------------------------------------------------------------------------------
# Capacity first (closed loop), then 3x that offered open-loop for DURATION, then a probe of
# the report route from the end of the overload on: goodput, p99 of what was served, errors by
# kind, and how soon a request was answered in normal time again.
overload() { # MODE [DURATION_S]
  local mode=$1 duration=${2:-30} capacity rate report
  local name=overload-$mode
  start_daemon "$name" "$mode"
  "$helper" probe --url "$app/api/users/1/report" --for 3s --out "$out/$name.baseline" >/dev/null
  capacity=$(measure_capacity "$mode")
  rate=$(awk -v c="$capacity" 'BEGIN { printf "%.0f", 3 * c }')
  log "$name: capacity $capacity req/s (closed loop, $(cat "$out/capacity-$mode.txt")); offering $rate req/s for ${duration}s"
  report=$out/$name.json
  local load_start end_us
  load_start=$(now_us)
  "$reclaimd" load --target "$app" --rate "$rate" --duration "${duration}s" --mix user=1,report=1 \
    --timeout 15s --json "$report" >"$out/$name.load.txt" 2>"$out/$name.load.log" &
  local load_pid=$!
  end_us=$((load_start + duration * 1000000))
  # The probe starts a second before the schedule ends and runs 12 s past it.
  sleep "$((duration - 1))"
  "$helper" probe --url "$app/api/users/1/report" --for 13s --out "$out/$name.probe" >"$out/$name.probe.txt"
  wait "$load_pid" || die "reclaimd load failed$(log_tail "$out/$name.load.log")"
  local ok elapsed goodput ratio p99 e500 eio errors recovery shed_wait server500
  ok=$(jget "$report" .ok)
  goodput=$(printf "%.1f" "$(jget "$report" .throughput_rps)")
  elapsed=$(printf "%.1f" "$(jget "$report" .elapsed_s)")
  ratio=$(awk -v g="$goodput" -v c="$capacity" 'BEGIN { printf "%.2f", g / c }')
  p99=$(jget "$report" .latency_ms.p99)
  e500=$(jget "$report" '.errors["500"] // 0')
  eio=$(jget "$report" '.errors.io // 0')
  errors=$(load_errors "$report")
  recovery=$("$helper" recovery --probe "$out/$name.probe" --end-us "$end_us" --baseline "$out/$name.baseline") || true
  shed_wait=$(metric 'reclaimd_shed_total\{mode="'"$mode"'",reason="queue_wait"\}')
  server500=$(metric 'reclaimd_requests_total\{.*status="500"\}')
  local result=PASS why=()
  fge "$ratio" 0.9 || why+=("goodput under 90% of capacity")
  fge 5000 "$p99" || why+=("p99 over request_timeout/2")
  ((e500 == 0 && server500 == 0)) || why+=("500s")
  ((eio == 0)) || why+=("client io errors")
  [[ $recovery == *PASS ]] || why+=("slow recovery")
  alive "$name" || why+=("daemon died")
  ((${#why[@]} == 0)) || result=FAIL
  local served
  served=$(jq -r '.targets[0].routes | to_entries | map("\(.key) \(.value.count)") | join(", ")' "$report")
  verdict "overload $mode" "$result" "capacity ${capacity} req/s, offered ${rate} req/s for ${duration}s:" \
    "goodput $goodput req/s = ${ratio}x capacity ($ok ok in ${elapsed}s: $served), p99 of served ${p99} ms," \
    "errors $errors (client io errors $eio), shed queue_wait $shed_wait, server 500s $server500; after: $recovery" \
    "${why[*]:+-- ${why[*]}}"
  stop_proc "$name"
}

# --- faults -----------------------------------------------------------------------------------
# Under open-loop load at half the measured capacity: 8 s normal, 10 s of FAULT, 12 s after.
# refuse: MongoDB down (listener and connections closed); stall: commands read and never
# answered; drop: every connection closed, once a second. A probe of the user route runs
# throughout; recovery is when its answers were normal (2xx within 2x the pre-fault p99)
# again, counted from the end of the fault.
fault() { # MODE FAULT
  local mode=$1 fault=$2 capacity rate report
  local name=fault-$mode-$fault
  start_daemon "$name" "$mode"
  capacity=$(measure_capacity "$mode")
  rate=$(awk -v c="$capacity" 'BEGIN { printf "%.0f", c / 2 }')
  report=$out/$name.json
  "$reclaimd" load --target "$app" --rate "$rate" --duration 30s --mix user=1,report=1 \
    --timeout 15s --json "$report" >"$out/$name.load.txt" 2>"$out/$name.load.log" &
  local load_pid=$! probe_pid t0 start_us end_us
  "$helper" probe --url "$app/api/users/1" --for 32s --out "$out/$name.probe" >"$out/$name.probe.txt" &
  probe_pid=$!
  t0=$(now_us)
  sleep 8
  start_us=$(now_us)
  case $fault in
    refuse | stall)
      control mongo-wire "$fault on"
      sleep 10
      control mongo-wire "$fault off"
      ;;
    drop)
      local i
      for i in $(seq 10); do
        control mongo-wire drop
        sleep 1
      done
      ;;
  esac
  end_us=$(now_us)
  log "$name: $fault from t=$(((start_us - t0) / 1000)) ms to t=$(((end_us - t0) / 1000)) ms, load $rate req/s"
  wait "$load_pid" || die "reclaimd load failed$(log_tail "$out/$name.load.log")"
  wait "$probe_pid" || true
  local recovery errors e500 server500 ready
  recovery=$("$helper" recovery --probe "$out/$name.probe" --end-us "$end_us" --baseline-before-us "$start_us") || true
  errors=$(load_errors "$report")
  e500=$(jget "$report" '.errors["500"] // 0')
  server500=$(metric 'reclaimd_requests_total\{.*status="500"\}')
  ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$admin/readyz" || true)
  local during
  during=$(awk -v s="$start_us" -v e="$end_us" '$2 >= s && $2 <= e { n[$3]++ } END { for (k in n) printf "%s:%d ", k, n[k] }' "$out/$name.probe")
  local result=PASS why=()
  [[ $recovery == *PASS ]] || why+=("slow recovery")
  ((e500 == 0 && server500 == 0)) || why+=("500s")
  [[ $ready == 200 ]] || why+=("not ready after")
  alive "$name" || why+=("daemon died")
  ((${#why[@]} == 0)) || result=FAIL
  verdict "fault $fault $mode" "$result" "load $rate req/s (half of ${capacity}); load outcome $(jget "$report" .ok) ok," \
    "errors $errors; probe statuses during the fault ${during:-none}; after: $recovery; readyz $ready" \
    "${why[*]:+-- ${why[*]}}"
  stop_proc "$name"
}

# --- reload -----------------------------------------------------------------------------------
# 200 config files written over the watched one: valid ones (mode and workload changes, keys
# that need a restart), invalid ones (bad types, unknown keys, out-of-range values), valid
# files cut short at a random byte, empty and blank files, garbage, and valid files written
# in two steps 50 ms apart (caught mid-write). Each must be applied or rejected whole, as
# `reclaimd check-config` judges it (an empty file is rejected on reload), counted once in
# reclaimd_config_reloads_total, and the daemon must keep serving in the mode of the last
# valid file.
reload_check() {
  local name=reload count=${1:-200}
  start_daemon "$name" sync
  local file=$out/$name.toml candidate=$out/$name.candidate.toml
  # The daemon's environment, which overrides the file (a bad listen address in the file is
  # overridden, so the file is valid for this daemon).
  local env_args=(RECLAIMD_MONGODB__URI="$mongo_uri" RECLAIMD_SYNC__WORKERS=1 RECLAIMD_ASYNC__WORKER_THREADS=1
    RECLAIMD_SERVER__LISTEN="$app_addr" RECLAIMD_ADMIN__LISTEN="$admin_addr")
  local applied_mode=sync ok_before err_before i kind expect expect_mode mismatches=0 two_step=0
  declare -A kinds=()
  RANDOM=$seed
  ok_before=$(metric 'reclaimd_config_reloads_total\{result="ok"\}')
  err_before=$(metric 'reclaimd_config_reloads_total\{result="error"\}')
  for ((i = 1; i <= count; i++)); do
    mutate "$candidate"
    kind=$mutation
    kinds[$kind]=$((${kinds[$kind]:-0} + 1))
    # The oracle: what check-config says of the file, with the daemon's environment.
    if ! LC_ALL=C grep -q '[^[:space:]]' "$candidate"; then
      expect=error
    elif env "${env_args[@]}" "$reclaimd" check-config --config "$candidate" >"$out/$name.check" 2>&1; then
      expect=ok
      expect_mode=$(grep -o 'mode = [a-z]*' "$out/$name.check" | head -1 | awk '{ print $3 }')
      [[ $expect_mode == sync || $expect_mode == async ]] ||
        die "cannot read the mode from check-config's output: $(cat "$out/$name.check")"
    else
      expect=error
    fi
    if [[ $kind == two-step ]]; then
      local size half
      two_step=$((two_step + 1))
      size=$(wc -c <"$candidate")
      half=$((size / 2))
      head -c "$half" "$candidate" >"$file"
      sleep 0.05
      tail -c +"$((half + 1))" "$candidate" >>"$file"
    else
      cat "$candidate" >"$file"
    fi
    local want_ok=$ok_before want_err=$err_before got_ok got_err mode deadline
    if [[ $expect == ok ]]; then want_ok=$((ok_before + 1)); else want_err=$((err_before + 1)); fi
    deadline=$(($(now_us) + 5000000))
    while :; do
      got_ok=$(metric 'reclaimd_config_reloads_total\{result="ok"\}')
      got_err=$(metric 'reclaimd_config_reloads_total\{result="error"\}')
      ((got_ok + got_err > ok_before + err_before)) && break
      alive "$name" || die "the daemon died at mutation $i ($kind)$(log_tail "$out/$name.log")"
      (($(now_us) < deadline)) || break
      sleep 0.1
    done
    # Settle: a second reload of the same write would show up within a poll or two.
    sleep 0.3
    got_ok=$(metric 'reclaimd_config_reloads_total\{result="ok"\}')
    got_err=$(metric 'reclaimd_config_reloads_total\{result="error"\}')
    [[ $expect == ok ]] && applied_mode=$expect_mode
    mode=$(curl -fsS --max-time 5 "$admin/admin/mode" | jq -r .mode)
    if ((got_ok != want_ok || got_err != want_err)) || [[ $mode != "$applied_mode" ]]; then
      mismatches=$((mismatches + 1))
      log "reload $i ($kind): expected $expect (ok $want_ok, error $want_err, mode $applied_mode), got ok $got_ok, error $got_err, mode $mode"
      cp "$candidate" "$out/$name.mismatch-$i.toml"
    fi
    ok_before=$got_ok
    err_before=$got_err
  done
  local status served healthz
  served=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$app/api/users/1" || true)
  healthz=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$admin/healthz" || true)
  local k summary_kinds=
  for k in "${!kinds[@]}"; do summary_kinds+="$k:${kinds[$k]} "; done
  status=PASS
  ((mismatches == 0)) && alive "$name" && [[ $served == 200 && $healthz == 200 ]] && no_panic "$out/$name.log" || status=FAIL
  verdict "reload" "$status" "$count files (${summary_kinds% }): reloads ok $ok_before, rejected $err_before," \
    "$(grep -c 'mode flipped' "$out/$name.log") mode flips, $(grep -c 'need a restart' "$out/$name.log") logged as needing a restart;" \
    "mismatches with check-config or the mode $mismatches; after: GET user $served, healthz $healthz, daemon alive"
  stop_proc "$name"
}

# valid_config MODE: a random valid config file on stdout.
valid_config() {
  printf '# mutation\nmode = "%s"\n\n[workload]\nuser_compute_ms = %s.%s\nreport_compute_ms = %s.%s\n' \
    "$1" $((RANDOM % 2)) $((RANDOM % 10)) $((RANDOM % 3)) $((RANDOM % 10))
  printf 'order_compute_ms = 0.%s\n\n[telemetry]\nspans = false\n' $((RANDOM % 10))
  if ((RANDOM % 4 == 0)); then
    # Keys that need a restart: accepted, logged, not applied.
    printf '\n[limits]\nmax_queue = %s\nrequest_timeout = "%ss"\n' $((RANDOM % 2000 + 1)) $((RANDOM % 20 + 1))
  fi
}

# mutate FILE: writes one random config file to FILE and sets `mutation` to its kind. Not
# for $(...): a subshell draws from a freshly seeded RANDOM, so the run would not be
# reproducible.
mutation=
mutate() {
  local file=$1 mode kind cut
  if ((RANDOM % 2)); then mode=async; else mode=sync; fi
  case $((RANDOM % 10)) in
    0 | 1 | 2)
      kind=valid
      valid_config "$mode" >"$file"
      ;;
    3)
      kind=two-step
      valid_config "$mode" >"$file"
      ;;
    4 | 5)
      kind=invalid
      local bad=(
        'mode = 42' 'mode = "turbo"' 'mode = "ASYNC"' 'mode =' '[workload]\nuser_compute_ms = "fast"'
        '[bogus]\nkey = 1' 'unknown_top = true' '[limits]\nmax_queue = 0'
        '[limits]\nrequest_timeout = "0s"' '[limits]\nmax_queue_wait = "3h"'
        '[workload]\nreport_compute_ms = 20000' '[workload]\nuser_compute_ms = -1'
        '[sync]\nworkers = 0' '[server]\nmax_connections = 9223372036854775807'
        '[limits]\nrequest_timeout = "10000000000000000000s"' '[mongodb]\nuri = "http://x"'
        '[[workload]]' 'mode = "sync"\nmode = "async"' '[server]\nlisten = "nowhere"'
      )
      printf 'mode = "%s"\n' "$mode" >"$file"
      local line=${bad[RANDOM % ${#bad[@]}]}
      [[ $line == mode* ]] && : >"$file"
      printf '%b\n' "$line" >>"$file"
      ;;
    6 | 7)
      kind=truncated
      valid_config "$mode" >"$file.full"
      cut=$((RANDOM % $(wc -c <"$file.full")))
      head -c "$cut" "$file.full" >"$file"
      rm -f "$file.full"
      ;;
    8)
      kind=empty
      case $((RANDOM % 3)) in
        0) : >"$file" ;;
        1) printf '\n\n   \n' >"$file" ;;
        2) printf '\t \r\n' >"$file" ;;
      esac
      ;;
    9)
      kind=garbage
      local n=$((RANDOM % 200 + 1)) j hex bytes=''
      for ((j = 0; j < n; j++)); do
        printf -v hex '\\x%02x' $((RANDOM % 256))
        bytes+=$hex
      done
      printf '%b' "$bytes" >"$file"
      ;;
  esac
  mutation=$kind
}

# --- fuzz -------------------------------------------------------------------------------------
# 10,000 hostile requests (examples/reliability/hostile.rs) on both listeners, with short
# header and body deadlines so incomplete requests are cut quickly; then the daemon must still
# be up, serve normally, have answered no 500 and logged no panic.
fuzz() { # [COUNT]
  local name=fuzz count=${1:-10000}
  # Four workers: a fifth of the cases are requests the app serves, and one worker would
  # shed some of them (correctly, but the control requests must see service, not overload).
  start_daemon "$name" sync RECLAIMD_ADMIN__TOKEN=fuzz-token RECLAIMD_SYNC__WORKERS=4 \
    RECLAIMD_SERVER__HEADER_READ_TIMEOUT=1s RECLAIMD_LIMITS__BODY_READ_TIMEOUT=1s
  local result=PASS figures
  "$helper" hostile --app "$app_addr" --admin "$admin_addr" --token fuzz-token --count "$count" \
    --concurrency 32 --seed "$seed" --hang 6s >"$out/$name.txt" || result=FAIL
  figures=$(grep -v '^hostile: FAIL' "$out/$name.txt" | sed 's/^hostile: //' | paste -sd ';' -)
  grep '^hostile: FAIL' "$out/$name.txt" | head -10 >&2 || true
  local served healthz server500
  served=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$app/api/users/1" || true)
  healthz=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$admin/healthz" || true)
  server500=$(metric 'reclaimd_requests_total\{.*status="500"\}')
  alive "$name" && [[ $served == 200 && $healthz == 200 ]] && ((server500 == 0)) && no_panic "$out/$name.log" || result=FAIL
  verdict "fuzz" "$result" "$figures; after: GET user $served, healthz $healthz, server 500s $server500, daemon alive, no panic logged"
  stop_proc "$name"
}

# --- sigterm ----------------------------------------------------------------------------------
# Reads at 10 req/s and order writes at 10 req/s (below one sync worker's capacity, so
# nothing is shed for overload); mongo-wire drops every connection once a
# second from t=2 s to t=10 s; SIGTERM at t=10 s while both keep coming. The daemon must exit 0
# within drain_timeout, and every order answered 201 must be stored exactly once under the id
# it returned (read back through mongo-wire with the driver).
sigterm_check() { # MODE
  local mode=$1 name=sigterm-$1 base
  start_daemon "$name" "$mode"
  base=70000000
  [[ $mode == async ]] && base=71000000
  "$reclaimd" load --target "$app" --rate 10 --duration 14s --mix user=1,report=1 --timeout 15s \
    --json "$out/$name.json" >"$out/$name.load.txt" 2>"$out/$name.load.log" &
  local load_pid=$!
  "$helper" orders --url "$app" --rate 10 --for 14s --base "$base" --out "$out/$name.orders" >"$out/$name.orders.txt" &
  local orders_pid=$! i t_term exit_status=0 took_ms
  sleep 2
  for i in $(seq 8); do
    control mongo-wire drop
    sleep 1
  done
  t_term=$(now_us)
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || exit_status=$?
  took_ms=$((($(now_us) - t_term) / 1000))
  unset "proc_pid[$name]"
  wait "$load_pid" || true
  wait "$orders_pid" || true
  local check result=PASS why=()
  check=$("$helper" check-orders --mongo "$mongo_uri" --results "$out/$name.orders" --base "$base") || true
  echo "$check" >"$out/$name.check.txt"
  [[ $check == *PASS* ]] || why+=("stored orders do not match the answers")
  ((exit_status == 0)) || why+=("exit status $exit_status")
  ((took_ms < 17000)) || why+=("exit took longer than drain_timeout")
  local orders_500 load_500
  orders_500=$(awk '$2 == 500' "$out/$name.orders" | wc -l)
  load_500=$(jget "$out/$name.json" '.errors["500"] // 0')
  ((orders_500 == 0 && load_500 == 0)) || why+=("500s")
  no_panic "$out/$name.log" || why+=("panic logged")
  ((${#why[@]} == 0)) || result=FAIL
  verdict "sigterm $mode" "$result" "exit $exit_status after ${took_ms} ms; orders $(sed 's/^orders: //' "$out/$name.orders.txt");" \
    "reads $(jget "$out/$name.json" .ok) ok, errors $(load_errors "$out/$name.json"); ${check#check-orders: }" \
    "${why[*]:+-- ${why[*]}}"
}

# --- slowloris --------------------------------------------------------------------------------
# Slow heads and slow bodies, on the app listener (1000 connections) and on the admin listener
# (400, more than its 256 slots), each for 15 s, reopened as soon as the server cuts one. The
# health endpoints and a user lookup are probed throughout: every answer must be a 200 within
# 1 s, and every slow connection must be cut (header_read_timeout, body_read_timeout: 5 s).
slowloris_check() {
  local name=slowloris
  start_daemon "$name" sync RECLAIMD_ADMIN__TOKEN=slow-token
  local attack target conns kind request header result=PASS
  for attack in app-head app-body admin-head admin-body; do
    case $attack in
      app-*) target=$app_addr conns=1000 request="POST /api/orders" header= ;;
      admin-*) target=$admin_addr conns=400 request="PUT /admin/mode" header="Authorization: Bearer slow-token" ;;
    esac
    kind=${attack#*-}
    local probes=() p
    for p in healthz readyz user; do
      local url=$admin/$p
      [[ $p == user ]] && url=$app/api/users/1
      "$helper" probe --url "$url" --every 100ms --for 16s --timeout 10s --new-connections --out "$out/$name-$attack-$p.probe" \
        >"$out/$name-$attack-$p.txt" &
      probes+=($!)
    done
    local attack_ok=1
    "$helper" slowloris --addr "$target" --conns "$conns" --kind "$kind" --request "$request" \
      ${header:+--header "$header"} --for 15s --cut-within 8s >"$out/$name-$attack.txt" || attack_ok=
    for p in "${probes[@]}"; do wait "$p" || true; done
    local worst bad figures
    # The slowest probe answer, and any that was not a 200 within 1 s.
    worst=$(cat "$out/$name-$attack"-*.probe | awk '{ if ($4 > m) m = $4 } END { printf "%.0f", m }')
    bad=$(cat "$out/$name-$attack"-*.probe | awk '$3 != 200 || $4 > 1000' | wc -l)
    figures=$(sed 's/^slowloris //' "$out/$name-$attack.txt")
    local one=PASS
    [[ -n $attack_ok && $bad == 0 ]] && alive "$name" || one=FAIL
    [[ $one == PASS ]] || result=FAIL
    verdict "slowloris $attack" "$one" "$figures; probes (healthz, readyz, user): slowest ${worst} ms, $bad not a 200 within 1 s"
  done
  stop_proc "$name"
}

# --- timeout boundary -------------------------------------------------------------------------
# Issue 9's third reproduction: request_timeout 1 s, 100 req/s of user lookups for 10 s, far
# past one sync worker's capacity, so many requests reach their deadline while queued or in a
# call. Every one of them must be a 504 `timeout` or a 503 `overloaded`, never a 500.
boundary_check() { # MODE
  local mode=$1 report
  local name=boundary-$mode
  start_daemon "$name" "$mode" RECLAIMD_LIMITS__REQUEST_TIMEOUT=1s
  report=$out/$name.json
  "$reclaimd" load --target "$app" --rate 100 --duration 10s --mix user=1 --timeout 5s \
    --json "$report" >"$out/$name.load.txt" 2>"$out/$name.load.log" || true
  [[ -s $report ]] || die "reclaimd load wrote no report$(log_tail "$out/$name.load.log")"
  local errors e500 server500 timeouts other
  errors=$(load_errors "$report")
  e500=$(jget "$report" '.errors["500"] // 0')
  server500=$(metric 'reclaimd_requests_total\{.*status="500"\}')
  timeouts=$(metric 'reclaimd_shed_total\{mode="'"$mode"'",reason="timeout"\}')
  other=$(jq -r '.targets[0].errors | to_entries | map(select(.key != "503" and .key != "504") | .value) | add // 0' "$report")
  local result=PASS why=()
  ((e500 == 0 && server500 == 0)) || why+=("500s")
  ((other == 0)) || why+=("errors other than 503 and 504")
  alive "$name" || why+=("daemon died")
  ((${#why[@]} == 0)) || result=FAIL
  verdict "boundary $mode" "$result" "request_timeout 1s, 100 req/s of user for 10s: $(jget "$report" .ok) ok," \
    "errors $errors; server: timeout (504) $timeouts, 500s $server500" "${why[*]:+-- ${why[*]}}"
  stop_proc "$name"
}

# --- soak -------------------------------------------------------------------------------------
# SECONDS (600) of open-loop load at 60% of the sync capacity while the config file flips the
# mode every 30 s. RSS is sampled every 10 s; its slope (least squares, after the first minute)
# must stay under rss_limit_kib_per_min (below). No errors, every flip applied (one config
# reload each), and the daemon's own counts must match the client's: requests answered, 2xx.
soak() { # [SECONDS]
  local seconds=${1:-600} name=soak capacity rate
  start_daemon "$name" sync
  capacity=$(measure_capacity sync)
  rate=$(awk -v c="$capacity" 'BEGIN { printf "%.1f", 0.6 * c }')
  local before_total before_ok
  before_total=$(metric 'reclaimd_requests_total\{.*\}')
  before_ok=$(metric 'reclaimd_requests_total\{.*status="2[0-9][0-9]"\}')
  log "$name: capacity $capacity req/s; $rate req/s for ${seconds}s, mode flip every 30 s"
  "$reclaimd" load --target "$app" --rate "$rate" --duration "${seconds}s" --mix user=1,report=1 \
    --timeout 15s --json "$out/$name.json" >"$out/$name.load.txt" 2>"$out/$name.load.log" &
  local load_pid=$! t0 next_flip=30 next_sample=0 mode=sync flips=0 elapsed
  t0=$SECONDS
  : >"$out/$name.rss"
  # SECONDS RSS ANON FILE (KiB): anonymous memory (heap, stacks, allocator arenas) apart from
  # file-backed pages (the binary's code, paged in as new paths run).
  rss_sample() {
    echo "$1 $(awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s ", $2 }' "/proc/$daemon_pid/status")" >>"$out/$name.rss"
  }
  while ((SECONDS - t0 < seconds)); do
    elapsed=$((SECONDS - t0))
    if ((elapsed >= next_sample)); then
      rss_sample "$elapsed"
      next_sample=$((next_sample + 10))
    fi
    if ((elapsed >= next_flip)); then
      if [[ $mode == sync ]]; then mode=async; else mode=sync; fi
      sed -i "s/^mode = .*/mode = \"$mode\"/" "$out/$name.toml"
      flips=$((flips + 1))
      next_flip=$((next_flip + 30))
    fi
    alive "$name" || break
    sleep 1
  done
  wait "$load_pid" || die "reclaimd load failed$(log_tail "$out/$name.load.log")"
  rss_sample "$((SECONDS - t0))"
  local sent ok errors server_total server_ok reloads slope first last
  sent=$(jget "$out/$name.json" .sent)
  ok=$(jget "$out/$name.json" .ok)
  errors=$(jget "$out/$name.json" .errors_total)
  server_total=$(($(metric 'reclaimd_requests_total\{.*\}') - before_total))
  server_ok=$(($(metric 'reclaimd_requests_total\{.*status="2[0-9][0-9]"\}') - before_ok))
  reloads=$(metric 'reclaimd_config_reloads_total\{result="ok"\}')
  # KiB per minute, least squares over the samples after the first minute.
  slope_of() { # COLUMN
    awk -v c="$1" '$1 >= 60 { n++; sx += $1; sy += $c; sxx += $1 * $1; sxy += $1 * $c }
      END { if (n < 3) { print "nan"; exit } b = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "%.1f", b * 60 }' "$out/$name.rss"
  }
  slope=$(slope_of 2)
  first=$(awk '$1 >= 60 { print $2; exit }' "$out/$name.rss")
  last=$(tail -1 "$out/$name.rss" | awk '{ print $2 }')
  local result=PASS why=()
  ((errors == 0)) || why+=("client errors")
  ((server_total == sent && server_ok == ok)) || why+=("server counts differ from the client's")
  ((reloads == flips)) || why+=("reloads $reloads != flips $flips")
  [[ $slope != nan ]] && fge "$rss_limit_kib_per_min" "$slope" || why+=("RSS grows")
  alive "$name" || why+=("daemon died")
  ((${#why[@]} == 0)) || result=FAIL
  verdict "soak" "$result" "${seconds}s at $rate req/s (60% of $capacity), $flips mode flips:" \
    "client sent $sent, ok $ok, errors $errors ($(load_errors "$out/$name.json")), p99 $(jget "$out/$name.json" .latency_ms.p99) ms;" \
    "server answered $server_total, 2xx $server_ok; config reloads $reloads; RSS ${first} KiB at 1 min -> ${last} KiB," \
    "slope $slope KiB/min (limit $rss_limit_kib_per_min; anonymous $(slope_of 3), file-backed $(slope_of 4))" \
    "${why[*]:+-- ${why[*]}}"
  stop_proc "$name"
}
# A leak of one small allocation per request (100 B at the soak's ~16 req/s) grows RSS by
# about 94 KiB a minute; allocator noise stays well below this.
rss_limit_kib_per_min=64

modes() { # sync|async|both → the modes
  case ${1:-both} in
    both) echo sync async ;;
    sync | async) echo "$1" ;;
    *) die "mode must be sync, async or both, not $1" ;;
  esac
}

start_mongo
case $command in
  overload) for m in $(modes "${2:-both}"); do overload "$m"; done ;;
  faults)
    faults=${3:-all}
    [[ $faults == all ]] && faults="refuse stall drop"
    for m in $(modes "${2:-both}"); do for f in $faults; do fault "$m" "$f"; done; done
    ;;
  reload) reload_check "${2:-200}" ;;
  fuzz) fuzz "${2:-10000}" ;;
  sigterm) for m in $(modes "${2:-both}"); do sigterm_check "$m"; done ;;
  slowloris) slowloris_check ;;
  soak) soak "${2:-600}" ;;
  boundary) for m in $(modes "${2:-both}"); do boundary_check "$m"; done ;;
  quick)
    fuzz 10000
    overload sync 20
    boundary_check sync
    fault sync refuse
    ;;
  all)
    for m in sync async; do overload "$m"; done
    for m in sync async; do boundary_check "$m"; done
    for m in sync async; do for f in refuse stall drop; do fault "$m" "$f"; done; done
    reload_check 200
    fuzz 10000
    for m in sync async; do sigterm_check "$m"; done
    slowloris_check
    ;;
esac
((failed == 0))
