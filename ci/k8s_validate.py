#!/usr/bin/env python3
"""Offline validation of deploy/k8s/ (no cluster needed). Run by ci/k8s-validate.sh.

Renders every overlay with `kubectl kustomize` and checks the result:
- every built-in object with `kubernetes-validate --strict`, against the oldest and the newest
  Kubernetes this supports;
- the ServiceMonitor and PrometheusRule against the Prometheus Operator's CRD schemas
  vendored in deploy/k8s/schemas/ (converted to JSON Schema, unknown fields rejected), with
  `check-jsonschema`;
- the PrometheusRule's groups are prometheus/rules/reclaimd.yml's, pass `promtool check rules`
  and the rule unit tests (`promtool test rules`);
- the dashboards and the daemon config in the ConfigMaps are byte-identical to
  grafana/dashboards/ and config/reclaimd.toml;
- the properties the issue asks of the daemon (probes, config mount, security context,
  resources, graceful termination, instance labels per pod, 5 s scrape interval), and that
  every reference (Service selector, port name, ConfigMap, Secret) resolves;
- the validators themselves reject a bad object, and ci/k8s-smoke.sh refuses to run without
  --context and skips loudly without a cluster.

Prints one line per check and ends with "N passed, M failed"; exits 1 on any failure.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import traceback
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy/k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
# Oldest (kubectl 1.27's kustomize is the floor the README names) and newest schemas that
# kubernetes-validate carries.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]
SCHEMAS = K8S / "schemas/prometheus-operator-v0.93.0"
CRDS = {
    "ServiceMonitor": SCHEMAS / "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": SCHEMAS / "monitoring.coreos.com_prometheusrules.yaml",
}
DAEMON_IMAGE = "reclaimd:local"
# The Secret that overlays/production expects to exist (created by hand, never in the repo).
EXTERNAL_SECRET = "reclaimd-mongodb"

WORK = Path(tempfile.mkdtemp(prefix="k8s-validate-"))
results: list[tuple[str, bool]] = []


class Failed(Exception):
    pass


def check(name: str):
    """Registers and runs a check at once; a check fails by raising (assert or Failed)."""

    def run(fn):
        try:
            fn()
            results.append((name, True))
            print(f"ok    {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
            results.append((name, False))
            detail = str(e) if isinstance(e, (AssertionError, Failed)) else traceback.format_exc()
            print(f"FAIL  {name}\n" + "\n".join("      " + l for l in detail.splitlines()), flush=True)
        return fn

    return run


def sh(*args: str | Path, ok: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if ok and p.returncode != 0:
        raise Failed(f"{' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p


# --- rendering ------------------------------------------------------------------------------

rendered: dict[str, list[dict]] = {}
for overlay in OVERLAYS:

    @check(f"render overlays/{overlay} with kubectl kustomize")
    def _(overlay=overlay):
        out = sh("kubectl", "kustomize", K8S / "overlays" / overlay).stdout
        docs = [d for d in yaml.safe_load_all(out) if d]
        assert docs, "rendered nothing"
        (WORK / f"{overlay}.yaml").write_text(out)
        rendered[overlay] = docs


def objects(overlay: str, kind: str | None = None) -> list[dict]:
    return [d for d in rendered.get(overlay, []) if kind is None or d["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict:
    found = [d for d in objects(overlay, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"overlays/{overlay}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(overlay: str) -> list[dict]:
    return [d for d in rendered.get(overlay, []) if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def pod_spec(w: dict) -> dict:
    return w["spec"]["template"]["spec"]


def daemons(overlay: str) -> list[dict]:
    return [
        w
        for w in objects(overlay, "Deployment")
        if w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "daemon"
    ]


# --- Kubernetes schemas ---------------------------------------------------------------------

for overlay in OVERLAYS:
    for version in KUBE_VERSIONS:

        @check(f"overlays/{overlay}: kubernetes-validate --strict, Kubernetes {version}")
        def _(overlay=overlay, version=version):
            builtin = [d for d in objects(overlay) if d["kind"] not in CRDS]
            assert builtin, "nothing to validate"
            path = WORK / f"{overlay}-builtin.yaml"
            path.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
            p = sh("kubernetes-validate", "--strict", "-k", version, path, ok=False)
            out = p.stdout + p.stderr
            # An unknown kind is only a warning to kubernetes-validate: not here.
            if p.returncode != 0 or "WARN" in out or "ERROR" in out:
                raise Failed(out)
            passed = out.count(" passed for resource ")
            assert passed == len(builtin), f"{passed} of {len(builtin)} objects validated:\n{out}"


# --- Prometheus Operator CRD schemas ----------------------------------------------------------

VENDORED_SHA256 = {}
for line in (SCHEMAS / "README.md").read_text().splitlines():
    m = re.match(r"^\|\s*`(monitoring\.coreos\.com_\w+\.yaml)`\s*\|\s*`([0-9a-f]{64})`", line)
    if m:
        VENDORED_SHA256[m.group(1)] = m.group(2)


@check("vendored CRDs are the published files (sha256 as noted in schemas/README.md)")
def _():
    assert set(VENDORED_SHA256) == {p.name for p in CRDS.values()}, VENDORED_SHA256
    for path in CRDS.values():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == VENDORED_SHA256[path.name], f"{path.name}: {digest}"


OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def to_json_schema(node):
    """A CRD's structural OpenAPI v3 schema as JSON Schema that, like the API server with
    strict field validation, rejects unknown fields. CEL rules (x-kubernetes-validations)
    are not evaluated."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node.get("pattern"), str):
        # The patterns are Go regexps, checked here with Python's `re`, which takes an inline
        # flag such as `^(?i)...` only at the very start; for a flag that follows `^` only, the
        # meaning is the same.
        out["pattern"] = re.sub(r"^\^\(\?([a-z]+)\)", r"(?\1)^", node["pattern"])
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(kind: str) -> Path:
    crd = yaml.safe_load(CRDS[kind].read_text())
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/v1"}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    path = WORK / f"{kind}.schema.json"
    path.write_text(json.dumps(schema))
    return path


def validate_crd_object(kind: str, obj: dict, name: str) -> subprocess.CompletedProcess:
    path = WORK / f"{name}.json"
    path.write_text(json.dumps(obj))
    return sh("check-jsonschema", "--regex-variant", "python", "--schemafile", crd_schema(kind), path, ok=False)


for overlay in OVERLAYS:

    @check(f"overlays/{overlay}: ServiceMonitor and PrometheusRule match the CRD schemas (check-jsonschema)")
    def _(overlay=overlay):
        for kind in CRDS:
            objs = objects(overlay, kind)
            assert len(objs) == 1, f"expected one {kind}, found {len(objs)}"
            p = validate_crd_object(kind, objs[0], f"{overlay}-{kind}")
            if p.returncode != 0:
                raise Failed(p.stdout + p.stderr)


def rejected(p: subprocess.CompletedProcess) -> bool:
    """Failed validation of the object, not of the schema or the tool."""
    return p.returncode != 0 and "Schema validation errors were encountered" in p.stdout + p.stderr


@check("the CRD schema check rejects an unknown field, a bad interval and a missing rule expr")
def _():
    for kind in CRDS:
        p = validate_crd_object(kind, one("demo", kind, "reclaimd"), f"good-{kind}")
        assert p.returncode == 0, p.stdout + p.stderr
    sm = copy.deepcopy(one("demo", "ServiceMonitor", "reclaimd"))
    sm["spec"]["endpoints"][0]["intervall"] = "5s"
    assert rejected(validate_crd_object("ServiceMonitor", sm, "bad-sm-1")), "unknown field passed"
    sm = copy.deepcopy(one("demo", "ServiceMonitor", "reclaimd"))
    sm["spec"]["endpoints"][0]["interval"] = "5 seconds"
    assert rejected(validate_crd_object("ServiceMonitor", sm, "bad-sm-2")), "bad duration passed"
    pr = copy.deepcopy(one("demo", "PrometheusRule", "reclaimd"))
    del pr["spec"]["groups"][0]["rules"][0]["expr"]
    assert rejected(validate_crd_object("PrometheusRule", pr, "bad-pr")), "rule without expr passed"


@check("kubernetes-validate --strict rejects an unknown field")
def _():
    svc = copy.deepcopy(one("demo", "Service", "reclaimd"))
    svc["spec"]["selectr"] = svc["spec"].pop("selector")
    path = WORK / "bad-service.yaml"
    path.write_text(yaml.safe_dump(svc))
    p = sh("kubernetes-validate", "--strict", path, ok=False)
    assert p.returncode != 0 and "'selectr' was unexpected" in p.stdout + p.stderr, p.stdout + p.stderr


# --- one source of truth --------------------------------------------------------------------


@check("deploy/k8s/base/prometheusrule.yaml is what render-prometheusrule.sh writes")
def _():
    sh("bash", K8S / "render-prometheusrule.sh", "--check")


RULES = REPO / "prometheus/rules/reclaimd.yml"

for overlay in OVERLAYS:

    @check(f"overlays/{overlay}: the PrometheusRule's groups are prometheus/rules/reclaimd.yml's")
    def _(overlay=overlay):
        spec = one(overlay, "PrometheusRule", "reclaimd")["spec"]
        source = yaml.safe_load(RULES.read_text())
        assert spec == source, "rendered spec differs from prometheus/rules/reclaimd.yml"


@check("the rendered PrometheusRule passes promtool check rules and the rule unit tests")
def _():
    spec = one("demo", "PrometheusRule", "reclaimd")["spec"]
    tree = WORK / "promtool"
    (tree / "rules").mkdir(parents=True)
    (tree / "tests").mkdir()
    (tree / "rules/reclaimd.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(REPO / "prometheus/tests/reclaimd_test.yml", tree / "tests")
    out = sh("promtool", "check", "rules", tree / "rules/reclaimd.yml").stdout
    count = sum(len(g["rules"]) for g in spec["groups"])
    assert f"SUCCESS: {count} rules found" in out, out
    # The unit tests name ../rules/reclaimd.yml: here that is the rendered copy.
    sh("promtool", "test", "rules", tree / "tests/reclaimd_test.yml")


DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))

for overlay in OVERLAYS:

    @check(f"overlays/{overlay}: dashboard ConfigMaps hold grafana/dashboards/ byte for byte, sidecar-labelled")
    def _(overlay=overlay):
        assert DASHBOARDS, "no dashboards"
        found = {}
        for cm in objects(overlay, "ConfigMap"):
            if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
                for key, value in cm["data"].items():
                    found[key] = value
        assert sorted(found) == [p.name for p in DASHBOARDS], f"dashboards in ConfigMaps: {sorted(found)}"
        for path in DASHBOARDS:
            assert found[path.name].encode() == path.read_bytes(), f"{path.name} differs"

    @check(f"overlays/{overlay}: reclaimd-config holds config/reclaimd.toml byte for byte")
    def _(overlay=overlay):
        cm = one(overlay, "ConfigMap", "reclaimd-config")
        assert list(cm["data"]) == ["reclaimd.toml"]
        assert cm["data"]["reclaimd.toml"].encode() == (REPO / "config/reclaimd.toml").read_bytes()


# --- the daemon -----------------------------------------------------------------------------

CONFIG = tomllib.loads((REPO / "config/reclaimd.toml").read_text())


def seconds(duration: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(ms|s|m)", duration)
    assert m, duration
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def container(w: dict, name: str) -> dict:
    (c,) = [c for c in pod_spec(w)["containers"] if c["name"] == name]
    return c


def env(c: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


for overlay in OVERLAYS:

    @check(f"overlays/{overlay}: daemons probe /readyz and /healthz on the admin port")
    def _(overlay=overlay):
        ds = daemons(overlay)
        assert ds, "no daemon Deployment"
        for d in ds:
            c = container(d, "reclaimd")
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert ports == {"http": 8080, "admin": 9464}, ports
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
            e = env(c)
            assert e["RECLAIMD_SERVER__LISTEN"] == "0.0.0.0:8080"
            assert e["RECLAIMD_ADMIN__LISTEN"] == "0.0.0.0:9464"

    @check(f"overlays/{overlay}: daemons read the config from the reclaimd-config ConfigMap, mounted as a directory")
    def _(overlay=overlay):
        for d in daemons(overlay):
            c = container(d, "reclaimd")
            assert c["args"] == ["serve", "--config", "/etc/reclaimd/reclaimd.toml"], c["args"]
            (m,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/reclaimd"]
            # A subPath mount never sees an update.
            assert "subPath" not in m and "subPathExpr" not in m, m
            (v,) = [v for v in pod_spec(d)["volumes"] if v["name"] == m["name"]]
            assert v == {"name": m["name"], "configMap": {"name": "reclaimd-config"}}, v

    @check(f"overlays/{overlay}: only side-by-side instances pin RECLAIMD_MODE; the MongoDB URI is a Secret")
    def _(overlay=overlay):
        for d in daemons(overlay):
            name = d["metadata"]["name"]
            e = env(container(d, "reclaimd"))
            expected = {"reclaimd": None, "reclaimd-sync": "sync", "reclaimd-async": "async"}[name]
            assert e.get("RECLAIMD_MODE") == expected, f"{name}: RECLAIMD_MODE={e.get('RECLAIMD_MODE')}"
            assert e["OTEL_SERVICE_NAME"] == name
            assert "secretKeyRef" in e["RECLAIMD_MONGODB__URI"], e["RECLAIMD_MONGODB__URI"]

    @check(f"overlays/{overlay}: terminationGracePeriodSeconds covers preStop + server.drain_timeout")
    def _(overlay=overlay):
        drain = seconds(CONFIG["server"]["drain_timeout"])
        for d in daemons(overlay):
            c = container(d, "reclaimd")
            cmd = c["lifecycle"]["preStop"]["exec"]["command"]
            assert cmd[0] == "sleep", cmd
            grace = pod_spec(d)["terminationGracePeriodSeconds"]
            assert grace >= float(cmd[1]) + drain + 1, f"grace {grace} s < preStop {cmd[1]} s + drain {drain} s"

    @check(f"overlays/{overlay}: every container runs restricted (non-root, read-only, no capabilities, seccomp) with a memory limit")
    def _(overlay=overlay):
        for w in workloads(overlay):
            spec = pod_spec(w)
            where = f"{w['kind']} {w['metadata']['name']}"
            assert spec.get("automountServiceAccountToken") is False, where
            psc = spec.get("securityContext", {})
            for c in spec.get("initContainers", []) + spec["containers"]:
                sc = c.get("securityContext", {})
                at = f"{where}/{c['name']}"
                assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, at
                assert (sc.get("runAsUser", psc.get("runAsUser")) or 0) > 0, at
                seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
                assert seccomp.get("type") == "RuntimeDefault", at
                assert sc.get("allowPrivilegeEscalation") is False, at
                assert sc.get("readOnlyRootFilesystem") is True, at
                assert sc.get("capabilities", {}).get("drop") == ["ALL"], at
                assert "add" not in sc.get("capabilities", {}), at
                assert c["resources"]["limits"]["memory"], at
                assert c["resources"]["requests"]["memory"], at

    @check(f"overlays/{overlay}: no pod gets Service environment variables (RECLAIMD_PORT would be read as config)")
    def _(overlay=overlay):
        for w in workloads(overlay):
            assert pod_spec(w).get("enableServiceLinks") is False, w["metadata"]["name"]

    @check(f"overlays/{overlay}: daemon resources are the ones derived from BENCHMARKS.md")
    def _(overlay=overlay):
        bench = (REPO / "BENCHMARKS.md").read_text()
        # The limit covers P4's measured peak with 10,000 waiting requests.
        peak = max(float(x) for x in re.findall(r"\| daemon, (?:async|sync)[^|]*\| [0-9.]+ MB \| [0-9.]+ MB \| ([0-9.]+) MB \|", bench))
        for d in daemons(overlay):
            r = container(d, "reclaimd")["resources"]
            limit = r["limits"]["memory"]
            assert limit.endswith("Mi"), limit
            limit_mb = int(limit[:-2]) * 1.048576
            assert peak < limit_mb < peak * 1.25, f"limit {limit} vs measured peak {peak} MB"


# --- Services, monitoring, references -------------------------------------------------------


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


for overlay in OVERLAYS:

    @check(f"overlays/{overlay}: every Service selects pods that have its target ports")
    def _(overlay=overlay):
        for svc in objects(overlay, "Service"):
            pods = [w for w in workloads(overlay) if selects(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
            assert pods, f"Service {svc['metadata']['name']} selects no pod"
            for port in svc["spec"]["ports"]:
                for w in pods:
                    names = {p.get("name") for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
                    assert port["targetPort"] in names, f"{svc['metadata']['name']}: {port['targetPort']} not in {w['metadata']['name']}"

    @check(f"overlays/{overlay}: the ServiceMonitor scrapes every daemon pod's admin port every 5 s as job=reclaimd, instance=pod")
    def _(overlay=overlay):
        sm = one(overlay, "ServiceMonitor", "reclaimd")["spec"]
        (ep,) = sm["endpoints"]
        assert ep["interval"] == "5s" and ep["path"] == "/metrics", ep
        assert {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "instance", "action": "replace"} in ep["relabelings"]
        (svc,) = [s for s in objects(overlay, "Service") if selects(sm["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert ep["port"] in {p["name"] for p in svc["spec"]["ports"]}
        assert svc["spec"].get("clusterIP") == "None" and svc["spec"].get("publishNotReadyAddresses") is True
        # The ReclaimdDown rule matches up{job="reclaimd"}.
        assert svc["metadata"]["labels"][sm["jobLabel"]] == "reclaimd"
        scraped = {w["metadata"]["name"] for w in workloads(overlay) if selects(svc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])}
        assert scraped == {d["metadata"]["name"] for d in daemons(overlay)}, scraped

    @check(f"overlays/{overlay}: every ConfigMap and Secret a pod uses is in the overlay")
    def _(overlay=overlay):
        have = {(d["kind"], d["metadata"]["name"]) for d in objects(overlay)}
        missing = set()
        for w in workloads(overlay):
            spec = pod_spec(w)
            refs = [("ConfigMap", v["configMap"]["name"]) for v in spec.get("volumes", []) if "configMap" in v]
            for c in spec.get("initContainers", []) + spec["containers"]:
                refs += [("ConfigMap", f["configMapRef"]["name"]) for f in c.get("envFrom", []) if "configMapRef" in f]
                for e in c.get("env", []):
                    src = e.get("valueFrom", {})
                    if "secretKeyRef" in src:
                        refs.append(("Secret", src["secretKeyRef"]["name"]))
                    if "configMapKeyRef" in src:
                        refs.append(("ConfigMap", src["configMapKeyRef"]["name"]))
            missing |= {r for r in refs if r not in have}
        allowed = {("Secret", EXTERNAL_SECRET)} if overlay == "production" else set()
        assert missing == allowed, f"unresolved: {sorted(missing)}"

    @check(f"overlays/{overlay}: images are the compose stack's")
    def _(overlay=overlay):
        compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
        compose_images = {s["image"] for s in compose["services"].values() if "image" in s}
        for w in workloads(overlay):
            for c in pod_spec(w).get("initContainers", []) + pod_spec(w)["containers"]:
                assert c["image"] == DAEMON_IMAGE or c["image"] in compose_images, c["image"]
                if c["image"] == DAEMON_IMAGE:
                    assert c["imagePullPolicy"] == "IfNotPresent"


@check("overlays/demo: a not-for-production MongoDB and the URI Secret for it; production has neither")
def _():
    mongo = one("demo", "StatefulSet", "mongo")
    assert mongo["metadata"]["labels"]["not-for-production"] == "true"
    secret = [s for s in objects("demo", "Secret") if s["metadata"]["name"].startswith("reclaimd-mongodb")]
    assert len(secret) == 1 and secret[0]["metadata"]["labels"]["not-for-production"] == "true"
    assert not objects("production", "StatefulSet") and not objects("production", "Secret")
    labelled = [d["metadata"]["name"] for d in objects("production") if d["metadata"].get("labels", {}).get("not-for-production")]
    assert not labelled, labelled


@check("overlays/side-by-side: a sync and an async instance under one load with both targets")
def _():
    load = one("side-by-side", "Deployment", "load-side-by-side")
    args = container(load, "load")["args"]
    targets = [a for a in args if a.startswith("--target=")]
    assert targets == ["--target=http://reclaimd-sync:8080", "--target=http://reclaimd-async:8080"], targets
    for mode in ("sync", "async"):
        svc = one("side-by-side", "Service", f"reclaimd-{mode}")
        (d,) = [d for d in daemons("side-by-side") if selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert d["metadata"]["name"] == f"reclaimd-{mode}"


@check("the OTLP endpoint is one setting, empty (no export) by default")
def _():
    for overlay in OVERLAYS:
        (cm,) = [c for c in objects(overlay, "ConfigMap") if c["metadata"]["name"].startswith("reclaimd-telemetry")]
        assert cm["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", cm["data"]
        for d in daemons(overlay):
            refs = [f["configMapRef"]["name"] for f in container(d, "reclaimd")["envFrom"]]
            assert cm["metadata"]["name"] in refs


# --- ci/k8s-smoke.sh, without a cluster -----------------------------------------------------

SMOKE = REPO / "ci/k8s-smoke.sh"


@check("ci/k8s-smoke.sh refuses to run without --context")
def _():
    p = sh("bash", SMOKE, ok=False)
    assert p.returncode == 2 and "--context" in p.stderr, (p.returncode, p.stderr)


@check("ci/k8s-smoke.sh skips loudly (exit 77) when the context's cluster is unreachable")
def _():
    kubeconfig = WORK / "kubeconfig"
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "nobody", "user": {"token": "none"}}],
                "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
                "current-context": "nowhere",
            }
        )
    )
    p = sh(
        "bash", SMOKE, "--context", "nowhere",
        ok=False, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 77, (p.returncode, p.stdout, p.stderr)
    assert "SKIPPED" in p.stderr and "nothing was tested" in p.stderr, p.stderr


# --- summary --------------------------------------------------------------------------------

shutil.rmtree(WORK, ignore_errors=True)
passed = sum(ok for _, ok in results)
failed = len(results) - passed
print(f"\nk8s-validate: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
