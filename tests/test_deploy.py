#!/usr/bin/env python3
"""The deployment files checked offline (no cluster, no network): every YAML under deploy/
parses; the Deployment's probes, ports and grace period agree with the server (/ready,
/health, the drain) and with the Service, PodDisruptionBudget and HPA that point at it; the
KServe InferenceService names the ServingRuntime; the compose file's Prometheus scrapes the
compose service; every series an alert rule reads is one longserve registers
(server/metrics.c); `promtool check rules` when promtool is installed.

    python3 tests/test_deploy.py SOURCE_ROOT      (exit 0 pass, 1 fail, 77 skip)
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    print("test_deploy: python3-yaml is not installed (tools/install-deps.sh installs it): skipped")
    sys.exit(77)

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
DEPLOY = ROOT / "deploy"
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


docs = {}
for f in sorted(DEPLOY.rglob("*.y*ml")):
    try:
        loaded = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
    except yaml.YAMLError as e:
        failures.append(f"{f}: not YAML: {e}")
        continue
    check(loaded, f"{f}: empty")
    for d in loaded:
        docs.setdefault(d.get("kind", f.name), []).append((f, d))

kinds = {k: v[0][1] for k, v in docs.items()}
for k in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
          "InferenceService", "ServingRuntime"):
    check(k in kinds, f"deploy/ has no {k}")

dep = kinds.get("Deployment", {})
labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
check(dep.get("spec", {}).get("selector", {}).get("matchLabels") == labels,
      "Deployment: selector does not match the pod template's labels")
pod = dep.get("spec", {}).get("template", {}).get("spec", {})
c = (pod.get("containers") or [{}])[0]
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check("http" in ports, "Deployment: no container port named http")
for probe, path in (("startupProbe", "/ready"), ("readinessProbe", "/ready"),
                    ("livenessProbe", "/health")):
    g = c.get(probe, {}).get("httpGet", {})
    check(g.get("path") == path, f"Deployment: {probe} is not GET {path}")
    check(g.get("port") in ("http", ports.get("http")), f"Deployment: {probe} port")
args = c.get("args", [])
drain = int(args[args.index("--shutdown-timeout") + 1]) if "--shutdown-timeout" in args else 30
pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
grace = pod.get("terminationGracePeriodSeconds", 30)
check(grace > pre_s + drain,
      f"Deployment: grace period {grace} s <= preStop {pre_s} s + --shutdown-timeout {drain} s")
env = {e["name"]: e.get("value") for e in c.get("env", [])}
check(env.get("LONGSERVE_PORT") in (None, str(ports.get("http"))),
      "Deployment: LONGSERVE_PORT differs from the container port")

svc = kinds.get("Service", {})
check(svc.get("spec", {}).get("selector") == labels, "Service: selector misses the pods")
check(all(p.get("targetPort") in ("http", ports.get("http")) for p in svc.get("spec", {})
          .get("ports", [])), "Service: targetPort is not the container's http port")
pdb = kinds.get("PodDisruptionBudget", {})
check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == labels,
      "PodDisruptionBudget: selector misses the pods")
check(("minAvailable" in pdb.get("spec", {})) != ("maxUnavailable" in pdb.get("spec", {})),
      "PodDisruptionBudget: exactly one of minAvailable / maxUnavailable")
hpa = kinds.get("HorizontalPodAutoscaler", {})
ref = hpa.get("spec", {}).get("scaleTargetRef", {})
check(ref.get("kind") == "Deployment" and ref.get("name") == dep.get("metadata", {}).get("name"),
      "HPA: scaleTargetRef is not the Deployment")
isvc, rt = kinds.get("InferenceService", {}), kinds.get("ServingRuntime", {})
model = isvc.get("spec", {}).get("predictor", {}).get("model", {})
check(model.get("runtime") == rt.get("metadata", {}).get("name"),
      "InferenceService: runtime is not the ServingRuntime's name")
check(model.get("protocolVersion") == "v2", "InferenceService: protocolVersion is not v2")
fmts = [f.get("name") for f in rt.get("spec", {}).get("supportedModelFormats", [])]
check(model.get("modelFormat", {}).get("name") in fmts,
      "InferenceService: modelFormat is not one the ServingRuntime supports")

compose = DEPLOY / "compose" / "compose.yaml"
prom = DEPLOY / "compose" / "prometheus.yml"
check(compose.exists() and prom.exists(), "deploy/compose: compose.yaml and prometheus.yml")
if compose.exists() and prom.exists():
    cs = yaml.safe_load(compose.read_text())["services"]
    check({"longserve", "prometheus"} <= set(cs), "compose: services longserve and prometheus")
    ls = cs.get("longserve", {})
    cmd = ls.get("command", [])
    port = cmd[cmd.index("--port") + 1] if "--port" in cmd else "3000"
    check(any(str(p).endswith(":" + port) for p in ls.get("ports", [])),
          "compose: longserve's --port is not published")
    pc = yaml.safe_load(prom.read_text())
    targets = [t for sc in pc.get("scrape_configs", []) for s in sc.get("static_configs", [])
               for t in s.get("targets", [])]
    check(f"longserve:{port}" in targets, f"prometheus.yml: no target longserve:{port}")

# alert rules read only series longserve has
src = (ROOT / "server" / "metrics.c").read_text()
known = set(re.findall(r'"((?:longserve|process)_[a-z_]+)', src))
hist = {n for n in known if n.endswith("_seconds") or n.endswith("_tokens") or "batch" in n}
known |= {n + s for n in hist for s in ("_bucket", "_sum", "_count")}
alerts = DEPLOY / "alerts.yaml"
check(alerts.exists(), "deploy/alerts.yaml is missing")
if alerts.exists():
    groups = yaml.safe_load(alerts.read_text()).get("groups", [])
    rules = [r for g in groups for r in g.get("rules", [])]
    check(rules, "alerts.yaml: no rules")
    for r in rules:
        check(r.get("alert") and r.get("expr"), f"alerts.yaml: a rule without alert/expr: {r}")
        for name in re.findall(r"\b(longserve_[a-z_]+)", r.get("expr", "")):
            check(name in known, f"alerts.yaml {r.get('alert')}: no series {name} in "
                                 "server/metrics.c")
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "rules", str(alerts)], capture_output=True,
                           text=True)
        check(p.returncode == 0, f"promtool check rules: {p.stdout}{p.stderr}")
    else:
        print("test_deploy: promtool not installed: rule syntax not checked by promtool")

for f in failures:
    print("FAIL:", f)
print(f"test_deploy: {len(docs)} kinds, {len(failures)} failures")
sys.exit(1 if failures else 0)
