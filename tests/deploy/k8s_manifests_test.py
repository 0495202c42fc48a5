#!/usr/bin/env python3
"""Checks deploy/k8s/ without a cluster: every manifest parses, and the pieces agree with each other and
with pooler (ports, probe paths, labels, config path, shutdown timing, pod hardening); the ConfigMap's
pooler.toml passes `pooler --check-config`.

Usage: k8s_manifests_test.py DEPLOY_K8S_DIR [POOLER_BINARY]
"""
import os
import subprocess
import sys
import tempfile
import tomllib
import unittest

import yaml

K8S_DIR = ""
POOLER = ""

# apiVersion each kind must use: the stable APIs, none deprecated or removed in current Kubernetes.
API_VERSIONS = {
    "ConfigMap": "v1",
    "Deployment": "apps/v1",
    "Service": "v1",
    "PodDisruptionBudget": "policy/v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}


def load_all():
    """{kind: (file name, object)} for every document of every .yaml in the directory."""
    found = {}
    for name in sorted(os.listdir(K8S_DIR)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(K8S_DIR, name), encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                kind = doc.get("kind")
                if kind in found:
                    raise AssertionError(f"{name}: a second {kind} (first in {found[kind][0]})")
                found[kind] = (name, doc)
    return found


def seconds(value):
    return float(value)


class K8sManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = load_all()
        cls.deployment = cls.objects["Deployment"][1]
        cls.service = cls.objects["Service"][1]
        cls.configmap = cls.objects["ConfigMap"][1]
        cls.pdb = cls.objects["PodDisruptionBudget"][1]
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        containers = cls.pod["containers"]
        cls.container = next(c for c in containers if c["name"] == "pooler")
        cls.config = tomllib.loads(cls.configmap["data"]["pooler.toml"])

    # Exactly the expected kinds, each with its stable apiVersion, a name and the app label.
    def test_kinds_and_api_versions(self):
        self.assertEqual(set(self.objects), set(API_VERSIONS))
        for kind, (name, obj) in self.objects.items():
            self.assertEqual(obj["apiVersion"], API_VERSIONS[kind], name)
            if kind != "Kustomization":
                self.assertTrue(obj["metadata"]["name"], name)
                self.assertEqual(obj["metadata"]["labels"]["app.kubernetes.io/name"], "pooler", name)

    # kustomization.yaml lists every other manifest, and only those.
    def test_kustomization_lists_every_manifest(self):
        listed = set(self.objects["Kustomization"][1]["resources"])
        files = {name for kind, (name, _) in self.objects.items() if kind != "Kustomization"}
        self.assertEqual(listed, files)

    # The Deployment's selector picks its own pods; the Service and the PDB select the same pods.
    def test_selectors_match_pod_labels(self):
        labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        selector = self.deployment["spec"]["selector"]["matchLabels"]
        self.assertTrue(selector)
        self.assertLessEqual(selector.items(), labels.items())
        self.assertLessEqual(self.service["spec"]["selector"].items(), labels.items())
        self.assertEqual(self.pdb["spec"]["selector"]["matchLabels"], selector)

    # Two replicas that never drop below the wanted count during a rollout; the PDB allows one down.
    def test_replicas_rollout_and_disruption_budget(self):
        spec = self.deployment["spec"]
        self.assertEqual(spec["replicas"], 2)
        self.assertEqual(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
        pdb = self.pdb["spec"]
        self.assertTrue(pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") == 1, pdb)

    # The ConfigMap's pooler.toml listens on all interfaces, on the ports the container and Service use.
    def test_ports_agree_with_config(self):
        pooler = self.config["pooler"]
        self.assertEqual(pooler["listen_addr"], "0.0.0.0")
        metrics_host, metrics_port = pooler["metrics_listen"].rsplit(":", 1)
        self.assertEqual(metrics_host, "0.0.0.0")
        ports = {p["name"]: p for p in self.container["ports"]}
        self.assertEqual(ports["postgres"]["containerPort"], pooler["listen_port"])
        self.assertEqual(ports["postgres"]["containerPort"], 6432)
        self.assertEqual(ports["metrics"]["containerPort"], int(metrics_port))
        self.assertEqual(ports["metrics"]["containerPort"], 9127)
        service_ports = {p["name"]: p for p in self.service["spec"]["ports"]}
        self.assertEqual(set(service_ports), {"postgres", "metrics"})
        for name, sp in service_ports.items():
            self.assertEqual(sp["port"], ports[name]["containerPort"], name)
            self.assertIn(sp["targetPort"], (name, ports[name]["containerPort"]), name)

    # Readiness on /readyz and liveness on /healthz, both on the metrics port.
    def test_probes(self):
        metrics_port = next(p for p in self.container["ports"] if p["name"] == "metrics")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = self.container[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertIn(get["port"], ("metrics", metrics_port["containerPort"]), probe)

    # The mounted ConfigMap provides exactly the file the container's command line names.
    def test_config_mount_matches_command_line(self):
        args = self.container["command"] + self.container["args"]
        self.assertEqual(args[0], "/usr/bin/pooler")
        config_path = args[args.index("-c") + 1]
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        mounts = [m for m in self.container["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
        self.assertEqual(len(mounts), 1, self.container["volumeMounts"])
        self.assertTrue(mounts[0].get("readOnly"))
        volume = volumes[mounts[0]["name"]]
        self.assertEqual(volume["configMap"]["name"], self.configmap["metadata"]["name"])
        file_name = config_path[len(mounts[0]["mountPath"]) + 1:]
        items = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
        key = items.get(file_name, file_name) if items else file_name
        self.assertIn(key, self.configmap["data"])

    # preStop sleeps so endpoints drain, and the grace period covers that sleep plus the SIGTERM drain.
    def test_shutdown_timing(self):
        command = self.container["lifecycle"]["preStop"]["exec"]["command"]
        self.assertTrue(command[0].endswith("sleep"), command)
        sleep = seconds(command[1])
        self.assertGreaterEqual(sleep, 5)
        shutdown_timeout = seconds(self.config["pooler"].get("shutdown_timeout", 30))
        grace = self.pod["terminationGracePeriodSeconds"]
        self.assertGreater(grace, sleep + shutdown_timeout)

    # Non-root, read-only root file system, no privilege escalation, every capability dropped.
    def test_security_context(self):
        pod_sc = self.pod["securityContext"]
        sc = self.container["securityContext"]
        self.assertTrue(pod_sc.get("runAsNonRoot") or sc.get("runAsNonRoot"))
        self.assertNotEqual(pod_sc.get("runAsUser", sc.get("runAsUser")), 0)
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertFalse(sc.get("privileged", False))

    # Requests for scheduling and a memory limit.
    def test_resources(self):
        resources = self.container["resources"]
        self.assertIn("cpu", resources["requests"])
        self.assertIn("memory", resources["requests"])
        self.assertIn("memory", resources["limits"])

    # Per-pod pools times the most pods a rollout can have stay within the budget the README and the
    # ConfigMap's comment state (90 = max_connections 100 less 10 reserved).
    def test_pool_sizes_fit_the_connection_budget(self):
        surge = self.deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        pods = self.deployment["spec"]["replicas"] + 2 * surge
        per_pod = sum(db.get("pool_size", 5) + db.get("max_overflow", 10) for db in self.config["databases"].values())
        self.assertLessEqual(per_pod * pods, 90)

    # The daemon itself accepts the ConfigMap's pooler.toml.
    def test_config_passes_check_config(self):
        if not POOLER:
            self.skipTest("no pooler binary given")
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(self.configmap["data"]["pooler.toml"])
        try:
            result = subprocess.run([POOLER, "--check-config", f.name], capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(f.name)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    K8S_DIR = sys.argv[1]
    POOLER = sys.argv[2] if len(sys.argv) > 2 else ""
    unittest.main(argv=[sys.argv[0], "-v"])
