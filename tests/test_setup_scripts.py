"""scripts/setup.sh and scripts/lab.sh, run for real in a copy of the repository with a fake
interpreter: it records the venv and pip commands instead of installing anything, and answers
the torch check with the real Python over a stand-in torch package of a chosen version. No
download, no virtual environment is made."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
# -m venv DIR / -m pip ...: recorded in $FAKE_LOG; -c CODE: the real Python (over $PYTHONPATH).
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  echo "venv ${*:3}" >>"$FAKE_LOG"
  dir="${@: -1}"
  mkdir -p "$dir/bin"
  cp "$0" "$dir/bin/python"
  case " $* " in
    *" --system-site-packages "*) echo "include-system-site-packages = true" >"$dir/pyvenv.cfg" ;;
    *) echo "include-system-site-packages = false" >"$dir/pyvenv.cfg" ;;
  esac
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "pip ${*:3}" >>"$FAKE_LOG"
  exit 0
fi
exec "$REAL_PYTHON" "$@"
"""

FAKE_JUPYTER = """#!/usr/bin/env bash
echo "jupyter $*" >>"$FAKE_LOG"
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _torch_package(folder: Path, version: str | None) -> Path:
    """A stand-in torch (and torchvision) of ``version``; None: importing torch fails."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("torch", "torchvision"):
        (folder / name).mkdir(exist_ok=True)
        body = 'raise ImportError("no torch here")' if version is None else f'__version__ = "{version}"'
        (folder / name / "__init__.py").write_text(body + "\n")
    return folder


class Repo:
    """A copy of the scripts and pyproject.toml, with the fake interpreter on hand."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "repo"
        (self.root / "scripts").mkdir(parents=True)
        for name in ("setup.sh", "lab.sh"):
            shutil.copy(ROOT / "scripts" / name, self.root / "scripts" / name)
        shutil.copy(ROOT / "pyproject.toml", self.root / "pyproject.toml")
        self.python = _executable(tmp / "fakepython", FAKE_PYTHON)
        self.log = tmp / "commands.log"
        self.torch = tmp / "torch"

    def run(
        self, script: str, *args: str, torch: str | None = "2.14.1", **env: str
    ) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        shutil.rmtree(self.torch, ignore_errors=True)
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FEATVIZ_")},
            "PYTHON": str(self.python),
            "REAL_PYTHON": sys.executable,
            "PYTHONPATH": str(_torch_package(self.torch, torch)),
            "FAKE_LOG": str(self.log),
            **env,
        }
        return subprocess.run(
            ["bash", str(self.root / "scripts" / script), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def commands(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


PINS = "torch==2.14.1 torchvision==0.29.1"
EXTRAS = ".[test,notebook,lite,ray,timm,directions]"
EDITABLE = f"-e {EXTRAS}"


def test_fresh_setup_makes_a_venv_installs_pinned_torch_and_stamps_it(repo: Repo) -> None:
    out = repo.run("setup.sh", torch=None)
    assert out.returncode == 0, out.stderr
    venv, torch, package = repo.commands()
    assert venv == "venv .venv"  # no --system-site-packages by default
    assert torch.startswith("pip install") and torch.endswith(PINS) and "--index-url" not in torch
    assert package.endswith(EDITABLE)
    assert (repo.root / ".venv" / ".featviz-setup").read_text().strip()


def test_second_run_installs_nothing_until_pyproject_or_setup_changes(repo: Repo) -> None:
    assert repo.run("setup.sh", torch=None).returncode == 0
    again = repo.run("setup.sh", torch=None)
    assert again.returncode == 0 and repo.commands() == [] and "up to date" in again.stdout
    with open(repo.root / "pyproject.toml", "a") as f:
        f.write("\n# a new dependency\n")
    assert repo.run("setup.sh", torch=None).returncode == 0
    # The venv exists (and its python, the fake, finds no torch): torch and the package again.
    assert [c.split()[-1] for c in repo.commands()] == ["torchvision==0.29.1", EXTRAS]
    again = repo.run("setup.sh", torch=None)
    assert repo.commands() == [] and "up to date" in again.stdout


def test_an_installed_torch_in_the_venv_is_kept(repo: Repo) -> None:
    assert repo.run("setup.sh", torch=None).returncode == 0
    (repo.root / ".venv" / ".featviz-setup").unlink()
    out = repo.run("setup.sh", torch="2.14.1")
    assert out.returncode == 0 and "torch already importable in .venv" in out.stdout
    assert [c.split()[-1] for c in repo.commands()] == [EXTRAS]


def test_system_torch_is_reused_when_new_enough(repo: Repo) -> None:
    out = repo.run("setup.sh", torch="2.3.1", FEATVIZ_SYSTEM_TORCH="1")
    assert out.returncode == 0, out.stderr
    assert repo.commands()[0] == "venv --system-site-packages .venv"
    assert not [c for c in repo.commands() if "torch==" in c]  # no torch download
    assert repo.commands()[-1].endswith(EDITABLE)


@pytest.mark.parametrize("torch", ["2.0.1", None])
def test_system_torch_too_old_or_missing_falls_back_to_the_pinned_one(repo: Repo, torch: str | None) -> None:
    out = repo.run("setup.sh", torch=torch, FEATVIZ_SYSTEM_TORCH="1")
    assert out.returncode == 0, out.stderr
    venv, install, package = repo.commands()
    assert venv == "venv --system-site-packages .venv"
    assert install.endswith(PINS) and package.endswith(EDITABLE)
    assert "has no torch>=2.1" in out.stdout


def test_system_torch_refuses_a_venv_made_without_system_packages(repo: Repo) -> None:
    assert repo.run("setup.sh", torch=None).returncode == 0
    (repo.root / ".venv" / ".featviz-setup").unlink()
    out = repo.run("setup.sh", torch="2.3.1", FEATVIZ_SYSTEM_TORCH="1")
    assert out.returncode == 1 and "rm -rf .venv" in out.stderr
    assert repo.commands() == []


def test_torch_index_is_used_for_torch_only(repo: Repo) -> None:
    out = repo.run("setup.sh", torch=None, FEATVIZ_TORCH_INDEX="https://download.pytorch.org/whl/cpu")
    assert out.returncode == 0, out.stderr
    _, torch, package = repo.commands()
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch and torch.endswith(PINS)
    assert "--index-url" not in package


def test_dry_run_changes_nothing(repo: Repo) -> None:
    out = repo.run("setup.sh", "--dry-run", torch="2.3.1", FEATVIZ_SYSTEM_TORCH="1")
    assert out.returncode == 0, out.stderr
    assert repo.commands() == [] and not (repo.root / ".venv").exists()
    lines = [line for line in out.stdout.splitlines() if line.startswith("would")]
    assert lines[0].endswith("-m venv --system-site-packages .venv")
    assert lines[1].endswith(EDITABLE) and lines[2].startswith("would write")
    assert repo.run("setup.sh", "--bogus").returncode == 2


def test_lab_opens_the_quickstart_and_sets_up_only_once(repo: Repo) -> None:
    assert repo.run("setup.sh", torch=None).returncode == 0
    _executable(repo.root / ".venv" / "bin" / "jupyter", FAKE_JUPYTER)
    out = repo.run("lab.sh", "--port=8899", torch=None)
    assert out.returncode == 0, out.stderr
    (line,) = repo.commands()  # no pip: the stamp is current
    args = line.split()
    assert args[:2] == ["jupyter", "lab"] and args[-1] == "--port=8899"
    assert "--LabApp.default_url=/lab/tree/notebooks/quickstart.ipynb" in args
    assert "--ServerApp.root_dir=." in args
    assert ("--allow-root" in args) == (os.geteuid() == 0)


@pytest.mark.slow
def test_the_url_lab_prints_lands_on_the_quickstart(repo: Repo, tmp_path: Path) -> None:
    """JupyterLab itself, with the arguments lab.sh gives it: the URL it prints is the notebook's."""
    assert repo.run("setup.sh", torch=None).returncode == 0
    _executable(repo.root / ".venv" / "bin" / "jupyter", FAKE_JUPYTER)
    assert repo.run("lab.sh", torch=None).returncode == 0
    args = repo.commands()[0].split()[2:]
    (repo.root / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", repo.root / "notebooks" / "quickstart.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", *args, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}"],
            cwd=repo.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        pattern = re.compile(rf"http://127\.0\.0\.1:{port}(/\S*)\?token=(\w+)")
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            found = pattern.search(log_path.read_text(errors="replace"))
            time.sleep(0.25)
        assert found is not None, log_path.read_text(errors="replace")
        assert found.group(1) == "/lab/tree/notebooks/quickstart.ipynb"
        url = f"http://127.0.0.1:{port}/api/contents/notebooks/quickstart.ipynb?content=0&token={found.group(2)}"
        with urllib.request.urlopen(url, timeout=30) as r:  # the server's root is the repository
            assert json.load(r)["type"] == "notebook"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
