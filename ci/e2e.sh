#!/usr/bin/env bash
# End-to-end check of the observability stack, without Docker: what `docker compose up`
# runs, on loopback, with the binaries `cargo build` / `cargo test` already built.
#
#   mongo-wire (+latency) ◄── reclaimd-sync  (sync,  1 worker)  ◄─┐
#                         ◄── reclaimd-async (async, 1 thread)  ◄─┴─ reclaimd load (one schedule)
#                         ◄── reclaimd       (mode from a file, flipped sync → async mid-run) ◄── load
#   prometheus (Debian package) scrapes all three with the repo's prometheus.yml, rewritten
#   to loopback targets.
#
# Then the mode-flip annotation must fire, every PromQL query of every dashboard (Grafana
# variables substituted) must return data, each polled from the flip on until 45 s after the
# start (the target is 30 s; every result line says when it came), and the headline, the share
# of compute done inside other requests' DB waits, must be exactly 0 for one sync worker and
# above 0 for async. Every wait has a deadline; a process that never comes up fails the run,
# naming it, with its log.
#
# Environment: CARGO_TARGET_DIR (default target/), E2E_LATENCY_MS (20), E2E_RATE (20 req/s),
# E2E_KEEP=1 keeps the work directory (logs, Prometheus data) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
max_seconds=150 # hard bound on the whole run
# Bound the run: past max_seconds, timeout(1) sends TERM and the trap below cleans up.
if [[ -z ${E2E_BOUNDED:-} ]]; then
  E2E_BOUNDED=1 exec timeout --kill-after=15 "$max_seconds" bash "$0" "$@"
fi

# Processes, ports, waits and cleanup (stops what it spawned, then calls on_exit below).
lib_name=e2e
# shellcheck source=ci/lib.sh
source ci/lib.sh

latency_ms=${E2E_LATENCY_MS:-20}
rate=${E2E_RATE:-20}
data_deadline=45 # seconds after start; the issue asks for dashboards with data within 30 s
flip_at=20       # seconds after start; the flip annotation looks back 30 s

passed=0
failed=0
log() { printf 'e2e: %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); log "ok   $*"; }
not_ok() { failed=$((failed + 1)); log "FAIL $*"; }
die() { # replaces ci/lib.sh's, so its failures are counted and reported like the checks
  log "FAIL $*"
  failed=$((failed + 1))
  exit 1
}

for tool in prometheus promtool curl jq; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install -y prometheus curl jq)"
done

# --- binaries ---------------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=
for profile in release debug; do
  dir=$target_dir/$profile
  if [[ -x $dir/reclaimd && -x $dir/mongo-wire ]]; then
    # The newer build wins, so a stale release build does not mask a fresh debug one.
    if [[ -z $bin || $dir/reclaimd -nt $bin/reclaimd ]]; then bin=$dir; fi
  fi
done
[[ -n $bin ]] || die "no reclaimd and mongo-wire binaries in $target_dir/{release,debug}: run cargo build --workspace first"
log "binaries from $bin"

# --- processes and cleanup ----------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/reclaimd-e2e.XXXXXX")
on_exit() { # STATUS: after ci/lib.sh has stopped every process
  local status=$1 f
  ((status == 0 || failed > 0)) || failed=1 # a die in $(...) counted only in its subshell
  if [[ $status -ne 0 ]]; then
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      log "--- last lines of $(basename "$f")"
      tail -n 15 "$f" >&2 || true
    done
  fi
  if [[ ${E2E_KEEP:-0} == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
  echo "e2e: $passed passed, $failed failed"
}
trap 'log "stopped (time limit or signal)"; exit 124' TERM
start() { # name command...: runs command in the background, logging to $work/name.log
  local name=$1
  shift
  spawn "$name" "$work/$name.log" "$@"
}

mongo_port=$(free_port)
prom_port=$(free_port)

# --- MongoDB double with latency, demo data -----------------------------------------------------
start mongo-wire "$bin/mongo-wire" --listen "127.0.0.1:$mongo_port" --latency-ms "$latency_ms"
mongo_uri="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
wait_tcp mongo-wire "$mongo_port" 15
RECLAIMD_MONGODB__URI=$mongo_uri timeout 120 "$bin/reclaimd" seed --config config/reclaimd.toml \
  --users 1000 --orders 3000 >"$work/seed.log" 2>&1 || die "reclaimd seed failed"
ok "mongo-wire on :$mongo_port (+${latency_ms} ms per command), seeded"

# --- three daemons -------------------------------------------------------------------------------
# instance name → app port, admin port
declare -A app admin
main_config=$work/reclaimd.toml
sed 's/^mode = .*/mode = "sync"/' config/reclaimd.toml >"$main_config"
grep -q '^mode = "sync"' "$main_config" || die "config/reclaimd.toml has no top-level mode line to flip"
for instance in reclaimd-sync reclaimd-async reclaimd; do
  app[$instance]=$(free_port)
  admin[$instance]=$(free_port)
  env_mode=()
  config=config/reclaimd.toml
  case $instance in
    reclaimd-sync) env_mode=(RECLAIMD_MODE=sync) ;;
    reclaimd-async) env_mode=(RECLAIMD_MODE=async) ;;
    reclaimd) config=$main_config ;; # mode from the file, like the compose stack's main instance
  esac
  start "$instance" env -u OTEL_EXPORTER_OTLP_ENDPOINT -u RECLAIMD_MODE "${env_mode[@]}" \
    RECLAIMD_SERVER__LISTEN="127.0.0.1:${app[$instance]}" \
    RECLAIMD_ADMIN__LISTEN="127.0.0.1:${admin[$instance]}" \
    RECLAIMD_MONGODB__URI="$mongo_uri" \
    RECLAIMD_SYNC__WORKERS=1 RECLAIMD_ASYNC__WORKER_THREADS=1 \
    "$bin/reclaimd" serve --config "$config"
done
for instance in reclaimd-sync reclaimd-async reclaimd; do
  wait_http "$instance" "http://127.0.0.1:${admin[$instance]}/readyz" 30
done
ok "daemons ready: sync :${app[reclaimd-sync]}, async :${app[reclaimd-async]}, main :${app[reclaimd]}"

# --- Prometheus with the repo's config, on loopback ----------------------------------------------
prom_config=$work/prometheus.yml
sed -e "s#\"reclaimd-sync:9464\"#\"127.0.0.1:${admin[reclaimd-sync]}\"#" \
  -e "s#\"reclaimd-async:9464\"#\"127.0.0.1:${admin[reclaimd-async]}\"#" \
  -e "s#\"reclaimd:9464\"#\"127.0.0.1:${admin[reclaimd]}\"#" \
  -e "s#^  - prometheus/rules/#  - $repo/prometheus/rules/#" \
  prometheus.yml >"$prom_config"
if grep -nE '^\s*- targets: \["[^1]' "$prom_config"; then die "prometheus.yml has a target this script does not rewrite"; fi
promtool check config "$prom_config" >"$work/promtool.log" 2>&1 || die "rewritten prometheus.yml is invalid"
start prometheus prometheus --config.file="$prom_config" --storage.tsdb.path="$work/prometheus-data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn
wait_http prometheus "http://127.0.0.1:$prom_port/-/ready" 30
ok "prometheus on :$prom_port with prometheus.yml (targets rewritten to loopback)"

# --- load: one schedule for the side-by-side pair, another for the main instance -----------------
t0=$SECONDS
load_args=(--rate "$rate" --duration "${max_seconds}s" --arrival poisson --mix "report=2,user=1,order=0" --users 1000)
start load-side-by-side "$bin/reclaimd" load --target "http://127.0.0.1:${app[reclaimd-sync]}" \
  --target "http://127.0.0.1:${app[reclaimd-async]}" "${load_args[@]}"
start load-main "$bin/reclaimd" load --target "http://127.0.0.1:${app[reclaimd]}" "${load_args[@]}"

# --- queries -------------------------------------------------------------------------------------
# Grafana's variables, as Grafana substitutes them: $__rate_interval is at least 4 scrape
# intervals (5 s), the dashboards' own variables are regex matchers, here "all".
substitute() {
  # shellcheck disable=SC2016 # Grafana's $variables, matched literally
  sed -e 's/\$__rate_interval/30s/g' -e 's/\$__interval/15s/g' -e 's/\$__range/5m/g' \
    -e 's/\${\(instance\|mode\)\(:[a-z]*\)\{0,1\}}/.*/g' -e 's/\$\(instance\|mode\)\b/.*/g'
}
# query EXPR → prints the number of series with a real (non-NaN) value
query() {
  curl -fsS --max-time 10 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    jq '[.data.result[] | select(.value[1] != "NaN")] | length'
}
# query_value EXPR MODE → the value of the series with mode=MODE, or empty
query_value() {
  curl -fsS --max-time 10 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    jq -r --arg mode "$2" '.data.result[] | select(.metric.mode == $mode) | .value[1]'
}

# Every panel expression of every dashboard: "file<TAB>panel title<TAB>expr".
panel_queries=$work/panel-queries.tsv
for dashboard in grafana/dashboards/*.json; do
  jq -r --arg file "$(basename "$dashboard")" '
    [.panels[], (.panels[] | .panels[]?)] | .[] | . as $p
    | ($p.targets // [])[] | select(.expr != null)
    | [$file, $p.title, (.expr | gsub("\n"; " "))] | @tsv' "$dashboard"
done >"$panel_queries"
n_queries=$(wc -l <"$panel_queries")
((n_queries > 10)) || die "only $n_queries dashboard queries found"
if grep -q '\$' <(cut -f3 "$panel_queries" | substitute); then
  die "a dashboard uses a Grafana variable this script does not substitute: $(cut -f3 "$panel_queries" | substitute | grep '\$' | head -1)"
fi

# Flip the main instance's mode by editing its file, as a user edits config/reclaimd.toml.
# A point in the schedule, not a wait for anything: the main instance first serves flip_at
# seconds in sync mode, so its dashboards have a before and an after.
while ((SECONDS - t0 < flip_at)); do sleep 1; done
sed -i 's/^mode = "sync"/mode = "async"/' "$main_config"
log "flipped $main_config to async at t=$((SECONDS - t0))s"

# The flip is visible: the active mode changed, and the dashboard's "Mode → async" annotation
# query fires for the main instance (it looks back 30 s: poll from the flip until 25 s after).
annotation=$(jq -r '.annotations.list[] | select(.name == "Mode → async") | .expr' \
  grafana/dashboards/reclaimed-waiting-time.json | substitute)
[[ -n $annotation ]] || die "no \"Mode → async\" annotation in the main dashboard"
flip_seen=
while ((SECONDS - t0 < flip_at + 25)); do
  if [[ $(query "reclaimd_mode{instance=\"reclaimd\", mode=\"async\"} == 1") == 1 ]] &&
    [[ $(query "($annotation) and on (instance) reclaimd_build_info{instance=\"reclaimd\"}") == 1 ]]; then
    flip_seen=1
    break
  fi
  sleep 1
done
if [[ -n $flip_seen ]]; then
  ok "t=$((SECONDS - t0))s mode flip by file edit: reclaimd now async, flip annotation fires"
else
  not_ok "mode flip by file edit not visible (reclaimd_mode or the annotation query)"
fi

pending=$work/pending.tsv
cp "$panel_queries" "$pending"
while :; do
  : >"$work/still.tsv"
  while IFS=$'\t' read -r file title expr _; do
    n=$(query "$(printf '%s' "$expr" | substitute)" 2>"$work/query-error.log") || n=error
    if [[ $n =~ ^[0-9]+$ ]] && ((n > 0)); then
      ok "t=$((SECONDS - t0))s $file: \"$title\": $n series"
    else
      printf '%s\t%s\t%s\t%s\n' "$file" "$title" "$expr" "$n" >>"$work/still.tsv"
    fi
  done <"$pending"
  mv "$work/still.tsv" "$pending"
  [[ -s $pending ]] || break
  if ((SECONDS - t0 >= data_deadline)); then
    while IFS=$'\t' read -r file title expr n; do
      not_ok "$file: \"$title\" has no data after $((SECONDS - t0))s (result: $n): $expr"
    done <"$pending"
    break
  fi
  sleep 3
done

# The headline on the identically loaded pair: the share of compute done inside other requests'
# DB waits, over the whole run (exactly 0 with one sync worker).
share='sum by (mode) (reclaimd_reclaimed_seconds_total{instance=~"reclaimd-sync|reclaimd-async"})
  / sum by (mode) (reclaimd_compute_seconds_total{instance=~"reclaimd-sync|reclaimd-async"})'
sync_share=$(query_value "$share" sync)
async_share=$(query_value "$share" async)
log "share of compute inside other requests' DB waits: sync=${sync_share:-none} async=${async_share:-none}"
if [[ -n $sync_share && -n $async_share ]] &&
  awk -v a="$async_share" -v s="$sync_share" 'BEGIN { exit !(s == 0 && a > 0) }'; then
  ok "headline: sync (1 worker) reclaims exactly 0, async $async_share of its compute"
else
  not_ok "headline: expected sync = 0 < async (async=${async_share:-none}, sync=${sync_share:-none})"
fi

# For the record: what the identical schedule did to each of the pair.
for instance in reclaimd-sync reclaimd-async; do
  sel="instance=\"$instance\""
  served=$(query_value "sum by (mode) (reclaimd_requests_total{$sel})" "${instance#reclaimd-}")
  shed=$(query_value "sum by (mode) (reclaimd_shed_total{$sel})" "${instance#reclaimd-}")
  p99=$(query_value "histogram_quantile(0.99, sum by (mode, le) (rate(reclaimd_request_duration_seconds_bucket{$sel}[1m])))" "${instance#reclaimd-}")
  log "$instance: ${served:-0} requests served, ${shed:-0} shed, p99 ${p99:-?} s over the last minute"
done

((failed == 0)) || exit 1
