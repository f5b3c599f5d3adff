#!/usr/bin/env bash
# The live view's cost (BENCHMARKS.md, "Live view"): throughput at saturation with and without
# one connected viewer, and the stream's bytes per second at 1,000 and 10,000 req/s offered.
#
# Real processes: mongo-wire (0 ms latency), `reclaimd serve` in async mode with 1 thread and
# no compute (so the daemon's own cost is what saturates), `reclaimd load`, and `curl -N` as
# the viewer (it reads /live/events as fast as it comes, as a browser does). About 2 minutes.
#
#   bench/live.sh            # prints the section
#   bench/live.sh --write    # also replaces the "## Live view" section of BENCHMARKS.md
#   BENCH_SECONDS=4 bench/live.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
lib_name=bench-live
# shellcheck source=ci/lib.sh
source ci/lib.sh
OUT=${BENCH_OUT:-$ROOT/target/bench-live}
SECS=${BENCH_SECONDS:-8}
# Well above what the daemon serves on these settings (10,000 to 15,000 req/s on 2 cores).
SATURATION_RATE=${BENCH_SATURATION_RATE:-25000}
WRITE=${1:-}
rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/commands.txt"
cmd() { printf '%s\n' "$*" | sed "s|$ROOT/||g" >>"$OUT/commands.txt"; }
log() { printf '\n== %s\n' "$*" >&2; }

log "building (release)"
cargo build --release -p mongo-wire --bin mongo-wire >&2
cargo build --release -p reclaimd --bin reclaimd >&2
BIN=$ROOT/target/release/reclaimd
MW=$ROOT/target/release/mongo-wire
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

MW_PORT=$(free_port)
APP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
APP=http://127.0.0.1:$APP_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
MONGO_URI=mongodb://127.0.0.1:$MW_PORT

cmd "$MW --listen 127.0.0.1:$MW_PORT --latency-ms 0"
spawn mongo-wire "$OUT/mongo-wire.log" "$MW" --listen "127.0.0.1:$MW_PORT" --latency-ms 0
wait_tcp mongo-wire "$MW_PORT"
cmd "RECLAIMD_MONGODB__URI=$MONGO_URI $BIN seed --users 1000 --orders 10000"
RECLAIMD_MONGODB__URI=$MONGO_URI "$BIN" seed --users 1000 --orders 10000 >"$OUT/seed.log" 2>&1 ||
    die "seed failed$(log_tail "$OUT/seed.log")"

env_daemon=(RECLAIMD_MONGODB__URI="$MONGO_URI" RECLAIMD_SERVER__LISTEN="127.0.0.1:$APP_PORT"
    RECLAIMD_ADMIN__LISTEN="127.0.0.1:$ADMIN_PORT" RUST_LOG=warn RECLAIMD_MODE=async
    RECLAIMD_ASYNC__WORKER_THREADS=1 RECLAIMD_TELEMETRY__SPANS=false
    RECLAIMD_WORKLOAD__USER_COMPUTE_MS=0 RECLAIMD_LIMITS__MAX_QUEUE=2000)
cmd "${env_daemon[*]} $BIN serve --config config/reclaimd.toml"
spawn daemon "$OUT/daemon.log" env "${env_daemon[@]}" "$BIN" serve --config config/reclaimd.toml
wait_http daemon "$ADMIN/readyz"
wait_http daemon "$APP/api/users/1"

viewer_start() { # NAME: curl reading the stream into $OUT/NAME.sse
    cmd "curl -sN $ADMIN/live/events > $OUT/$1.sse &"
    curl -sN "$ADMIN/live/events" >"$OUT/$1.sse" 2>/dev/null &
    track "viewer-$1" $! "$OUT/$1.sse"
    wait_until "viewer-$1" 10 "the first frame" grep -qs '"type":"frame"' "$OUT/$1.sse"
}
size() { stat -c %s "$1"; }

load() { # NAME RATE SECONDS: `reclaimd load`, JSON to $OUT/NAME.json
    local args=(--target "$APP" --rate "$2" --duration "$3s" --arrival constant --mix user=1
        --users 1000 --seed 42 --timeout 10s --max-in-flight 4000)
    cmd "$BIN load ${args[*]} --json $OUT/$1.json"
    "$BIN" load "${args[@]}" --json "$OUT/$1.json" >"$OUT/$1.txt" 2>"$OUT/$1.log" ||
        die "load $1 failed$(log_tail "$OUT/$1.log")"
}
ok_rps() { jq -r '.targets[0].throughput_rps' "$OUT/$1.json"; }
refused() { jq -r '[.targets[0].errors | to_entries[] | "\(.key): \(.value)"] | join(", ") | if . == "" then "–" else . end' "$OUT/$1.json"; }

# ---- throughput at saturation, without and with one viewer: two rounds, the order swapped in
# the second so that warming up (or the machine's background load drifting) favours neither.
sat_none() { # ROUND
    log "saturation round $1: no viewer"
    load "sat-$1-none" "$SATURATION_RATE" "$SECS"
}
sat_viewer() { # ROUND
    log "saturation round $1: one viewer"
    viewer_start "sat-$1"
    load "sat-$1-viewer" "$SATURATION_RATE" "$SECS"
    stop_proc "viewer-sat-$1" 0
}
sat_none 1
sat_viewer 1
sat_viewer 2
sat_none 2

# ---- the stream's bytes per second at 1k and 10k req/s (measured after a 3 s warm-up, while
# the load runs; sampling settles within a second or two)
for rate in 1000 10000; do
    log "stream at $rate req/s"
    viewer_start "rate-$rate"
    "$BIN" load --target "$APP" --rate "$rate" --duration "$((SECS + 4))s" --arrival constant \
        --mix user=1 --users 1000 --seed 42 --timeout 10s --max-in-flight 4000 \
        --json "$OUT/rate-$rate.json" >"$OUT/rate-$rate.txt" 2>"$OUT/rate-$rate.log" &
    track "load-$rate" $! "$OUT/rate-$rate.log"
    cmd "$BIN load --target $APP --rate $rate --duration $((SECS + 4))s --arrival constant --mix user=1 --users 1000 --seed 42 --timeout 10s --max-in-flight 4000 --json $OUT/rate-$rate.json &"
    sleep 3
    before=$(size "$OUT/rate-$rate.sse")
    t0=$(now_us)
    sleep "$SECS" # the measurement window, while the load runs
    after=$(size "$OUT/rate-$rate.sse")
    t1=$(now_us)
    wait "${proc_pid[load-$rate]}" || die "load at $rate failed$(log_tail "$OUT/rate-$rate.log")"
    unset "proc_pid[load-$rate]"
    stop_proc "viewer-rate-$rate" 0
    awk -v b="$before" -v a="$after" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "bytes_per_s=%.0f\n", (a - b) / ((t1 - t0) / 1e6) }' >"$OUT/rate-$rate.kv"
    # The sampling gap the stream settled on (µs between sampled requests, at most).
    grep -o '"gap":[0-9]*' "$OUT/rate-$rate.sse" | tail -n 1 | tr -d '"' | tr : = >>"$OUT/rate-$rate.kv"
done

# ---- the section
kv() { awk -F= -v k="$2" '$1 == k { print $2 }' "$OUT/$1.kv"; }
{
    echo "## Live view"
    echo
    echo "Written by \`bench/live.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores, load average at the end $(cut -d' ' -f1 /proc/loadavg)). Async mode, 1 thread, MongoDB test double at 0 ms, no compute: the daemon's own CPU is what saturates. The viewer is \`curl -N\` reading \`/live/events\` as fast as it comes. Constant arrivals of \`GET /api/users/{id}\`."
    echo
    echo "Round 1 runs without the viewer first, round 2 with it first."
    echo
    echo "| load | viewer | served (2xx) req/s | not served |"
    echo "|---|---|---:|---|"
    for round in 1 2; do
        for v in none viewer; do
            printf '| %s req/s offered, round %s | %s | %.0f | %s |\n' "$SATURATION_RATE" "$round" \
                "$([ "$v" = none ] && echo none || echo one)" "$(ok_rps "sat-$round-$v")" "$(refused "sat-$round-$v")"
        done
    done
    none=$(awk -v a="$(ok_rps sat-1-none)" -v b="$(ok_rps sat-2-none)" 'BEGIN { print (a + b) / 2 }')
    with=$(awk -v a="$(ok_rps sat-1-viewer)" -v b="$(ok_rps sat-2-viewer)" 'BEGIN { print (a + b) / 2 }')
    echo
    awk -v n="$none" -v w="$with" 'BEGIN { printf "- **throughput at saturation with one viewer / without: %.2f×** (means of the two rounds: %.0f vs %.0f req/s).\n", w / n, w, n }'
    spread=$(for r in 1 2; do for v in none viewer; do ok_rps "sat-$r-$v"; done; done |
        awk 'NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 } END { printf "%.0f", 100 * (hi - lo) / lo }')
    echo "- The four runs differ by up to ${spread}% from each other on this shared machine; a difference within that is no measurable cost."
    echo
    echo "| offered req/s | served (2xx) req/s | stream bytes/s | sampling gap at the end |"
    echo "|---:|---:|---:|---:|"
    for rate in 1000 10000; do
        printf '| %s | %.0f | %s | %s ms |\n' "$rate" "$(ok_rps "rate-$rate")" \
            "$(kv "rate-$rate" bytes_per_s)" "$(awk -v g="$(kv "rate-$rate" gap)" 'BEGIN { printf "%.0f", g / 1000 }')"
    done
    echo
    echo "The stream's bound is \`live.max_stream_bytes_per_second\` (200000 by default): lanes are exact and sent first, requests are sampled into what remains; at most one request per 5 ms is sampled, so here the stream stays well under the bound at both rates. \`tests/it/live/stream.rs\` checks the bound itself with a 30 kB/s budget at 1,500 req/s."
    echo
    echo "Commands, in order:"
    echo
    echo '```sh'
    cat "$OUT/commands.txt"
    echo '```'
} >"$OUT/section.md"
cat "$OUT/section.md"
if [ "$WRITE" = --write ]; then
    # Replace (or append) the section; everything else in BENCHMARKS.md stays as it is.
    awk -v section="$OUT/section.md" '
        /^## / { if (skip) skip = 0; if ($0 == "## Live view") { skip = 1; while ((getline l < section) > 0) print l; print ""; done = 1; next } }
        !skip { print }
        END { if (!done) { print ""; while ((getline l < section) > 0) print l } }
    ' BENCHMARKS.md >"$OUT/BENCHMARKS.md"
    mv "$OUT/BENCHMARKS.md" BENCHMARKS.md
    echo "BENCHMARKS.md: Live view section written" >&2
fi
