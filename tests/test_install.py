"""The container image's install steps, run without a container engine: the Dockerfile's wheel build and its
wheel-only install into a clean virtual environment give a working `kube-image-exporter`."""

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from exporter import __version__

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]


def test_dockerfile_final_stage_is_slim_non_root_and_runs_the_exporter():
    build, final = stages()
    assert "python:3.11-slim" in build and final.startswith("python:3.11-slim")
    assert re.search(r"^USER 65532", final, flags=re.M)
    assert 'ENTRYPOINT ["kube-image-exporter"]' in final and 'CMD ["serve"]' in final
    assert "--no-index --find-links /wheels" in final  # only the wheels built in the first stage
    assert not re.search(r"apt-get|gcc|build-essential|pip wheel", final)
    assert "EXPOSE 9706" in final
    assert '".[aws]"' in build and '"kube-image-exporter[aws]"' in final  # the ECR retention source's SDK


@pytest.mark.slow
@pytest.mark.long
def test_the_same_install_steps_give_a_working_command(tmp_path):
    src = tmp_path / "src"  # COPY pyproject.toml README.md ./ and COPY exporter ./exporter
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "exporter", src / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), f"{src}[aws]"],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    env_dir = tmp_path / "venv"
    # A clean environment without pip of its own, installed into by this pip (`--python`), uncompiled: the same
    # wheels and resolution as the image's `pip install`, without bootstrapping pip and byte-compiling the AWS SDK
    # (15 s of the 30 this test took)
    venv.create(env_dir, with_pip=False)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin/python"), "install",
                              "--quiet", "--no-compile", "--no-index", "--find-links", str(wheels),
                              "kube-image-exporter[aws]"], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    command = env_dir / "bin/kube-image-exporter"
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"kube-image-exporter {__version__}"
    usage = subprocess.run([str(command), "check", "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--docker-config" in usage.stdout
    bad = subprocess.run([str(command), "serve", "--interval", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "interval" in bad.stderr and "Traceback" not in bad.stderr
    sdk = subprocess.run([str(env_dir / "bin/python"), "-c", "import boto3"], capture_output=True)
    assert sdk.returncode == 0  # the aws extra is in the image: `--retention-source ecr=…` works there
    tests_only = subprocess.run([str(env_dir / "bin/python"), "-c", "import pytest"], capture_output=True)
    assert tests_only.returncode != 0  # test tools stay out of the image


def test_kind_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(ROOT / "scripts/kind-e2e")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
