// Validates Kubernetes manifests against the Kubernetes OpenAPI schemas compiled into kubernetes-models,
// strictly: besides types and required fields, any field the schema does not define is an error (as
// kubeconform -strict does), found by recording which keys the validator reads.
// Usage: node check.js FILE.yaml... ; exit 0 when every document is valid.
"use strict";
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

const schemaDir = path.join(path.dirname(require.resolve("kubernetes-models/package.json")), "_schemas");

// apps/v1 Deployment -> IoK8sApiAppsV1Deployment; v1 ConfigMap -> IoK8sApiCoreV1ConfigMap.
function schemaFile(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  return path.join(schemaDir, `IoK8sApi${cap(group.split(".")[0])}${cap(version)}${kind}.js`);
}

// A copy of obj whose every object records the keys read from it; `seen` collects (path, object, keys).
function track(obj, where, seen) {
  if (obj === null || typeof obj !== "object") return obj;
  const touched = new Set();
  const copy = Array.isArray(obj)
    ? obj.map((v, i) => track(v, `${where}[${i}]`, seen))
    : Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, track(v, `${where}.${k}`, seen)]));
  if (!Array.isArray(obj)) seen.push({ where, keys: Object.keys(obj), touched });
  return new Proxy(copy, {
    get(target, key, receiver) {
      if (typeof key === "string") touched.add(key);
      return Reflect.get(target, key, receiver);
    },
  });
}

// Problems with one document, [] when valid.
function check(doc) {
  if (!doc || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") return ["no apiVersion/kind"];
  const file = schemaFile(doc.apiVersion, doc.kind);
  if (!fs.existsSync(file)) return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  const { validate } = require(file);
  const seen = [];
  if (!validate(track(doc, "", seen))) {
    return validate.errors.map((e) => `${e.instancePath || "/"}: ${e.message || e.keyword} ${JSON.stringify(e.params)}`);
  }
  const unknown = [];
  for (const { where, keys, touched } of seen) {
    for (const k of keys) if (!touched.has(k)) unknown.push(`${where}.${k}: unknown field`);
  }
  return unknown;
}

// The checker must be able to fail: a wrong type, a missing required field and an unknown field.
function selfTest() {
  const bad = {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" },
    spec: { replicas: "2", selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } },
      spec: { containers: [{ name: "c", image: "i", imagePullPolcy: "Always", ports: [{}] }] } } },
  };
  const typeErrors = check(bad);
  if (!typeErrors.some((e) => e.includes("/spec/replicas"))) throw new Error("self-test: replicas type not caught");
  if (!typeErrors.some((e) => e.includes("containerPort"))) throw new Error("self-test: missing containerPort not caught");
  bad.spec.replicas = 2;
  bad.spec.template.spec.containers[0].ports = [{ containerPort: 1 }];
  const unknown = check(bad);
  if (!unknown.some((e) => e.includes("imagePullPolcy"))) throw new Error("self-test: unknown field not caught");
}

selfTest();
let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const d of docs) {
    if (d.errors.length) {
      console.log(`FAIL ${file}: YAML: ${d.errors.map((e) => e.message).join("; ")}`);
      failures++;
      continue;
    }
    const doc = d.toJS();
    if (doc === null) continue;
    if (doc.apiVersion && doc.apiVersion.startsWith("kustomize.config.k8s.io/")) {
      console.log(`skip ${file}: ${doc.kind} is kustomize's own file, not a Kubernetes object`);
      continue;
    }
    const problems = check(doc);
    checked++;
    const name = `${file}: ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    if (problems.length) {
      failures++;
      console.log(`FAIL ${name}`);
      for (const p of problems) console.log(`  ${p}`);
    } else {
      console.log(`ok   ${name}`);
    }
  }
}
console.log(`${checked - failures} passed, ${failures} failed`);
process.exit(failures || checked === 0 ? 1 : 0);
