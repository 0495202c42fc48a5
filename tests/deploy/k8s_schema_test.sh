#!/usr/bin/env bash
# DeployK8s.Schema: validates deploy/k8s/*.yaml against the Kubernetes OpenAPI schemas, strictly (unknown
# fields fail). Neither kubeconform nor kubeval is packaged for Debian 12 or npm, so the schemas come from the
# npm package kubernetes-models, pinned by k8s_schema/package-lock.json and installed once per build tree.
# Exit 77 (skipped) when node/npm are missing or the npm registry cannot be reached; the python test
# (DeployK8s.Manifests) still checks the manifests' consistency then.
# Usage: k8s_schema_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1
work=$2

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not installed"
    exit 77
  fi
done

mkdir -p "$work"
cp "$src/tests/deploy/k8s_schema/check.js" "$work/check.js"
if ! cmp -s "$src/tests/deploy/k8s_schema/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules/kubernetes-models" ]; then
  rm -rf "$work/node_modules"
  cp "$src/tests/deploy/k8s_schema/package.json" "$src/tests/deploy/k8s_schema/package-lock.json" "$work/"
  echo "installing kubernetes-models (pinned) into $work"
  if ! (cd "$work" && timeout 300 npm ci --no-audit --no-fund --loglevel=error); then
    rm -f "$work/package-lock.json"
    echo "SKIP: npm ci failed (registry unreachable?); DeployK8s.Manifests still checks the manifests"
    exit 77
  fi
fi

cd "$work"
node check.js "$src"/deploy/k8s/*.yaml
