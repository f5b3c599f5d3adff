#!/usr/bin/env bash
# Smoke test of the compose stack, run for real: contributors run it before a release, on a
# machine with Docker Engine and Compose v2 (CI has no Docker engine).
#
#   ci/compose-smoke.sh [--keep]
#
# Runs docker-compose.yml as its own project (reclaimd-smoke), on free loopback ports and with
# its own copy of config/, so a running demo stack and the clone's files are left alone:
#   1. `docker compose up -d --build --wait`: every service running or healthy, the seed done;
#   2. Grafana's API lists the provisioned datasources (uids prometheus, tempo) and, for the
#      anonymous viewer, every dashboard in grafana/dashboards/;
#   3. every panel query of every dashboard returns data through Grafana's /api/ds/query;
#   4. Tempo returns a trace of the daemon (TraceQL search, then the trace by id);
#   5. flips the mode by editing the config copy, as a user edits config/reclaimd.toml, and
#      checks that the headline (reclaimed fraction of DB wait) moves from 0 in sync mode to
#      above 0 in async mode;
#   6. tears the project down, volumes included (--keep leaves it running).
# It builds reclaimd:local from this checkout (the image the demo stack uses too).
#
# Exit status: 0 passed, 1 failed, 2 usage error, 77 skipped: no Docker engine here (nothing
# was tested). Needs docker with the compose plugin, curl and jq. DOCKER names the docker
# command (default: docker).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
while (($#)); do
  case "$1" in
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ci/compose-smoke.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

docker=${DOCKER:-docker}
skip() {
  {
    echo "################################################################################"
    echo "# SKIPPED: ci/compose-smoke.sh: $1"
    echo "# Nothing was tested. Run it on a machine with Docker Engine and Compose v2."
    echo "################################################################################"
  } >&2
  exit 77
}
command -v "$docker" >/dev/null 2>&1 || skip "no '$docker' command on PATH: no Docker engine here."
if ! engine=$("$docker" info --format '{{.ServerVersion}}' 2>&1); then
  skip "no Docker engine answers ('$docker info': $(tail -n 1 <<<"$engine"))."
fi
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "ci/compose-smoke.sh: $tool is not installed" >&2; exit 1; }
done
"$docker" compose version >/dev/null 2>&1 ||
  { echo "ci/compose-smoke.sh: '$docker compose' is missing: install the Compose v2 plugin" >&2; exit 1; }

# shellcheck source=ci/lib.sh
source ci/lib.sh

work=$lib_tmp
failed=0
ok() { printf 'ok     %s\n' "$*"; }
not_ok() { printf 'FAILED %s\n' "$*"; failed=1; }
log() { printf '       %s\n' "$*"; }

# Free loopback ports for everything the stack publishes; the environment beats .env.
for var in GRAFANA_PORT PROMETHEUS_PORT TEMPO_PORT RECLAIMD_PORT RECLAIMD_ADMIN_PORT \
  RECLAIMD_SYNC_PORT RECLAIMD_ASYNC_PORT TOXIPROXY_PORT MONGO_PORT; do
  export "$var=$(free_port)"
done
export BIND_ADDRESS=127.0.0.1
# The admin password compose gives Grafana: .env's, unless the environment overrides it.
password=${GRAFANA_ADMIN_PASSWORD:-$(sed -n 's/^GRAFANA_ADMIN_PASSWORD=//p' .env)}

# The daemon reads its own copy of config/, which step 5 edits (compose merges volumes by
# their target, so this mount replaces ./config:/etc/reclaimd).
cp -R config "$work/config"
cat >"$work/override.yml" <<EOF
services:
  reclaimd:
    volumes:
      - $work/config:/etc/reclaimd:ro
EOF
compose() { "$docker" compose -p reclaimd-smoke -f docker-compose.yml -f "$work/override.yml" "$@"; }

on_exit() {
  if (($1 != 0)); then
    echo "--- last log lines of each service"
    compose logs --no-color --tail 30 2>&1 || true
  fi
  if ((keep)); then
    echo "kept: project reclaimd-smoke (Grafana on http://127.0.0.1:$GRAFANA_PORT; remove it with:"
    echo "  docker compose -p reclaimd-smoke down -v --remove-orphans)"
  else
    compose down -v --remove-orphans >/dev/null 2>&1 || echo "could not tear down project reclaimd-smoke" >&2
  fi
}

grafana="http://127.0.0.1:$GRAFANA_PORT"
# GET from Grafana as the anonymous viewer, or as admin with `admin` first.
gget() {
  if [[ $1 == admin ]]; then
    curl -fsS --max-time 10 -u "admin:$password" "$grafana$2"
  else
    curl -fsS --max-time 10 "$grafana$1"
  fi
}
# One panel target through Grafana's query API, as the dashboard runs it for the anonymous
# viewer: prints the number of non-null values it returns (0 when none, "error: ..." on error).
ds_query() { # TARGET_JSON FROM
  jq -n --argjson t "$1" --arg from "$2" \
    '{from: $from, to: "now", queries: [$t + {refId: "A", intervalMs: 15000, maxDataPoints: 200}]}' |
    curl -sS --max-time 30 -H 'Content-Type: application/json' -d @- "$grafana/api/ds/query" |
    jq -r 'if .results.A.error then "error: " + .results.A.error
           else [.results.A.frames[]? | .data.values[-1][]? | select(. != null)] | length end'
}
# Grafana's dashboard variables, set to "all" as ci/e2e.sh sets them; Grafana's own interval
# variables are left to the Prometheus datasource, which interpolates them.
substitute() {
  # shellcheck disable=SC2016 # Grafana's $variables, matched literally
  sed -e 's/\${\(instance\|mode\)\(:[a-z]*\)\{0,1\}}/.*/g' -e 's/\$\(instance\|mode\)\b/.*/g'
}

printf '== 1. docker compose up -d --build --wait (engine %s; the first build takes minutes)\n' "$engine"
t0=$SECONDS
if compose up -d --build --wait --wait-timeout 900; then
  ok "stack up in $((SECONDS - t0))s"
else
  not_ok "docker compose up --wait"
  exit 1
fi
compose ps --all --format 'table {{.Service}}\t{{.State}}\t{{.Status}}'

echo "== 2. provisioning"
for uid in prometheus tempo; do
  if gget admin "/api/datasources/uid/$uid" >/dev/null; then
    ok "datasource $uid provisioned"
  else
    not_ok "datasource $uid missing"
  fi
done
listed=$(gget "/api/search?type=dash-db" | jq -r '.[].uid')
for dashboard in grafana/dashboards/*.json; do
  uid=$(jq -r .uid "$dashboard")
  if grep -qx "$uid" <<<"$listed"; then
    ok "dashboard $uid listed for the anonymous viewer"
  else
    not_ok "dashboard $uid ($dashboard) not listed: $(tr '\n' ' ' <<<"$listed")"
  fi
done

echo "== 3. every panel query returns data through Grafana"
targets=$work/targets.tsv
for dashboard in grafana/dashboards/*.json; do
  jq -r --arg file "$(basename "$dashboard")" '
    [.panels[], (.panels[] | .panels[]?)] | .[] | . as $p
    | ($p.targets // [])[] | select(.expr != null or .query != null)
    | (.datasource // $p.datasource) as $ds
    | [$file, $p.title, (. + {datasource: $ds} | tojson | @base64)] | @tsv' "$dashboard"
done >"$targets"
n_targets=$(wc -l <"$targets")
((n_targets > 10)) || not_ok "only $n_targets panel queries found"
pending=$work/pending.tsv
cp "$targets" "$pending"
deadline=$((SECONDS + 180))
while :; do
  : >"$work/still.tsv"
  while IFS=$'\t' read -r file title encoded _; do
    target=$(jq -rn --arg b "$encoded" '$b | @base64d' | substitute)
    n=$(ds_query "$target" now-15m 2>&1) || n="error: $n"
    if [[ $n =~ ^[0-9]+$ ]] && ((n > 0)); then
      ok "$file: \"$title\": $n values"
    else
      printf '%s\t%s\t%s\t%s\n' "$file" "$title" "$encoded" "$n" >>"$work/still.tsv"
    fi
  done <"$pending"
  mv "$work/still.tsv" "$pending"
  [[ -s $pending ]] || break
  if ((SECONDS >= deadline)); then
    while IFS=$'\t' read -r file title encoded n; do
      not_ok "$file: \"$title\" has no data after 180 s ($n): $(jq -rn --arg b "$encoded" '$b | @base64d')"
    done <"$pending"
    break
  fi
  sleep 5
done

echo "== 4. Tempo returns a trace"
tempo="http://127.0.0.1:$TEMPO_PORT"
trace_id=
deadline=$((SECONDS + 120))
until [[ -n $trace_id ]] || ((SECONDS >= deadline)); do
  trace_id=$(curl -fsS --max-time 10 -G "$tempo/api/search" \
    --data-urlencode 'q={ resource.service.name = "reclaimd" }' --data-urlencode limit=1 |
    jq -r '.traces[0].traceID // empty') || true
  [[ -n $trace_id ]] || sleep 3
done
if [[ -z $trace_id ]]; then
  not_ok "no trace of service reclaimd in Tempo after 120 s"
elif spans=$(curl -fsS --max-time 10 "$tempo/api/traces/$trace_id" |
  jq '[(.batches // .resourceSpans)[] | (.scopeSpans // .instrumentationLibrarySpans)[] | .spans[]] | length') &&
  ((spans > 0)); then
  ok "trace $trace_id: $spans spans"
else
  not_ok "trace $trace_id found by search but not fetched by id"
fi

echo "== 5. flip the mode: the headline moves"
headline=$(jq -c '.panels[] | select(.title == "Reclaimed fraction of DB wait") | .targets[0]
  | . + {datasource: {type: "prometheus", uid: "prometheus"}, instant: true, range: false}' \
  grafana/dashboards/reclaimed-waiting-time.json |
  sed -e 's/\${\{0,1\}instance}\{0,1\}/reclaimd/g' | substitute)
[[ -n $headline ]] || not_ok "no \"Reclaimed fraction of DB wait\" panel in the main dashboard"
# The headline's value for one mode of the main instance, through Grafana; empty when none.
fraction() { # MODE
  jq -n --argjson t "$headline" '{from: "now-5m", to: "now", queries: [$t + {refId: "A"}]}' |
    curl -fsS --max-time 30 -H 'Content-Type: application/json' -d @- "$grafana/api/ds/query" |
    jq -r --arg mode "$1" '.results.A.frames[]? | select(.schema.fields[-1].labels.mode == $mode)
      | .data.values[-1][-1] // empty'
}
sync_before=$(fraction sync || true)
log "sync mode, one worker: reclaimed fraction ${sync_before:-none}"
if [[ -n $sync_before ]] && awk -v f="$sync_before" 'BEGIN { exit !(f == 0) }'; then
  ok "headline is 0 in sync mode"
else
  not_ok "headline in sync mode is ${sync_before:-missing}, expected 0"
fi
sed -i.bak 's/^mode = "sync"/mode = "async"/' "$work/config/reclaimd.toml"
async_after=
deadline=$((SECONDS + 120))
while ((SECONDS < deadline)); do
  async_after=$(fraction async || true)
  if [[ -n $async_after ]] && awk -v f="$async_after" 'BEGIN { exit !(f > 0) }'; then break; fi
  sleep 5
done
if [[ -n $async_after ]] && awk -v f="$async_after" 'BEGIN { exit !(f > 0) }'; then
  ok "headline moved after the flip: async reclaims $async_after of its DB wait"
else
  not_ok "headline did not move within 120 s of the flip (async: ${async_after:-none})"
fi

echo "== 6. tear down (on exit)"
((failed == 0)) || exit 1
echo "compose smoke test passed"
