"""The Ray backend: one task per work item (a chunk of a layer's units, or a layer's natural
exemplars), at most ``2 x`` the cluster's slots in flight, the model put in the object store
once and kept by each worker after its first task, ``num_gpus`` per task where the cluster has
GPUs, tasks retried when their worker dies. Tasks return pixels and scores; the driver writes
them (``store.AtlasStore``), so workers need no shared file system.

Ray is joined or started **on the calling thread** (``connect``): ``ray.init`` from another
thread loses its connection to the GCS after 60 s. An address is checked before ``ray.init``
sees it: a TCP connect (a closed port fails at once) and an HTTP/2 handshake (Ray's GCS is a
gRPC server: a port that accepts but does not answer, or answers in another protocol, is
refused after ``timeout`` seconds), so no daemon thread is needed to bound the wait.

Ray is an optional extra: ``pip install 'featviz-widgets[ray]'``. Workers must be able to
import ``featviz_widgets`` (the same version), as for any Ray task code.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..engine import FeatvizModel
from .errors import RayUnavailableError
from .plan import AtlasSettings
from .work import WorkItem, WorkResult, run_item

MAX_RETRIES = 3
STARTS = 3  # a local start that times out (Ray's fixed 30 s node wait, a loaded machine) is retried
_WORKER_MODELS: dict[str, Any] = {}  # on a worker: the shipped objects of the current atlas, by object id
# HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers with its SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "--ray needs Ray: pip install 'featviz-widgets[ray]' (or pip install 'ray>=2.9')."
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _speaks_grpc(target: tuple[str, int], timeout: float) -> str | None:
    """None when ``target`` answers the HTTP/2 preface with a SETTINGS frame (a gRPC server:
    Ray's GCS or Ray Client), else why not. Bounded by ``timeout`` without threads."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(target, timeout=timeout) as s:
            s.sendall(_H2_PREFACE)
            got = b""
            while len(got) < 9:
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"no answer within {timeout:g} s"
                s.settimeout(left)
                part = s.recv(9 - len(got))
                if not part:
                    return "it closed the connection"
                got += part
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return str(exc)
    if got[3] != 0x04:  # frame type SETTINGS
        return "it does not speak gRPC (not a Ray head node)"
    return None


def connect(address: str, timeout: float = 10.0, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` on the calling thread ("local": start one on this
    machine; "auto": the one ``ray start`` began here; ``HOST:PORT``, ``ray://HOST:PORT``).
    An address that does not answer within ``timeout`` seconds raises RayUnavailableError.
    Returns False (and does nothing) when Ray is already initialised, True when this call
    started or joined it (the caller then ``disconnect()``s when done)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    if threading.current_thread() is not threading.main_thread():
        raise RayUnavailableError(
            f"Ray must be started on the main thread (from another thread its driver loses the GCS after 60 s): "
            f"call ray.init(address={address!r}) on the main thread first; render_atlas then uses it from any thread."
        )
    if address == "local":
        kwargs: dict[str, Any] = {
            "address": "local",  # a new instance even when `ray start` runs here
            "num_cpus": num_cpus,
            "include_dashboard": False,
            "log_to_driver": False,
        }
    else:
        target = _host_port(address)
        if target is None and address != "auto":
            raise RayUnavailableError(
                f"--ray {address!r} is not an address: give HOST:PORT, ray://HOST:PORT, 'auto' or 'local'."
            )
        if target is not None:
            try:
                socket.create_connection(target, timeout=timeout).close()
            except OSError as exc:
                raise RayUnavailableError(
                    f"The Ray cluster at {address!r} does not answer ({exc}); start it with `ray start --head` "
                    "there, check the address and port, or use --ray local."
                ) from None
            why = _speaks_grpc(target, timeout)
            if why is not None:
                raise RayUnavailableError(
                    f"Ray did not connect to {address!r}: {why}; is it a Ray head node (the GCS port "
                    "`ray start --head --port P` printed)?"
                )
        kwargs = {"address": address, "log_to_driver": False}
        _token_auth_if_available()
    for attempt in range(1, STARTS + 1):
        try:
            ray.init(**kwargs)
            return True
        except ConnectionError as exc:  # "auto" with no cluster, a refused join
            raise RayUnavailableError(f"Ray could not connect to {address!r}: {exc}") from exc
        except Exception as exc:
            ray.shutdown()
            timed_out = "timed out during startup" in str(exc) or isinstance(exc, TimeoutError)
            if address != "local" or not timed_out or attempt == STARTS:
                raise RayUnavailableError(f"Ray could not start or connect ({address!r}): {exc}") from exc
    raise AssertionError("unreachable")


def _token_auth_if_available() -> None:
    """Send this machine's Ray token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN[_PATH]``) to an
    explicit address as ``ray.init`` does for "auto": a `ray start` made where a token exists
    requires it, and Ray (2.5x) sends it to an explicit address only with RAY_AUTH_MODE=token."""
    if "RAY_AUTH_MODE" in os.environ:
        return  # the user's choice
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def disconnect() -> None:
    _ray().shutdown()


def cluster_gpus() -> float:
    return float(_ray().cluster_resources().get("GPU", 0.0))


def _slots(ray: Any, cpus_per_task: float, gpus_per_task: float) -> int:
    """How many tasks the cluster runs at once."""
    res = ray.cluster_resources()
    if gpus_per_task > 0:
        return max(1, int(res.get("GPU", 0.0) / gpus_per_task))
    return max(1, int(res.get("CPU", 1.0) / max(cpus_per_task, 1e-9)))


def _shipped(ref_box: list[Any], device: str) -> Any:
    ray = _ray()
    key = ref_box[0].hex()
    value = _WORKER_MODELS.get(key)
    if value is None:
        value = ray.get(ref_box[0])
        if isinstance(value, FeatvizModel):
            value = value.to(device)
        if len(_WORKER_MODELS) > 4:  # the objects of one or two atlases at a time
            _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = value
    return value


def _run_remote(model_box: list[Any], photos_box: list[Any], item: WorkItem, settings: AtlasSettings) -> WorkResult:
    """On a worker: the model (and photos) from the object store on the first task, kept."""
    model = _shipped(model_box, settings.device)
    photos = _shipped(photos_box, settings.device) if photos_box else None
    return run_item(model, item, settings, photos)


@functools.lru_cache(maxsize=1)  # one ray module a process; a stand-in replaces it
def _task(ray: Any) -> Any:
    return ray.remote(max_retries=MAX_RETRIES, retry_exceptions=True)(_run_remote)


def run_ray(
    model: FeatvizModel,
    items: Iterable[WorkItem],
    settings: AtlasSettings,
    *,
    num_gpus: float = 0.0,
    photos: Any = None,
    in_flight: int | None = None,
    ray: Any = None,
) -> Iterator[WorkResult]:
    """Submit the items as tasks, at most ``in_flight`` (default twice the cluster's slots) at
    once in the given order, and yield results as they complete. Leaving the iterator early
    (an error while writing, Ctrl-C) cancels the tasks not finished; the caller has written
    every result yielded before. ``ray`` is the ray module (imported when None) or a stand-in
    with its API (put, nodes, cluster_resources, remote, wait, get, cancel)."""
    ray = _ray() if ray is None else ray
    shipped = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
    model_box = [ray.put(shipped)]
    photos_box = [ray.put(photos)] if photos is not None else []
    # A task asks for its threads as CPUs, at most what the largest node has (else it would never run).
    largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
    cpus = min(float(settings.threads), max(largest, 1.0))
    task = _task(ray).options(num_cpus=cpus, num_gpus=num_gpus)
    limit = in_flight if in_flight is not None else 2 * _slots(ray, cpus, num_gpus)
    todo = iter(items)
    pending: list[Any] = []
    try:
        while True:
            while len(pending) < limit:
                item = next(todo, None)
                if item is None:
                    break
                pending.append(task.remote(model_box, photos_box, item, settings))
            if not pending:
                return
            done: list[Any] = []
            while not done:  # short waits: Ctrl-C is seen within a second
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            yield ray.get(done[0])
    finally:
        # Not force=True: a forced cancel racing a task's own completion trips a check in Ray's
        # core ("Tried to complete task that was not pending", Ray 2.60) and aborts the process,
        # seen 1 Ctrl-C in 6 on a quiet machine. A plain cancel drops queued tasks and interrupts
        # running ones; a driver that disconnects next takes its tasks with it anyway.
        for p in pending:
            with contextlib.suppress(Exception):  # already finished, or its worker gone
                ray.cancel(p)
