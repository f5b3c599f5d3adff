#!/usr/bin/env bash
# The profiles behind BENCHMARKS.md's "Profiles" section (which is written by hand from what
# this prints; bench/run.sh keeps that section as it is).
#
#   bench/profile.sh cpu      # perf (cpu-clock samples, no hardware counters needed): where a
#                             # saturated daemon's CPU goes, spans off vs spans on at ratio 1.0
#   bench/profile.sh memory   # heaptrack: what the async daemon holds while 10,000 requests
#                             # wait on the database (P4), by allocation site
#   bench/profile.sh switches # perf stat: context switches and CPU per request at saturation,
#                             # the daemon (spans off) against hello-db (P5)
#
# Needs: wrk and linux-perf (cpu), heaptrack and python3 (memory); Debian: apt-get install wrk
# linux-perf heaptrack python3. Output in target/profile/. About 2 minutes each on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
lib_name=profile
# shellcheck source=ci/lib.sh
source ci/lib.sh
WHAT=${1:-}
case $WHAT in
    cpu | switches) { command -v wrk && command -v perf; } >/dev/null || die "$WHAT needs wrk and perf" ;;
    memory) command -v heaptrack >/dev/null || die "memory needs heaptrack" ;;
    *) die "usage: bench/profile.sh cpu|memory|switches" ;;
esac
OUT=$ROOT/target/profile
rm -rf "$OUT"
mkdir -p "$OUT"
SECS=${PROFILE_SECONDS:-10}

cargo build --release -p mongo-wire --bin mongo-wire >&2
cargo build --release -p reclaimd --bin reclaimd --example hello --example hello_db >&2
BIN=$ROOT/target/release/reclaimd
MW=$ROOT/target/release/mongo-wire
HELLO=$ROOT/target/release/examples/hello
HELLO_DB=$ROOT/target/release/examples/hello_db
MW_PORT=$(free_port)
APP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
HELLO_PORT=$(free_port)
MONGO_URI=mongodb://127.0.0.1:$MW_PORT

spawn_controlled mongo-wire "$OUT/mongo-wire.log" \
    "$MW" --listen "127.0.0.1:$MW_PORT" --latency-ms 0 --stdin-control
wait_tcp mongo-wire "$MW_PORT"
RECLAIMD_MONGODB__URI=$MONGO_URI "$BIN" seed --users 1000 --orders 10000 >"$OUT/seed.log" 2>&1 ||
    die "reclaimd seed failed$(log_tail "$OUT/seed.log")"
# The OTLP sink (it discards what is posted).
spawn hello "$OUT/hello.log" "$HELLO" "127.0.0.1:$HELLO_PORT" 1
wait_http hello "http://127.0.0.1:$HELLO_PORT/"

daemon_env=(RECLAIMD_MONGODB__URI="$MONGO_URI" RECLAIMD_SERVER__LISTEN="127.0.0.1:$APP_PORT"
    RECLAIMD_ADMIN__LISTEN="127.0.0.1:$ADMIN_PORT" RUST_LOG=warn RECLAIMD_MODE=async
    RECLAIMD_ASYNC__WORKER_THREADS=1 RECLAIMD_WORKLOAD__USER_COMPUTE_MS=0)

# Self time by component: each sampled symbol, by the crate or library its name shows.
by_component() { # PERF_DATA
    perf report -i "$1" --stdio --no-children --sort dso,sym 2>/dev/null |
        awk '/^ +[0-9.]+%/ {
            pct = $1; sub(/%/, "", pct)
            kernel = ($0 ~ /\[k\]/)
            sym = $0; sub(/^[^]]*\] /, "", sym)
            c = "other (std, core, serde, unresolved)"
            if (kernel) c = "kernel (syscalls, scheduling, network)"
            else if (sym ~ /tracing_opentelemetry/) c = "tracing-opentelemetry layer"
            else if (sym ~ /opentelemetry_otlp|opentelemetry_proto|opentelemetry_http|prost/) c = "OTLP export (encoding, HTTP)"
            else if (sym ~ /opentelemetry/) c = "opentelemetry SDK"
            else if (sym ~ /tracing_subscriber|tracing_core|sharded_slab|tracing::/) c = "tracing registry"
            else if (sym ~ /^(malloc|free|cfree|realloc|calloc|_int_|malloc_|tcache|unlink_chunk|__libc_)/ || sym ~ /mem(cpy|move|set)/) c = "allocator, memcpy"
            else if (sym ~ /mongodb|bson/) c = "mongodb driver, bson"
            else if (sym ~ /hyper|http_body|httparse|http::/) c = "hyper, http"
            else if (sym ~ /tokio|mio::/) c = "tokio"
            else if (sym ~ /prometheus/) c = "prometheus metrics"
            else if (sym ~ /reclaimd/) c = "the daemon (reclaimd::)"
            s[c] += pct
        } END { for (c in s) printf "%6.1f%%  %s\n", s[c], c }' | sort -rn
}

if [ "$WHAT" = cpu ]; then
    for config in off 1.0; do
        if [ "$config" = off ]; then
            spans=(RECLAIMD_TELEMETRY__SPANS=false)
        else
            spans=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$HELLO_PORT"
                OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG="$config")
        fi
        spawn "daemon-$config" "$OUT/daemon-$config.log" env "${daemon_env[@]}" "${spans[@]}" \
            "$BIN" serve --config config/reclaimd.toml
        pid=${proc_pid[daemon-$config]}
        wait_http "daemon-$config" "http://127.0.0.1:$APP_PORT/api/users/1"
        url=http://127.0.0.1:$APP_PORT/api/users/1
        wrk -t1 -c32 -d1s "$url" >/dev/null
        wrk -t1 -c32 -d"$((SECS + 2))s" "$url" >"$OUT/wrk-$config.txt" &
        wrk_pid=$!
        sleep 1
        perf record -e cpu-clock -F 999 -p "$pid" -o "$OUT/perf-$config.data" -- sleep "$SECS" \
            2>"$OUT/perf-$config.log"
        wait "$wrk_pid"
        stop_proc "daemon-$config"
        {
            echo "== spans $config: $(grep 'Requests/sec' "$OUT/wrk-$config.txt")"
            by_component "$OUT/perf-$config.data"
            echo "-- top symbols (self time)"
            perf report -i "$OUT/perf-$config.data" --stdio --no-children --sort sym \
                --percent-limit 1.5 2>/dev/null | grep -E '^ +[0-9.]+%' | cut -c1-160
        } | tee "$OUT/cpu-$config.txt"
    done
fi

if [ "$WHAT" = switches ]; then
    hello_db_port=$(free_port)
    spawn hello-db "$OUT/hello-db.log" "$HELLO_DB" "$MONGO_URI/?directConnection=true" \
        "127.0.0.1:$hello_db_port" 2
    spawn daemon "$OUT/daemon-switches.log" env "${daemon_env[@]}" RECLAIMD_TELEMETRY__SPANS=false \
        "$BIN" serve --config config/reclaimd.toml
    traced_port=$(free_port)
    spawn traced "$OUT/daemon-traced.log" env "${daemon_env[@]}" \
        RECLAIMD_SERVER__LISTEN="127.0.0.1:$traced_port" RECLAIMD_ADMIN__LISTEN="127.0.0.1:$(free_port)" \
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$HELLO_PORT" \
        OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=1.0 \
        "$BIN" serve --config config/reclaimd.toml
    wait_http hello-db "http://127.0.0.1:$hello_db_port/api/users/1"
    wait_http daemon "http://127.0.0.1:$APP_PORT/api/users/1"
    wait_http traced "http://127.0.0.1:$traced_port/api/users/1"
    # daemon: spans off; traced: the same daemon with every request traced (ratio 1.0).
    for server in daemon hello-db traced daemon hello-db traced; do
        case $server in
            daemon) port=$APP_PORT ;;
            hello-db) port=$hello_db_port ;;
            traced) port=$traced_port ;;
        esac
        url=http://127.0.0.1:$port/api/users/1
        wrk -t1 -c32 -d1s "$url" >/dev/null
        wrk -t1 -c32 -d"$((SECS + 2))s" "$url" >"$OUT/wrk-$server.txt" &
        wrk_pid=$!
        sleep 1
        perf stat -e context-switches,task-clock -p "${proc_pid[$server]}" -x, \
            -o "$OUT/stat-$server.csv" -- sleep "$SECS"
        wait "$wrk_pid"
        rps=$(awk '/Requests\/sec/ { print $2 }' "$OUT/wrk-$server.txt")
        awk -F, -v rps="$rps" -v secs="$SECS" -v who="$server" '
            $3 == "context-switches" { cs = $1 } $3 == "task-clock" { ms = $1 }
            END { n = rps * secs; printf "%-9s %8.0f req/s  %5.2f context switches / request  %5.1f CPU us / request\n", who, rps, cs / n, ms * 1000 / n }' \
            "$OUT/stat-$server.csv"
    done
fi

# Stops a program run under heaptrack (NAME's process is the heaptrack script): TERM to the
# program itself, its child named PROGRAM, then waits for heaptrack to finish its file.
stop_traced() { # NAME PROGRAM
    local child
    child=$(pgrep -P "${proc_pid[$1]}" -x "$2" || true)
    [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true
    for _ in $(seq 300); do
        proc_exited "$1" && return 0
        sleep 0.2
    done
    stop_proc "$1" 0
}

if [ "$WHAT" = memory ]; then
    control mongo-wire "latency 5000"
    spawn daemon "$OUT/daemon-memory.log" env "${daemon_env[@]}" RECLAIMD_TELEMETRY__SPANS=false \
        RECLAIMD_SYNC__WORKERS=1 RECLAIMD_LIMITS__MAX_QUEUE=20000 RECLAIMD_LIMITS__MAX_IN_FLIGHT=20000 \
        RECLAIMD_LIMITS__REQUEST_TIMEOUT=1200s RECLAIMD_LIMITS__MAX_QUEUE_WAIT=600s \
        heaptrack -o "$OUT/heaptrack-p4" "$BIN" serve --config config/reclaimd.toml
    wait_tcp daemon "$APP_PORT" 60
    "$BIN" load --target "http://127.0.0.1:$APP_PORT" --rate 2500 --duration 4s --arrival constant \
        --mix user=1 --users 1000 --seed 42 --max-in-flight 12000 --timeout 60s \
        >"$OUT/load-memory.txt" 2>&1 &
    load_pid=$!
    # All 10,000 wait from 4 s to 5 s; the heap peaks there.
    sleep 4.8
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | grep '^reclaimd_requests_in_state' || true
    wait "$load_pid" || true
    stop_traced daemon reclaimd
    # The same load against the plain-hyper floor (the hello-world answering after 5 s).
    slow_port=$(free_port)
    spawn hello-slow "$OUT/hello-slow.log" heaptrack -o "$OUT/heaptrack-hello" "$HELLO" \
        "127.0.0.1:$slow_port" 1 5000
    wait_tcp hello-slow "$slow_port" 60
    "$BIN" load --target "http://127.0.0.1:$slow_port" --rate 2500 --duration 4s --arrival constant \
        --mix user=1 --users 1000 --seed 42 --max-in-flight 12000 --timeout 60s \
        >"$OUT/load-hello.txt" 2>&1 || true
    stop_traced hello-slow hello
    for run in p4 hello; do
        heaptrack_print -f "$OUT"/heaptrack-"$run"*.zst --flamegraph-cost-type peak \
            -F "$OUT/$run-peak.stacks" --print-peaks=0 --print-allocators=0 --print-leaks=0 \
            --print-temporary=0 2>&1 | grep -E '^peak heap' | sed "s/^/$run: /"
        echo "== $run: heap at its peak, by allocation site, bytes per waiting request"
        python3 bench/heap_sites.py "$OUT/$run-peak.stacks" 10000
    done
fi
