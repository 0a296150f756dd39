"""The Ray backend: one task per chunk (a layer's fixed range of units), the model put in the
object store once and kept by each worker after its first task, ``num_gpus`` per task where
the cluster has GPUs, tasks retried when their worker dies. Tasks return pixels; the driver
writes them (``store.AtlasStore``), so workers need no shared file system.

Ray is an optional extra: ``pip install 'featviz-widgets[ray]'``. Workers must be able to
import ``featviz_widgets`` (the same version), as for any Ray task code.
"""

from __future__ import annotations

import copy
import functools
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..engine import FeatvizModel
from .errors import RayUnavailableError
from .plan import AtlasSettings, Chunk
from .work import ChunkResult, render_chunk

MAX_RETRIES = 3
_WORKER_MODELS: dict[str, FeatvizModel] = {}  # on a worker: the model of the current atlas, by object id


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


def connect(address: str, timeout: float = 10.0, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("local": start one on this machine; "auto": the one
    ``ray start`` began here). An address that does not answer within ``timeout`` seconds
    raises RayUnavailableError instead of hanging. Does nothing when Ray is already initialised."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address == "local":
        kwargs: dict[str, Any] = {"num_cpus": num_cpus, "include_dashboard": False, "log_to_driver": False}
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
        kwargs = {"address": address, "log_to_driver": False}
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    t = threading.Thread(target=init, daemon=True, name="featviz-ray-init")
    t.start()
    t.join(timeout if address != "local" else max(timeout, 120.0))
    if t.is_alive():
        raise RayUnavailableError(f"Ray did not connect to {address!r} within {timeout:g} s; is it a Ray head node?")
    if failure:
        raise RayUnavailableError(f"Ray could not connect to {address!r}: {failure[0]}") from failure[0]


def cluster_gpus() -> float:
    return float(_ray().cluster_resources().get("GPU", 0.0))


def _render_remote(box: list[Any], chunk: Chunk, settings: AtlasSettings) -> ChunkResult:
    """On a worker: the model from the object store on the first task, kept for the next."""
    ray = _ray()
    ref = box[0]
    key = ref.hex()
    model = _WORKER_MODELS.get(key)
    if model is None:
        model = ray.get(ref).to(settings.device)
        _WORKER_MODELS.clear()  # one atlas's model at a time
        _WORKER_MODELS[key] = model
    return render_chunk(model, chunk, settings)


@functools.cache
def _task() -> Any:
    return _ray().remote(max_retries=MAX_RETRIES, retry_exceptions=True)(_render_remote)


def run_ray(
    model: FeatvizModel, chunks: Iterable[Chunk], settings: AtlasSettings, *, num_gpus: float = 0.0
) -> Iterator[ChunkResult]:
    """Submit one task per chunk and yield results as they complete (any order). Leaving the
    iterator early (an error while writing, Ctrl-C) cancels the tasks not yet finished."""
    ray = _ray()
    shipped = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
    ref = ray.put(shipped)
    # A task asks for its threads as CPUs, at most what the largest node has (else it would never run).
    largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
    task = _task().options(num_cpus=min(float(settings.threads), max(largest, 1.0)), num_gpus=num_gpus)
    pending = [task.remote([ref], chunk, settings) for chunk in chunks]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for p in pending:
            ray.cancel(p, force=False)
