"""Servers and a browser for the end-to-end tests: JupyterLab and Voila on 127.0.0.1, driven by
Python Playwright in Debian's /usr/bin/chromium (never a Playwright-downloaded browser).

One Jupyter server per test session serves every host that runs as a server extension:
JupyterLab (``lab_url``), Notebook 7 (``notebook7_url``) and Voila's ``/voila/render/``
(``voila_extension_url``); standalone Voila (``voila_url``) is its own process. tests/conftest.py
sends every ``browser`` test to one xdist worker, so each server starts once."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(proc: subprocess.Popen[bytes], url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.25)
    raise TimeoutError(url)


def _wait_port(proc: subprocess.Popen[bytes], port: int, timeout: float = 90.0) -> None:
    """Wait for a listening socket without an HTTP request (a GET on Voila's / runs the notebook)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    raise TimeoutError(port)


def _start(args: list[str], log_path: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """A server in its own process group, so teardown also ends the kernels it started."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed by _stop
    proc = subprocess.Popen(args, env=_isolated_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _stop(proc: subprocess.Popen[bytes], log: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _delete_all(server: str, kind: str) -> None:
    """DELETE every entry of ``/api/{kind}`` (sessions or kernels) of a Jupyter server."""
    with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(f"{server}/api/{kind}", timeout=10) as r:
        for entry in json.load(r):
            request = urllib.request.Request(f"{server}/api/{kind}/{entry['id']}", method="DELETE")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=30).close()


def _shut_down_kernels(server: str) -> None:
    """End every notebook session and kernel of a Jupyter server; the server stays up, and a
    notebook opened later gets a new kernel."""
    _delete_all(server, "sessions")
    _delete_all(server, "kernels")  # those without a session (Voila's)


_JUPYTER_SERVERS: list[str] = []  # base URLs of this session's Jupyter servers


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last browser test of a run of them, end the kernels their notebooks started:
    the session's servers outlive the browser tests, their kernels (~1 GB each) need not."""
    if nextitem is None or nextitem.get_closest_marker("browser") is None:
        for server in _JUPYTER_SERVERS:
            _shut_down_kernels(server)


# Each host opens its own copy of the quickstart, so each gets its own kernel.
HOST_FOLDERS = ("notebook7", "voila")


@pytest.fixture(scope="session")
def notebook_dir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="featviz-e2e-"))
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", tmp / "quickstart.ipynb")
    for folder in HOST_FOLDERS:
        (tmp / folder).mkdir()
        shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", tmp / folder / "quickstart.ipynb")
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _isolated_env() -> dict[str, str]:
    return dict(
        os.environ,
        JUPYTER_CONFIG_DIR=tempfile.mkdtemp(),
        JUPYTER_RUNTIME_DIR=tempfile.mkdtemp(),
        JUPYTER_PLATFORM_DIRS="1",
    )


@pytest.fixture(scope="session")  # its kernels end with the session's browser tests
def jupyter_server(notebook_dir: Path) -> Iterator[str]:
    """One Jupyter server (JupyterLab, Notebook 7 and Voila's extension) for the session."""
    port = _free_port()
    settings = Path(tempfile.mkdtemp())
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={notebook_dir}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.workspaces_dir={tempfile.mkdtemp()}",
        f"--LabApp.user_settings_dir={settings}",
    ]
    if os.geteuid() == 0:
        args.append("--allow-root")
    proc, log = _start(args, notebook_dir / "lab.log")
    try:
        _wait_http(proc, f"http://127.0.0.1:{port}/api/status")
        _JUPYTER_SERVERS.append(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        _JUPYTER_SERVERS.clear()
        _stop(proc, log)


@pytest.fixture(scope="session")
def lab_url(jupyter_server: str) -> str:
    """JupyterLab: ``{lab_url}/lab/tree/quickstart.ipynb``."""
    return jupyter_server


@pytest.fixture(scope="session")
def notebook7_url(jupyter_server: str) -> str:
    """Notebook 7's page for its own copy of the quickstart."""
    return f"{jupyter_server}/notebooks/notebook7/quickstart.ipynb"


@pytest.fixture(scope="session")
def voila_extension_url(jupyter_server: str) -> str:
    """Voila as a Jupyter server extension (as on Binder or JupyterHub), rendering its own copy."""
    return f"{jupyter_server}/voila/render/voila/quickstart.ipynb"


@pytest.fixture(scope="session")
def voila_url(notebook_dir: Path) -> Iterator[str]:
    port = _free_port()
    args = [
        sys.executable,
        "-m",
        "voila",
        str(notebook_dir / "quickstart.ipynb"),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
    ]
    proc, log = _start(args, notebook_dir / "voila.log")
    try:
        _wait_port(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc, log)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (scripts/test.sh does this as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    context.close()
