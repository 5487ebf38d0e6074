"""Render, lint and validate the Helm chart deploy/helm/vantage for the e2e
test tests/e2e/helm.rs, which asserts the semantics of what this prints.

Input (stdin, JSON):
  {"chart": PATH, "kube_version": "1.33.0",
   "cases": [{"name": STR, "release": STR, "namespace": STR, "values": {...}}],
   "yaml_files": [PATH, ...]}
Output (stdout, JSON):
  {"cases": [{"name", "error", "objects", "notes", "lint", "validated",
              "invalid"}],
   "crds": {"validated": [...], "invalid": [...]},
   "yaml_files": {PATH: [documents]}}

- Rendering and lint: PyPI helm-python-sdk (Helm v4 as a library: no helm
  binary). Render validates the values against values.schema.json first, as
  an install does; a refusal is the case's "error".
- Built-in kinds: PyPI kubernetes-validate's offline schemas of
  `kube_version`, strict (unknown fields are errors), as
  `kubernetes-validate -k 1.33.0 --strict` does.
- ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1), which
  kubernetes-validate does not know: the JSON schemas below, written from
  the prometheus-operator CRDs (example/prometheus-operator-crd/
  monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml at
  6adcebc5076c), only the fields this chart uses, unknown fields refused.
- Any other kind is reported invalid ("no schema").
"""

import functools
import json
import sys

MISSING = (
    "the Helm chart test needs the Python packages helm-python-sdk and "
    "kubernetes-validate: run `bash scripts/test-all.sh`, which installs them "
    "(pip install helm-python-sdk kubernetes-validate)"
)
try:
    import helm_python as helm
    import jsonschema
    import kubernetes_validate.utils as kv
    import yaml
except ImportError as e:  # the Rust test turns this into a failure
    print(f"{MISSING}: {e}", file=sys.stderr)
    sys.exit(3)

# kubernetes-validate reads and parses the schema files (the definitions are
# 1.4 MB) on every call: read each once.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)

DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}


def envelope(kind, spec):
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


SERVICE_MONITOR = envelope(
    "ServiceMonitor",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["endpoints", "selector"],
        "properties": {
            "jobLabel": {"type": "string"},
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                },
            },
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                        "honorLabels": {"type": "boolean"},
                    },
                },
            },
        },
    },
)
PROMETHEUS_RULE = envelope(
    "PrometheusRule",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": DURATION,
                        "labels": STRING_MAP,
                        "limit": {"type": "integer"},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["expr"],
                                # a rule is an alert or a recording rule
                                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                "properties": {
                                    "alert": {"type": "string"},
                                    "record": {"type": "string"},
                                    "expr": {"type": ["string", "integer"]},
                                    "for": DURATION,
                                    "keep_firing_for": DURATION,
                                    "labels": STRING_MAP,
                                    "annotations": STRING_MAP,
                                },
                            },
                        },
                    },
                },
            }
        },
    },
)
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}


def describe(obj):
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def validate(objects, kube_version):
    validated, invalid = [], []
    for obj in objects:
        key = (obj.get("apiVersion"), obj.get("kind"))
        try:
            if key in CUSTOM:
                jsonschema.Draft202012Validator(CUSTOM[key]).validate(obj)
                validated.append(f"{describe(obj)}: prometheus-operator CRD schema (tests/helm/chart.py)")
            else:
                version = kv.validate(obj, kube_version, strict=True)
                validated.append(f"{describe(obj)}: kubernetes {version} strict")
        except kv.SchemaNotFoundError:
            invalid.append(f"{describe(obj)}: no schema for {key[0]} {key[1]}")
        except (jsonschema.ValidationError, kv.ValidationError) as e:
            path = ".".join(str(p) for p in e.path)
            invalid.append(f"{describe(obj)}: {path}: {e.message}")
    return validated, invalid


def load_all(text):
    return [d for d in yaml.safe_load_all(text) if d]


def run_case(chart, chart_path, case, kube_version):
    out = {"name": case["name"], "error": None, "objects": [], "notes": "", "lint": None,
           "validated": [], "invalid": []}
    values = case.get("values") or {}
    try:
        rendered = chart.render(values, name=case["release"], namespace=case["namespace"],
                                is_install=True)
    except helm.HelmError as e:
        out["error"] = str(e)
        return out
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            out["notes"] = rendered[path]
        elif path.endswith((".yaml", ".yml")):
            for obj in load_all(rendered[path]):
                obj["__template"] = path
                out["objects"].append(obj)
    bare = [{k: v for k, v in o.items() if k != "__template"} for o in out["objects"]]
    out["validated"], out["invalid"] = validate(bare, kube_version)
    out["lint"] = helm.lint(chart_path, values, strict=True, namespace=case["namespace"],
                            kube_version="v" + kube_version)
    return out


def main():
    request = json.load(sys.stdin)
    chart_path = request["chart"]
    kube_version = request.get("kube_version", "1.33.0")
    result = {"cases": [], "crds": {"validated": [], "invalid": []}, "yaml_files": {}}
    with helm.Chart.load(chart_path) as chart:
        for case in request.get("cases", []):
            result["cases"].append(run_case(chart, chart_path, case, kube_version))
        crds = [d for c in chart.crds for d in load_all(c["data"])]
        v, i = validate(crds, kube_version)
        result["crds"] = {"validated": v, "invalid": i}
    for path in request.get("yaml_files", []):
        with open(path) as f:
            result["yaml_files"][path] = load_all(f.read())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
