"""The alert rules: valid, unit-tested to fire and not to fire, on the families the exporter emits, each with
its runbook section."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.views.families import BY_NAME

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = ROOT / "rules/kube-image-exporter.rules.yaml"
TESTS = ROOT / "rules/tests/alerts.test.yaml"
RUNBOOK = ROOT / "docs/runbook.md"

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (scripts/setup)")


def alerts():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_promtool_checks_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    result = subprocess.run(["promtool", "test", "rules", str(TESTS)], capture_output=True, text=True, timeout=120,
                            cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    fired, quiet = set(), set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_rules_use_only_families_the_exporter_emits():
    for rule in alerts():
        for name in re.findall(r"\b(kube_image_[a-z_]+)", rule["expr"]):
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert family in BY_NAME, f"{rule['alert']}: {name} is no family of exporter/views/families.py"


def test_every_alert_has_severity_summary_description_and_a_runbook_section():
    anchors = {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
               for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}
    for rule in alerts():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        anchor = annotations["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: docs/runbook.md has no section #{anchor}"
