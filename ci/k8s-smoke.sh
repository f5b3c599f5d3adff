#!/usr/bin/env bash
# Smoke test of deploy/k8s on a real cluster with the Prometheus Operator (kube-prometheus-stack):
#
#   ci/k8s-smoke.sh --context NAME [--overlay demo|side-by-side] [--image IMAGE]
#                   [--namespace NS] [--release NAME] [--keep]
#
# Renders the overlay into its own namespace (default reclaimd-smoke, which must not exist yet),
# applies it to the cluster of kubectl context NAME, waits for the rollouts and the seed Job,
# calls the API through a port-forward, checks that Prometheus scrapes every daemon pod (its
# `up` is 1), flips the mode by editing the reclaimd-config ConfigMap and waits for the daemon
# to serve in the new mode, then deletes the namespace (unless --keep).
#
#   --context   required: the kubectl context to use; nothing runs without it.
#   --image     the reclaimd image the cluster can pull (default reclaimd:local, e.g. after
#               `kind load docker-image reclaimd:local` or `minikube image load reclaimd:local`).
#   --release   the `release` label kube-prometheus-stack's Prometheus selects (its Helm release
#               name; default kube-prometheus-stack).
#
# Exit status: 0 passed, 1 failed, 2 usage error, 77 skipped: no cluster reachable at that
# context (nothing was tested). Needs kubectl, curl and jq.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
context="" overlay=demo image=reclaimd:local namespace=reclaimd-smoke release=kube-prometheus-stack keep=0

usage() {
  sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "ci/k8s-smoke.sh: $1" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --context) context="${2:-}"; shift 2 || usage "--context needs a value" ;;
    --overlay) overlay="${2:-}"; shift 2 || usage "--overlay needs a value" ;;
    --image) image="${2:-}"; shift 2 || usage "--image needs a value" ;;
    --namespace) namespace="${2:-}"; shift 2 || usage "--namespace needs a value" ;;
    --release) release="${2:-}"; shift 2 || usage "--release needs a value" ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown argument: $1" ;;
  esac
done
[[ -n "$context" ]] || usage "refusing to run without an explicit --context (it applies to a real cluster)"
case "$overlay" in demo|side-by-side) ;; *) usage "--overlay must be demo or side-by-side (production needs your MongoDB Secret)" ;; esac

for tool in kubectl curl jq; do
  command -v "$tool" >/dev/null || { echo "ci/k8s-smoke.sh: $tool is not installed" >&2; exit 1; }
done
kc() { kubectl --context "$context" "$@"; }
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

kubectl config get-contexts "$context" >/dev/null 2>&1 || usage "no context named '$context' in the kubeconfig"
if ! kc version --request-timeout=10s </dev/null >/dev/null 2>&1; then
  {
    echo "################################################################################"
    echo "# SKIPPED: ci/k8s-smoke.sh: no cluster reachable at context '$context'."
    echo "# nothing was tested. (kubectl version: $(kc version --request-timeout=10s </dev/null 2>&1 | tail -n 1))"
    echo "################################################################################"
  } >&2
  exit 77
fi

for crd in servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com; do
  kc get crd "$crd" >/dev/null 2>&1 ||
    fail "CRD $crd is missing: install kube-prometheus-stack (or the Prometheus Operator) first"
done
if kc get namespace "$namespace" >/dev/null 2>&1; then
  fail "namespace $namespace already exists; pass another --namespace (this script deletes the one it creates)"
fi

work="$(mktemp -d)"
forwards=()
cleanup() {
  local pid
  for pid in "${forwards[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -f "$work/rendered.yaml" ]]; then
    if ((keep)); then
      echo "kept: namespace $namespace (delete it with: kubectl --context $context delete namespace $namespace)"
    else
      step "cleaning up: deleting namespace $namespace"
      kc delete namespace "$namespace" --wait=true --timeout=180s || true
    fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step "rendering overlays/$overlay into namespace $namespace (image $image, release label $release)"
# Split IMAGE into name and tag or digest for kustomize's image transformer.
if [[ "$image" == *@* ]]; then
  image_fields="newName: ${image%@*}
    digest: ${image#*@}"
elif [[ "${image##*/}" == *:* ]]; then
  image_fields="newName: ${image%:*}
    newTag: \"${image##*:}\""
else
  image_fields="newName: $image
    newTag: latest"
fi
cat >"$work/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $namespace
resources:
  - $(realpath --relative-to="$work" "$repo/deploy/k8s/overlays/$overlay")
images:
  - name: reclaimd
    $image_fields
patches:
  - target:
      group: monitoring.coreos.com
    patch: |-
      - op: replace
        path: /metadata/labels/release
        value: $release
EOF
kubectl kustomize "$work" >"$work/rendered.yaml"

step "applying to context $context"
kc apply --server-side --force-conflicts -f "$work/rendered.yaml"

step "waiting for the rollouts and the seed Job"
for deploy in $(kc -n "$namespace" get deployments -o name); do
  kc -n "$namespace" rollout status "$deploy" --timeout=300s
done
kc -n "$namespace" wait --for=condition=complete job/reclaimd-seed --timeout=300s

# forward VAR TARGET PORT [NAMESPACE]: starts `kubectl port-forward TARGET :PORT` in the
# background and sets VAR to the local port it picked.
forward() {
  local log="$work/forward-${#forwards[@]}.log" port=""
  kc -n "${4:-$namespace}" port-forward --address 127.0.0.1 "$2" ":$3" >"$log" 2>&1 &
  forwards+=("$!")
  for _ in $(seq 100); do
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -n 1)"
    if [[ -n "$port" ]]; then
      printf -v "$1" '%s' "$port"
      return 0
    fi
    sleep 0.2
  done
  cat "$log" >&2
  fail "port-forward to $2 did not start"
}

# Local ports of the port-forwards, set by `forward` (printf -v).
app="" admin="" prom=""

step "calling the API through a port-forward"
forward app svc/reclaimd 8080
forward admin deploy/reclaimd 9464
headers="$(curl -fsS -D - -o "$work/user.json" "http://127.0.0.1:$app/api/users/1")" ||
  fail "GET /api/users/1 failed"
grep -qi '^server-timing:.*mode;desc="sync"' <<<"$headers" || fail "no Server-Timing with mode sync: $headers"
jq -e '.user.id == 1' "$work/user.json" >/dev/null || fail "unexpected body: $(cat "$work/user.json")"
curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null || fail "/readyz is not 200"
curl -fsS "http://127.0.0.1:$admin/metrics" | grep -q '^reclaimd_build_info' || fail "/metrics has no reclaimd_build_info"
echo "ok: GET /api/users/1 answered in sync mode; /readyz 200; /metrics serves reclaimd_*"

step "checking that Prometheus scrapes every daemon pod (up == 1)"
read -r prom_ns prom_svc < <(kc get svc -A -l operated-prometheus=true \
  -o jsonpath='{range .items[0]}{.metadata.namespace} {.metadata.name}{"\n"}{end}') ||
  fail "no Prometheus found (no Service labelled operated-prometheus=true)"
forward prom "svc/$prom_svc" 9090 "$prom_ns"
pods="$(kc -n "$namespace" get pods -l app.kubernetes.io/component=daemon -o name | wc -l)"
query="up{namespace=\"$namespace\",job=\"reclaimd\"} == 1"
deadline=$((SECONDS + 240))
until up="$(curl -fsS -G "http://127.0.0.1:$prom/api/v1/query" --data-urlencode "query=$query" |
  jq '.data.result | length')" && ((up >= pods)); do
  ((SECONDS < deadline)) ||
    fail "Prometheus ($prom_ns/$prom_svc) has ${up:-0} of $pods targets up after 240 s: is its serviceMonitorSelector matching release=$release?"
  sleep 5
done
echo "ok: $up of $pods daemon pods scraped and up in $prom_ns/$prom_svc"

step "flipping the mode through the ConfigMap"
toml="$(kc -n "$namespace" get configmap reclaimd-config -o json | jq -r '.data["reclaimd.toml"]')"
grep -q '^mode = "sync"' <<<"$toml" || fail "reclaimd-config has no line mode = \"sync\""
# shellcheck disable=SC2001 # anchored to the start of a line: no parameter expansion does that
flipped="$(sed 's/^mode = "sync"/mode = "async"/' <<<"$toml")"
kc -n "$namespace" patch configmap reclaimd-config --type merge \
  -p "$(jq -n --arg t "$flipped" '{data: {"reclaimd.toml": $t}}')"
# The kubelet refreshes ConfigMap volumes on its sync period (about a minute by default).
edited=$SECONDS
deadline=$((SECONDS + 180))
until [[ "$(curl -fsS "http://127.0.0.1:$admin/admin/mode" | jq -r .mode)" == async ]]; do
  ((SECONDS < deadline)) || fail "the daemon still serves sync mode 180 s after the ConfigMap edit"
  sleep 5
done
headers="$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$app/api/users/1")"
grep -qi '^server-timing:.*mode;desc="async"' <<<"$headers" || fail "not served in async mode: $headers"
echo "ok: the ConfigMap edit flipped the daemon to async (seen after $((SECONDS - edited)) s)"

step "PASSED: ci/k8s-smoke.sh on context $context"
