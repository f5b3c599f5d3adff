#!/usr/bin/env bash
# Offline validation of deploy/k8s/ (no cluster needed): renders every overlay with
# `kubectl kustomize` and checks it with kubernetes-validate --strict, check-jsonschema against
# the vendored Prometheus Operator CRDs, promtool, and the repo's own checks
# (ci/k8s_validate.py lists them). A missing tool fails: nothing is skipped.
#
# Tools (.ci/run installs them): kubectl (>= 1.27, for its built-in kustomize), and the
# Python packages kubernetes-validate, check-jsonschema and PyYAML, all pinned in
# ci/k8s-requirements.txt; promtool (Debian: prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in kubectl kubernetes-validate check-jsonschema promtool python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "k8s-validate: missing tools: ${missing[*]}" >&2
  echo "  pip install -r ci/k8s-requirements.txt   (kubectl, kubernetes-validate, check-jsonschema)" >&2
  echo "  apt-get install prometheus               (promtool)" >&2
  exit 1
fi
python3 -c 'import yaml, tomllib' 2>/dev/null || {
  echo "k8s-validate: python3 needs PyYAML and Python >= 3.11 (tomllib)" >&2
  exit 1
}
echo "kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["clientVersion"]["gitVersion"], "kustomize", v.get("kustomizeVersion"))')"
echo "$(kubernetes-validate --version 2>&1 | head -n 1); $(check-jsonschema --version); $(promtool --version 2>&1 | head -n 1)"
exec python3 ci/k8s_validate.py
