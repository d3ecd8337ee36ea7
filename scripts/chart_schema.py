#!/usr/bin/env python3
"""Write the Helm chart's values.schema.json: the chart's own values, and `config` from the exporter's settings
model itself, so a key the exporter does not know fails `helm install` with its name.

    .venv/bin/python scripts/chart_schema.py      # rewrites helm/kube-image-exporter/values.schema.json

`tests/chart/test_chart.py` fails when the file and this output disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.commands.config import Settings  # noqa: E402

SCHEMA = ROOT / "helm/kube-image-exporter/values.schema.json"

STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
MAP = {"type": "object"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
LIST = {"type": "array", "items": {"type": "object"}}
NAMESPACES = {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
              "uniqueItems": True}
# Prometheus' own duration syntax (1h30m, 30s, 500ms), as the prometheus-operator CRDs check it.
PROMETHEUS_DURATION = {"type": "string",
                       "pattern": "^((([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?|0)$"}


def obj(properties: dict, **extra) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


def schema() -> dict:
    settings = Settings.model_json_schema()
    config = {key: value for key, value in settings.items() if key not in ("$defs", "title", "description")}
    config["description"] = "settings of the exporter's config file (keys of `serve --config`)"
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$defs": settings["$defs"],
        **obj({
            "image": obj({
                "repository": {"type": "string", "minLength": 1},
                "tag": STRING,
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            }),
            "imagePullSecrets": {"type": "array", "items": obj({"name": STRING}, required=["name"])},
            "nameOverride": STRING,
            "fullnameOverride": STRING,
            "config": config,
            "expectedLists": {"type": "object", "additionalProperties": STRING,
                              "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}},
            "webUI": {"type": "boolean"},
            "rollbackImages": obj({"namespaces": NAMESPACES}),
            "node": obj({
                "hostPath": obj({key: {"type": "string", "pattern": "^(/.*)?$"} for key in (
                    "credentialProviderConfig", "credentialProviderBinDir", "kubeletDockerConfig",
                    "containerdHostsDir", "containersDir")}),
                "credentialProviderConfig": MAP,
                "credentialProviderBinDir": {"type": "string", "pattern": "^(/.*)?$"},
                "containerdHosts": {"type": "object", "additionalProperties": STRING,
                                    "propertyNames": {"pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*(:[0-9]+)?$"}},
                "registriesConf": STRING,
                "serviceAccountTokens": {"type": "boolean"},
            }),
            "cache": obj({
                "url": {"type": "string", "pattern": "^(rediss?://.+)?$"},
                "existingSecret": STRING,
                "existingSecretKey": {"type": "string", "minLength": 1},
            }),
            "replicaCount": {"type": "integer", "minimum": 1},
            "topologySpreadConstraints": LIST,
            "sharding": obj({"totalShards": {"type": "integer", "minimum": 1}}),
            "serviceAccount": obj({"create": {"type": "boolean"}, "name": STRING, "annotations": STRING_MAP}),
            "rbac": obj({
                "create": {"type": "boolean"},
                "readSecrets": {"type": "boolean"},
                "secretNamespaces": NAMESPACES,
                "configMapNamespaces": NAMESPACES,
                "admissionPolicies": {"type": "boolean"},
            }),
            "podAnnotations": STRING_MAP,
            "podLabels": STRING_MAP,
            "priorityClassName": STRING,
            "nodeSelector": STRING_MAP,
            "tolerations": LIST,
            "affinity": MAP,
            "resources": obj({"requests": MAP, "limits": MAP}),
            "extraEnv": {"type": "array", "items": {"type": "object", "required": ["name"]}},
            "extraVolumes": {"type": "array", "items": {"type": "object", "required": ["name"]}},
            "extraVolumeMounts": {"type": "array", "items": {"type": "object", "required": ["name", "mountPath"]}},
            "service": obj({
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "annotations": STRING_MAP,
            }),
            "serviceMonitor": obj({
                "enabled": {"type": "boolean"},
                "interval": PROMETHEUS_DURATION,
                "scrapeTimeout": PROMETHEUS_DURATION,
                "labels": STRING_MAP,
            }),
            "prometheusRule": obj({"enabled": {"type": "boolean"}, "labels": STRING_MAP}),
            "dashboards": obj({
                "enabled": {"type": "boolean"},
                "label": {"type": "string", "minLength": 1},
                "labelValue": STRING,
                "namespace": STRING,
                "annotations": STRING_MAP,
            }),
            "networkPolicy": obj({"enabled": {"type": "boolean"}, "from": LIST}),
            "podDisruptionBudget": obj({
                "enabled": {"type": "boolean"},
                "maxUnavailable": {"type": ["integer", "string"]},
            }),
        }),
        # replicas above 1 share one registry check per image through the cache, or each checks everything
        "if": {"properties": {"replicaCount": {"minimum": 2}}, "required": ["replicaCount"]},
        "then": {"properties": {"cache": {"properties": {"url": {"minLength": 1}}, "required": ["url"]}},
                 "required": ["cache"]},
    }


def text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA.write_text(text())
