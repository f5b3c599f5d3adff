#!/bin/sh
# (Re)sets the latency toxic on toxiproxy's `mongo` proxy from MONGO_LATENCY_MS and
# MONGO_JITTER_MS, once. Idempotent. Compose runs it from keep-latency.sh (which re-applies it
# after toxiproxy restarts); the Kubernetes demo runs it as a Job.
set -eu
api="${TOXIPROXY_API:-http://toxiproxy:8474}"
latency="${MONGO_LATENCY_MS:-20}"
jitter="${MONGO_JITTER_MS:-0}"
case "$latency$jitter" in
  *[!0-9]*) echo "MONGO_LATENCY_MS and MONGO_JITTER_MS must be whole milliseconds" >&2; exit 64 ;;
esac

# Remove the old toxic, if any (404 when there is none).
curl -sS -o /dev/null -X DELETE "$api/proxies/mongo/toxics/latency" || true
if [ "$latency" -eq 0 ] && [ "$jitter" -eq 0 ]; then
  echo "mongo proxy: no added latency"
  exit 0
fi
# Downstream = on every reply from MongoDB, so each round trip takes `latency` ms longer.
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d "{\"name\":\"latency\",\"type\":\"latency\",\"stream\":\"downstream\",\"toxicity\":1.0,\"attributes\":{\"latency\":$latency,\"jitter\":$jitter}}" \
  "$api/proxies/mongo/toxics"
echo "mongo proxy: +${latency} ms (jitter ${jitter} ms) on every MongoDB reply"
