#!/usr/bin/env bash
# The reclaimd benchmark suite.
#
# Drives real processes — mongo-wire (the MongoDB test double, latency injected per command),
# `reclaimd serve`, `reclaimd load`, `wrk` (closed-loop saturation), a plain hyper hello-world
# (examples/hello.rs) and hello-db, plain hyper plus the async driver (examples/hello_db.rs) —
# and writes BENCHMARKS.md: the tables, bench/p1.svg, the machine it ran on and every command
# it ran. Each figure is a ratio of two measurements taken in the same run. About 15 minutes
# on 2 cores. Needs `wrk` (Debian: apt-get install wrk) for P3 and P5.
#
#   bench/run.sh                 # everything: the lecture replay (L), P1..P6, BENCHMARKS.md
#   bench/run.sh L P1 P5         # some experiments (BENCHMARKS.md shows what was run)
#   BENCH_SECONDS=3 bench/run.sh # shorter load points (a smoke run; numbers get noisier)
#
# Results (load reports as JSON, wrk summaries as JSON, process figures as key=value, logs)
# go to target/bench/, with manifest.toml: the settings below, which examples/bench_report.rs
# reads instead of knowing them itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Ports, deadline waits, mongo-wire's control line, and stopping every process at exit.
lib_name=bench
# shellcheck source=ci/lib.sh
source ci/lib.sh
OUT=${BENCH_OUT:-$ROOT/target/bench}

# ---- the experiments' settings: the one place they are written (manifest.toml carries them
# to the report).
SECS=${BENCH_SECONDS:-8}
SEED=${BENCH_SEED:-42}
# wait:compute 9:1 for the report route: two DB round trips of 18 ms, two 2 ms compute segments.
DB_MS=${BENCH_DB_MS:-18}
COMPUTE_MS=${BENCH_COMPUTE_MS:-2}
P1_RATES=(10 20 40 80 160 240 320)
P2_WORKERS=(1 4 16 64)
# Alternating rounds of every configuration compared at saturation or per request (P3, P5).
ROUNDS=3
# Closed-loop saturation: wrk with one thread and 32 connections on the quick route.
WRK_THREADS=1
WRK_CONNECTIONS=32
# P3: spans off, and spans on with parentbased_traceidratio at each ratio.
P3_RATIOS=(0.1 1.0)
P3_RATE=400
# P4: 10,000 requests waiting on a 5 s DB reply, RSS read at 4.6 s.
P4_DB_MS=5000
P4_RATE=2500
P4_SECONDS=4
P4_SAMPLE_AT=4.6
P4_POOL=200
P4_QUEUE_WAIT=600s
P4_TIMEOUT=1200s
P5_RATE=1000
P6_RATES=(2000 5000 10000 20000 40000 80000)
EXPERIMENTS=("$@")
[ ${#EXPERIMENTS[@]} -gt 0 ] || EXPERIMENTS=(L P1 P2 P3 P4 P5 P6)

want() { [[ " ${EXPERIMENTS[*]} " == *" $1 "* ]]; }
log() { printf '\n== %s\n' "$*" >&2; }

rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/commands.txt"

toml_list() { # ITEM...: a TOML array (numbers as they are, anything else quoted)
    local out='' item
    for item in "$@"; do
        [[ $item =~ ^[0-9]+(\.[0-9]+)?$ ]] || item="\"$item\""
        out+="${out:+, }$item"
    done
    printf '[%s]' "$out"
}
toml_strings() { # ITEM...: a TOML array of strings
    local out='' item
    for item in "$@"; do
        out+="${out:+, }\"$item\""
    done
    printf '[%s]' "$out"
}
cat >"$OUT/manifest.toml" <<MANIFEST
experiments = $(toml_strings "${EXPERIMENTS[@]}")
seconds = $SECS
seed = $SEED
db_ms = $DB_MS
compute_ms = $COMPUTE_MS
rounds = $ROUNDS
wrk_threads = $WRK_THREADS
wrk_connections = $WRK_CONNECTIONS
p1_rates = $(toml_list "${P1_RATES[@]}")
p2_workers = $(toml_list "${P2_WORKERS[@]}")
p3_ratios = $(toml_strings "${P3_RATIOS[@]}")
p3_rate = $P3_RATE
p4_db_ms = $P4_DB_MS
p4_rate = $P4_RATE
p4_seconds = $P4_SECONDS
p4_sample_at = $P4_SAMPLE_AT
p4_pool = $P4_POOL
p4_queue_wait = "$P4_QUEUE_WAIT"
p4_timeout = "$P4_TIMEOUT"
p5_rate = $P5_RATE
p6_rates = $(toml_list "${P6_RATES[@]}")
MANIFEST

# Every command whose numbers are reported is written down exactly as run.
cmd() {
    printf '%s\n' "$*" | sed "s|$ROOT/||g" >>"$OUT/commands.txt"
}

log "building (release)"
cargo build --release -p mongo-wire --bin mongo-wire >&2
cargo build --release -p reclaimd --bin reclaimd --example hello --example hello_db \
    --example bench_report --example driver_floor --example measure_cost --example timer_lateness >&2
BIN=$ROOT/target/release/reclaimd
MW=$ROOT/target/release/mongo-wire
HELLO=$ROOT/target/release/examples/hello
REPORT=$ROOT/target/release/examples/bench_report
DRIVER_FLOOR=$ROOT/target/release/examples/driver_floor
MEASURE_COST=$ROOT/target/release/examples/measure_cost
HELLO_DB=$ROOT/target/release/examples/hello_db
TIMER_LATENESS=$ROOT/target/release/examples/timer_lateness
if want P3 || want P5; then
    command -v wrk >/dev/null || die "P3 and P5 need wrk (Debian: apt-get install wrk)"
fi

# 10,000 concurrent requests (P4) need as many sockets in the generator and the daemon.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
    echo "warning: ulimit -n is $(ulimit -n); P4 needs about 12000 file descriptors" >&2
fi

# Free loopback ports (ci/lib.sh: random, below the ephemeral range, never the same twice).
MW_PORT=$(free_port)
APP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
HELLO_PORT=$(free_port)
HELLO_DB_PORT=$(free_port)
APP=http://127.0.0.1:$APP_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
HELLO_URL=http://127.0.0.1:$HELLO_PORT
HELLO_DB_URL=http://127.0.0.1:$HELLO_DB_PORT
MONGO_URI=mongodb://127.0.0.1:$MW_PORT

cpu_seconds() { # PID: user+system CPU seconds so far
    awk -v tck="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / tck }' "/proc/$1/stat"
}
status_kb() { # PID FIELD (VmRSS, VmHWM)
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# ---- machine
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' ':!bench/p1.svg' 2>/dev/null || echo ' (dirty)')"
    echo "cpu: $(lscpu 2>/dev/null | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), $(nproc) cores"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk: $({ wrk --version 2>&1 || true; } | head -n 1 | cut -d' ' -f1-2)"
} >"$OUT/machine.txt"

# ---- the MongoDB test double: one process for the whole run; its latency is changed through
# its standard input (`latency MS`), so the seeded data survives. With --stdin-control it
# answers each line with `ok ...` once applied (or `error ...`): the next load point starts
# only then, and a refused or unanswered change stops the run.
cmd "$MW --listen 127.0.0.1:$MW_PORT --latency-ms 0 --stdin-control"
spawn_controlled mongo-wire "$OUT/mongo-wire.log" \
    "$MW" --listen "127.0.0.1:$MW_PORT" --latency-ms 0 --stdin-control
wait_tcp mongo-wire "$MW_PORT"
db_latency() {
    cmd "(mongo-wire stdin) latency $1"
    control mongo-wire "latency $1"
}

# The hello-world baseline (P5), the generator's target for its own ceiling (P6), and the
# OTLP sink for span export (P3: it accepts and discards whatever is posted).
cmd "$HELLO 127.0.0.1:$HELLO_PORT 1"
spawn hello "$OUT/hello.log" "$HELLO" "127.0.0.1:$HELLO_PORT" 1
HELLO_PID=${proc_pid[hello]}
wait_http hello "$HELLO_URL/"

log "seeding"
cmd "RECLAIMD_MONGODB__URI=$MONGO_URI $BIN seed --users 1000 --orders 10000"
RECLAIMD_MONGODB__URI=$MONGO_URI "$BIN" seed --users 1000 --orders 10000 >"$OUT/seed.log" 2>&1 ||
    die "reclaimd seed failed$(log_tail "$OUT/seed.log")"

# The daemon's true floor for the quick route (P5): plain hyper and the async driver doing the
# same find_one, no instrumentation; 2 runtime threads, as many as the daemon's HTTP thread
# plus its async handler thread.
cmd "$HELLO_DB $MONGO_URI/?directConnection=true 127.0.0.1:$HELLO_DB_PORT 2"
spawn hello-db "$OUT/hello-db.log" "$HELLO_DB" "$MONGO_URI/?directConnection=true" \
    "127.0.0.1:$HELLO_DB_PORT" 2
HELLO_DB_PID=${proc_pid[hello-db]}
wait_http hello-db "$HELLO_DB_URL/api/users/1"

# ---- the daemon: started fresh for each configuration, settings as environment overrides.
DAEMON=      # its pid
DAEMON_NAME= # its name for ci/lib.sh (stop_proc, failure messages)
start_daemon() { # NAME VAR=VALUE...
    local name=$1
    shift
    local env=(RECLAIMD_MONGODB__URI="$MONGO_URI" RECLAIMD_SERVER__LISTEN="127.0.0.1:$APP_PORT"
        RECLAIMD_ADMIN__LISTEN="127.0.0.1:$ADMIN_PORT" RUST_LOG=warn "$@")
    cmd "${env[*]} $BIN serve --config config/reclaimd.toml   # $name"
    spawn "$name" "$OUT/$name.daemon.log" env "${env[@]}" "$BIN" serve --config config/reclaimd.toml
    DAEMON=${proc_pid[$name]}
    DAEMON_NAME=$name
    wait_http "$name" "$ADMIN/readyz"
    wait_http "$name" "$APP/api/users/1"
}
stop_daemon() { # [NAME]: TERM, KILL after 5 s
    stop_proc "${1:-$DAEMON_NAME}"
}

load() { # NAME load-args...: runs `reclaimd load`, JSON to $OUT/NAME.json
    local name=$1
    shift
    cmd "$BIN load $* --json $OUT/$name.json"
    "$BIN" load "$@" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.log" ||
        die "reclaimd load ($name) failed$(log_tail "$OUT/$name.log")"
    sed -n '4,5p' "$OUT/$name.txt" >&2
}

# A load run against the current daemon, also recording the daemon's CPU time during it.
load_with_cpu() { # NAME load-args...
    local name=$1 before after
    shift
    before=$(cpu_seconds "$DAEMON")
    load "$name" "$@"
    after=$(cpu_seconds "$DAEMON")
    echo "daemon_cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f", a - b }')" >"$OUT/$name.kv"
}

# Closed loop at saturation: a 1 s warm-up (connections, the driver's pool), then wrk for
# SECS on URL; its summary as JSON to NAME.wrk.json and PID's CPU seconds during it to NAME.kv.
saturate() { # NAME PID URL
    local name=$1 pid=$2 url=$3 before after
    local args=(-t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -s "$ROOT/bench/wrk-json.lua")
    wrk "${args[@]}" -d1s "$url" >/dev/null 2>&1 || true
    cmd "wrk ${args[*]} -d${SECS}s $url"
    before=$(cpu_seconds "$pid")
    wrk "${args[@]}" -d"${SECS}s" "$url" >"$OUT/$name.wrk.txt" 2>&1 ||
        die "wrk ($name) failed$(log_tail "$OUT/$name.wrk.txt")"
    after=$(cpu_seconds "$pid")
    grep '^{' "$OUT/$name.wrk.txt" | tail -n 1 >"$OUT/$name.wrk.json"
    echo "cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f", a - b }')" >"$OUT/$name.kv"
    grep 'Requests/sec' "$OUT/$name.wrk.txt" >&2 || true
}

COMMON=(--arrival poisson --seed "$SEED" --users 1000 --timeout 10s)
WORKLOAD=(RECLAIMD_WORKLOAD__REPORT_COMPUTE_MS="$COMPUTE_MS" RECLAIMD_LIMITS__MAX_QUEUE=100)

# ---- L: the lecture's three requests, replayed against sync (1 worker) and async (1 thread)
# daemons running side by side, 20 ms per DB command, default workload.
if want L; then
    db_latency 20
    log "lecture"
    start_daemon lecture-sync RECLAIMD_MODE=sync RECLAIMD_SYNC__WORKERS=1
    sync_url=$APP
    saved=("$APP_PORT" "$ADMIN_PORT")
    APP_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    APP=http://127.0.0.1:$APP_PORT
    ADMIN=http://127.0.0.1:$ADMIN_PORT
    start_daemon lecture-async RECLAIMD_MODE=async RECLAIMD_ASYNC__WORKER_THREADS=1
    cmd "$BIN scenario lecture --compare $sync_url $APP"
    "$BIN" scenario lecture --compare "$sync_url" "$APP" >"$OUT/lecture.txt" 2>"$OUT/lecture.log" ||
        die "reclaimd scenario lecture failed$(log_tail "$OUT/lecture.log")"
    cat "$OUT/lecture.txt" >&2
    stop_daemon
    stop_daemon lecture-sync
    APP_PORT=${saved[0]}
    ADMIN_PORT=${saved[1]}
    APP=http://127.0.0.1:$APP_PORT
    ADMIN=http://127.0.0.1:$ADMIN_PORT
fi

# ---- P1: sync with 1 worker vs async with 1 thread at wait:compute 9:1, offered load swept.
if want P1; then
    db_latency "$DB_MS"
    for mode in sync async; do
        log "P1 $mode"
        start_daemon "p1-$mode" RECLAIMD_MODE=$mode RECLAIMD_SYNC__WORKERS=1 \
            RECLAIMD_ASYNC__WORKER_THREADS=1 "${WORKLOAD[@]}"
        for rate in "${P1_RATES[@]}"; do
            load_with_cpu "p1-$mode-$rate" --target "$APP" --rate "$rate" --duration "${SECS}s" \
                --mix report=1 "${COMMON[@]}"
        done
        stop_daemon
    done
fi

# ---- P2: sync with N workers against the model N / (compute + wait).
if want P2; then
    db_latency "$DB_MS"
    for n in "${P2_WORKERS[@]}"; do
        log "P2 sync workers=$n"
        # Offer 1.5x the model's throughput (40 ms per report at 9:1), so the pool saturates.
        rate=$(awk -v n="$n" -v w="$DB_MS" -v c="$COMPUTE_MS" 'BEGIN { printf "%d", 1.5 * n * 1000 / (2 * (w + c)) + 1 }')
        [ "$rate" -le 800 ] || rate=800
        start_daemon "p2-sync$n" RECLAIMD_MODE=sync RECLAIMD_SYNC__WORKERS="$n" "${WORKLOAD[@]}"
        load_with_cpu "p2-sync$n" --target "$APP" --rate "$rate" --duration "${SECS}s" \
            --mix report=1 "${COMMON[@]}"
        stop_daemon
    done
fi

# ---- P3: tracing overhead, async mode with 1 thread, zero DB latency and zero compute (so the
# daemon's own cost is what is measured): spans off, and spans on (exported over OTLP/HTTP to a
# sink, the hello-world) with parentbased_traceidratio at each ratio. Each daemon is saturated
# with wrk on the quick route, then driven at a fixed P3_RATE (user=1,report=1) for its CPU per
# request. Rounds alternate the configurations, so a change in the machine's background load
# shows as a disagreement between rounds instead of passing for overhead.
if want P3; then
    db_latency 0
    for round in $(seq 1 "$ROUNDS"); do
        for sampler in off "${P3_RATIOS[@]}"; do
            name=p3-$round-$sampler
            log "P3 round $round sampler=$sampler"
            if [ "$sampler" = off ]; then
                spans=(RECLAIMD_TELEMETRY__SPANS=false)
            else
                spans=(RECLAIMD_TELEMETRY__SPANS=true OTEL_EXPORTER_OTLP_ENDPOINT="$HELLO_URL"
                    OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG="$sampler")
            fi
            # The SDK's own warnings on: the batch processor logs the spans it dropped at exit.
            start_daemon "$name" RECLAIMD_MODE=async RECLAIMD_ASYNC__WORKER_THREADS=1 \
                RECLAIMD_WORKLOAD__USER_COMPUTE_MS=0 RECLAIMD_WORKLOAD__REPORT_COMPUTE_MS=0 \
                RUST_LOG=warn,opentelemetry_sdk=warn "${spans[@]}"
            saturate "$name-sat" "$DAEMON" "$APP/api/users/1"
            load_with_cpu "$name" --target "$APP" --rate "$P3_RATE" --duration "${SECS}s" \
                --mix user=1,report=1 "${COMMON[@]}"
            stop_daemon
            dropped=$(grep -o 'dropped_span_count=[0-9]*' "$OUT/$name.daemon.log" | tail -n 1 | cut -d= -f2 || true)
            echo "dropped_spans=${dropped:-0}" >>"$OUT/$name-sat.kv"
        done
    done
    # What every request pays for being measured (spans off), without I/O: ns per request.
    cmd "$MEASURE_COST"
    "$MEASURE_COST" >"$OUT/p3-measure.kv" 2>>"$OUT/p3-measure.log"
fi

# ---- P4: memory with 10,000 requests waiting at once: async (1 thread) vs sync (1000 workers).
# Admission must let all of them in: the DB wait is 5 s, and async calls beyond the driver's
# P4_POOL permits wait at the permit gate, whose predicted wait (waiting / permits x 5 s, about
# 250 s for the last of them) must fit the budget: max_queue_wait P4_QUEUE_WAIT (at most half
# of request_timeout, P4_TIMEOUT). The pool is the default's and the driver floor's, 200.
if want P4; then
    p4_requests=$(awk -v r="$P4_RATE" -v s="$P4_SECONDS" 'BEGIN { printf "%d", r * s }')
    p4_load() { # NAME URL: the P4 load in the background, sampled at P4_SAMPLE_AT
        local args=(--target "$2" --rate "$P4_RATE" --duration "${P4_SECONDS}s" --arrival constant
            --mix user=1 --users 1000 --seed "$SEED" --max-in-flight 12000 --timeout 60s)
        cmd "$BIN load ${args[*]}   # sampled at ${P4_SAMPLE_AT} s, then stopped"
        "$BIN" load "${args[@]}" >"$OUT/$1.txt" 2>"$OUT/$1.log" &
        track "$1-load" $! "$OUT/$1.log"
    }
    for mode in async sync; do
        log "P4 $mode"
        # The daemon keeps both dispatchers ready (a mode flip costs nothing), so the async
        # run gets a 1-thread sync pool: its RSS should not pay for 1000 idle threads.
        workers=1
        [ "$mode" = async ] || workers=1000
        # Started at zero DB latency, so that its readiness checks answer at once.
        db_latency 0
        start_daemon "p4-$mode" RECLAIMD_MODE=$mode RECLAIMD_ASYNC__WORKER_THREADS=1 \
            RECLAIMD_SYNC__WORKERS=$workers RECLAIMD_LIMITS__MAX_QUEUE=20000 \
            RECLAIMD_LIMITS__MAX_IN_FLIGHT=20000 RECLAIMD_LIMITS__REQUEST_TIMEOUT="$P4_TIMEOUT" \
            RECLAIMD_LIMITS__MAX_QUEUE_WAIT="$P4_QUEUE_WAIT" RECLAIMD_MONGODB__MAX_POOL_SIZE="$P4_POOL"
        db_latency "$P4_DB_MS"
        idle=$(status_kb "$DAEMON" VmRSS)
        p4_load "p4-$mode" "$APP"
        # A measurement point, not a wait for an event: the schedule has sent all requests by
        # P4_SECONDS and the first DB reply comes at 5 s, so P4_SAMPLE_AT is inside the window
        # where all of them wait (BENCHMARKS.md states it). The in-state count below shows if
        # it was not.
        sleep "$P4_SAMPLE_AT"
        rss=$(status_kb "$DAEMON" VmRSS)
        curl -sf --max-time 5 "$ADMIN/metrics" >"$OUT/p4-$mode.metrics" ||
            echo "warning: P4 $mode: $ADMIN/metrics did not answer; in-state counts are missing" >&2
        waiting=$(awk '/^reclaimd_requests_in_state\{/ { s += $2 } END { printf "%d", s }' "$OUT/p4-$mode.metrics")
        queued=$(awk '/^reclaimd_queue_depth\{/ { s += $2 } END { printf "%d", s }' "$OUT/p4-$mode.metrics")
        shed=$(awk '/^reclaimd_shed_total\{/ { s += $2 } END { printf "%d", s }' "$OUT/p4-$mode.metrics")
        threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$DAEMON/status")
        hwm=$(status_kb "$DAEMON" VmHWM)
        stop_proc "p4-$mode-load" 0
        stop_daemon
        [ "$waiting" -ge "$p4_requests" ] ||
            echo "warning: P4 $mode: $waiting requests in state at ${P4_SAMPLE_AT} s, not $p4_requests (shed: $shed)" >&2
        printf 'rss_idle_kb=%s\nrss_kb=%s\nhwm_kb=%s\nin_state=%s\nqueued=%s\nshed=%s\nthreads=%s\n' \
            "$idle" "$rss" "$hwm" "$waiting" "$queued" "$shed" "$threads" >"$OUT/p4-$mode.kv"
        echo "  rss idle ${idle} kB, with $p4_requests waiting ${rss} kB (peak ${hwm} kB), in state ${waiting}, shed ${shed}, threads ${threads}" >&2
    done
    # The floor: a plain hyper server (the hello-world, each response delayed 5 s) holding the
    # same waiting requests.
    log "P4 hello-world baseline"
    slow_port=$(free_port)
    cmd "$HELLO 127.0.0.1:$slow_port 1 $P4_DB_MS"
    spawn hello-slow "$OUT/hello-slow.log" "$HELLO" "127.0.0.1:$slow_port" 1 "$P4_DB_MS"
    slow=${proc_pid[hello-slow]}
    wait_tcp hello-slow "$slow_port"
    idle=$(status_kb "$slow" VmRSS)
    p4_load p4-hello "http://127.0.0.1:$slow_port"
    sleep "$P4_SAMPLE_AT" # the same measurement point as for the daemon, above
    rss=$(status_kb "$slow" VmRSS)
    hwm=$(status_kb "$slow" VmHWM)
    threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$slow/status")
    stop_proc p4-hello-load 0
    stop_proc hello-slow 0
    printf 'rss_idle_kb=%s\nrss_kb=%s\nhwm_kb=%s\nthreads=%s\n' "$idle" "$rss" "$hwm" "$threads" >"$OUT/p4-hello.kv"
    echo "  hello-world: rss idle ${idle} kB, with $p4_requests waiting ${rss} kB" >&2
    # The other floor: the async `mongodb` driver alone, holding what the daemon holds in it:
    # P4_POOL calls (the rest wait at the daemon's own permit gate); and, for comparison,
    # all the requests' calls inside the driver at once.
    log "P4 driver floor"
    for calls in "$P4_POOL" "$p4_requests"; do
        name=p4-driver
        [ "$calls" = "$P4_POOL" ] || name=p4-driver-all
        cmd "$DRIVER_FLOOR $MONGO_URI/?directConnection=true $calls $P4_POOL"
        timeout 120 "$DRIVER_FLOOR" "$MONGO_URI/?directConnection=true" "$calls" "$P4_POOL" \
            >"$OUT/$name.kv" 2>"$OUT/$name.log" || echo "warning: driver_floor failed" >&2
        cat "$OUT/$name.kv" >&2
    done
    db_latency 0
fi

# ---- P5: the daemon against its floors. At saturation (wrk, quick route, zero compute, spans
# off): the daemon vs hello-db (plain hyper + the async driver, the same find_one), alternating
# rounds. At a fixed P5_RATE: one `reclaimd load` drives the daemon, hello-db and the
# hello-world (no DB at all) with the identical schedule, for latency and CPU per request.
if want P5; then
    db_latency 0
    p5_daemon() { # NAME
        start_daemon "$1" RECLAIMD_MODE=async RECLAIMD_ASYNC__WORKER_THREADS=1 \
            RECLAIMD_TELEMETRY__SPANS=false RECLAIMD_WORKLOAD__USER_COMPUTE_MS=0
    }
    for round in $(seq 1 "$ROUNDS"); do
        log "P5 round $round"
        p5_daemon "p5-$round"
        saturate "p5-$round-daemon-sat" "$DAEMON" "$APP/api/users/1"
        stop_daemon
        saturate "p5-$round-hello-db-sat" "$HELLO_DB_PID" "$HELLO_DB_URL/api/users/1"
    done
    log "P5 fixed rate"
    p5_daemon p5
    hb=$(cpu_seconds "$HELLO_PID")
    db_before=$(cpu_seconds "$HELLO_DB_PID")
    load_with_cpu p5 --target "$APP" --target "$HELLO_DB_URL" --target "$HELLO_URL" \
        --rate "$P5_RATE" --duration "${SECS}s" --mix user=1 "${COMMON[@]}"
    ha=$(cpu_seconds "$HELLO_PID")
    db_after=$(cpu_seconds "$HELLO_DB_PID")
    {
        echo "hello_cpu_s=$(awk -v a="$ha" -v b="$hb" 'BEGIN { printf "%.3f", a - b }')"
        echo "hello_db_cpu_s=$(awk -v a="$db_after" -v b="$db_before" 'BEGIN { printf "%.3f", a - b }')"
    } >>"$OUT/p5.kv"
    stop_daemon
fi

# ---- P6: the load generator's own ceiling on one core (`--threads 1`), against hello-world;
# and the floor of its schedule lateness: tokio's timer alone, no requests.
if want P6; then
    log "P6"
    for rate in "${P6_RATES[@]}"; do
        load "p6-$rate" --target "$HELLO_URL" --rate "$rate" --duration "$(((SECS + 1) / 2))s" \
            --arrival constant --mix user=1 --seed "$SEED" --threads 1 --timeout 10s
    done
    cmd "$TIMER_LATENESS 40000 $(((SECS + 1) / 2))"
    "$TIMER_LATENESS" 40000 "$(((SECS + 1) / 2))" >"$OUT/p6-timer.kv" 2>"$OUT/p6-timer.log" ||
        echo "warning: timer_lateness failed" >&2
    cat "$OUT/p6-timer.kv" >&2
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
log "writing BENCHMARKS.md"
cmd "$REPORT $OUT BENCHMARKS.md"
"$REPORT" "$OUT" BENCHMARKS.md bench/p1.svg
echo "BENCHMARKS.md and bench/p1.svg written; raw results in ${OUT#"$ROOT"/}" >&2
