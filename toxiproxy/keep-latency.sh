#!/bin/sh
# Keeps the latency toxic on toxiproxy's `mongo` proxy: compose's `toxiproxy-latency` service.
#
# toxiproxy holds toxics in memory only, so a restart of toxiproxy (or of the host) drops the
# latency and the demo would silently run at 0 ms. Its image is FROM scratch (no shell to run a
# script at start) and its -config file defines proxies, not toxics (2.12.0's PopulateJson), so
# this loop, started with the stack, is what makes the latency part of the proxy's startup:
#
#   - in a new container (the first `up`, or MONGO_LATENCY_MS / MONGO_JITTER_MS changed in .env,
#     which makes `docker compose up -d` recreate this service): applies .env's values;
#   - every second: if the toxic is missing (toxiproxy restarted), applies .env's values again;
#   - otherwise leaves the toxic alone: a latency set live through toxiproxy's API stays until
#     toxiproxy restarts or .env's latency changes. (Deleting the toxic counts as missing: to
#     remove the latency live, set it to 0.)
#
# Healthy (for compose's depends_on) once the toxic has been seen in place.
set -u
api="${TOXIPROXY_API:-http://toxiproxy:8474}"
here=$(dirname "$0")
# In the container's own filesystem: kept across a restart of this container, gone when
# compose recreates it.
state="${LATENCY_STATE_DIR:-/tmp}"
applied="$state/latency-applied"
ready="$state/latency-ready"
rm -f "$ready"
trap 'exit 0' TERM INT

apply() {
  sh "$here/set-latency.sh" || {
    echo "could not set the latency yet; retrying" >&2
    return 1
  }
}

if [ -e "$applied" ]; then
  echo "restarted: keeping the latency toxiproxy has (a value set live stays)"
else
  until apply; do sleep 1; done
  touch "$applied"
fi
while :; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$api/proxies/mongo/toxics/latency") || code=000
  case "$code" in
    200) touch "$ready" ;;
    404)
      echo "no latency toxic on the mongo proxy (toxiproxy restarted?): applying .env's values"
      apply && touch "$ready"
      ;;
    *) ;; # toxiproxy not answering (restarting): look again in a second
  esac
  sleep 1
done
