"""The release workflow publishes what the chart runs by default: the image the chart names, for both
architectures, tagged with the version the chart's appVersion, its version and the package agree on."""

import os
import pathlib
import subprocess

import yaml

from exporter import __version__

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yaml").read_text())
CHART = yaml.safe_load((ROOT / "helm" / "kube-image-exporter" / "Chart.yaml").read_text())
VALUES = yaml.safe_load((ROOT / "helm" / "kube-image-exporter" / "values.yaml").read_text())


def test_the_published_image_is_the_one_the_chart_runs_for_amd64_and_arm64():
    assert WORKFLOW["env"]["IMAGE"] == VALUES["image"]["repository"]
    assert set(WORKFLOW["env"]["PLATFORMS"].split(",")) >= {"linux/amd64", "linux/arm64"}
    assert VALUES["image"]["tag"] == ""  # the chart's appVersion, the tag the workflow pushes
    template = (ROOT / "helm" / "kube-image-exporter" / "templates" / "deployment.yaml").read_text()
    assert '{{ .Values.image.tag | default .Chart.AppVersion }}' in template
    [push] = [s for s in WORKFLOW["jobs"]["image"]["steps"] if s.get("uses", "").startswith("docker/build-push")]
    assert push["with"]["tags"] == "${{ env.IMAGE }}:${{ needs.versions.outputs.version }}"


def test_the_package_the_chart_and_its_app_version_are_one_version():
    assert CHART["version"] == CHART["appVersion"] == __version__


def run_version_check(tag: str, output: pathlib.Path) -> int:
    """The workflow's own version step, run as GitHub runs it (bash -e), with this tag."""
    [step] = [s for s in WORKFLOW["jobs"]["versions"]["steps"] if s.get("id") == "versions"]
    env = {**os.environ, "GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, capture_output=True).returncode


def test_a_tag_that_is_not_the_version_stops_the_release(tmp_path):
    output = tmp_path / "output"
    assert run_version_check(f"v{__version__}", output) == 0
    assert output.read_text() == f"version={__version__}\n"
    assert run_version_check("v9.9.9", tmp_path / "other") != 0
