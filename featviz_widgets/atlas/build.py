"""``render_atlas``: plan, skip what is done (verified), render the rest (in-process or on Ray,
a layer's exemplars beside its chunks), write each result as it arrives and each layer's pages
as soon as the layer is finished."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engine import FeatvizModel
from ..engine.core import check_int
from ..engine.models import ensure_model
from .exemplars import ExemplarJob, Photos, load_photos, photos_key
from .local import run_local
from .plan import FORMAT, AtlasSettings, Chunk, LayerPlan, default_layers, model_fingerprint, plan_layers, settings_key
from .store import AtlasStore
from .work import ChunkResult, WorkItem, WorkResult


@dataclass
class AtlasReport:
    """What one ``render_atlas`` call did. ``rendered`` lists the chunks it rendered (layer,
    start) in the order they were written; ``skipped`` counts tiles an earlier run had finished;
    ``exemplar_layers`` the layers whose exemplars it computed; ``swept`` the temp files a killed
    run had left."""

    out: Path
    key: str
    total: int
    skipped: int
    rendered: list[tuple[str, int]] = field(default_factory=list)
    tiles_rendered: int = 0
    exemplar_layers: list[str] = field(default_factory=list)
    swept: int = 0
    seconds: float = 0.0
    render_seconds: float = 0.0  # from the first submission to the last result written
    index: Path | None = None


def _tile_settings(manifest: dict[str, Any], settings: AtlasSettings, chunk: Chunk, unit: int) -> dict[str, Any]:
    """A tile's PNG metadata: what ``Dreamer.load`` reads (target, lr, size, seed...) and the
    atlas's own record (the chunk it rendered in, the threads)."""
    mode = "class" if chunk.kind == "class" else "channel"
    objective = f"ClassLogit({unit})" if mode == "class" else f"Channel({chunk.layer!r}, {unit})"
    rs = settings.render_settings(1).as_dict()
    rs.pop("batch")
    return {
        "model": manifest["model"],
        "objective": objective,
        "steps": settings.steps,
        **rs,
        "target": {"mode": mode, "layer": chunk.layer, "unit": unit},
        "atlas": {"key": manifest["key"], "chunk": [chunk.start, chunk.stop], "threads": settings.threads},
    }


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="tile", desc="atlas", smoothing=0.05)


def render_atlas(
    model: FeatvizModel | str | None = None,
    *,
    out: str | Path,
    layers: Sequence[str] | None = None,
    logits: bool = False,
    steps: int = 128,
    size: int = 128,
    seed: int = 0,
    chunk: int = 16,
    threads: int | None = None,
    max_units: int | None = None,
    photos: str | Path | None = None,
    exemplars: int = 4,
    ray: str | None = None,
    num_gpus: float | None = None,
    ray_timeout: float = 10.0,
    in_flight: int | None = None,
    progress: bool = True,
    site: bool = True,
    **render: Any,
) -> AtlasReport:
    """Render every unit of ``layers`` (default: the model's main layers; the class logits too
    with ``logits=True``) into ``out``, ``chunk`` units per batch, and write a static site
    (``out/index.html``; each layer's pages as soon as the layer is finished).

    Resumable: a tile is stored under (model, layer, unit, settings) and a chunk is recorded
    (with its tiles' hashes) once all its tiles are on disk, so the same call after an
    interruption renders only the chunks not recorded or whose files were damaged; a changed
    setting renders anew beside the old tiles. One run at a time per folder (a lock).
    ``threads`` CPU threads per chunk (default: torch's thread count here, all cores, in both
    modes; a Ray task asks for as many CPUs) are part of the settings: the same seed and threads
    give the same pixels in-process and on Ray. ``threads=1`` runs one chunk per core on Ray.
    ``max_units``: only the first units of each layer (whole chunks; a preview that the full
    atlas completes under the same key).

    ``ray``: None (in-process), ``"local"`` (a Ray instance on this machine) or a cluster address
    (``HOST:PORT``, ``ray://HOST:PORT``, ``"auto"``), joined on the calling thread and left at
    the end (unless Ray was initialised before the call); ``num_gpus`` per task (default 1 when
    the cluster has GPUs); ``in_flight`` tasks at most at once (default twice the cluster's
    slots). ``photos``: a folder of natural images whose top ``exemplars`` crops each unit's
    page shows (one pass over the photos per layer, a Ray task with ``ray``). Other keywords
    are render settings (``lr``, ``tv``, ``transform_strength``...).
    """
    t0 = time.perf_counter()
    chunk = check_int("chunk", chunk, 1, 1024)
    exemplars = check_int("exemplars", exemplars, 1, 64)
    if in_flight is not None:
        in_flight = check_int("in_flight", in_flight, 1, 1_000_000)
    fm = ensure_model(model)
    source = model if isinstance(model, str) else (fm.name if model is None else None)  # loadable by name
    names = list(layers) if layers is not None else default_layers(fm, logits)
    if layers is not None and logits and "logits" not in names:
        names.append("logits")
    plans = plan_layers(fm, names, chunk, max_units)  # unknown layers fail here, before Ray or rendering
    settings = AtlasSettings(  # validated here, before Ray or the lock; the device once Ray is joined
        steps=steps,
        size=size,
        seed=seed,
        chunk=chunk,
        threads=torch.get_num_threads() if threads is None else threads,  # the same default in both modes
        device=fm.device.type,
        render=tuple(sorted(render.items())),
    )
    photo_list = load_photos(photos) if photos is not None and site else None
    store = AtlasStore(out)  # a refused run leaves no folder behind: everything above is checked first
    store.check()
    with store.lock():
        swept = store.sweep()
        connected = False
        try:
            if ray is not None:
                from . import ray_backend

                connected = ray_backend.connect(ray, timeout=ray_timeout)
                gpus = float(num_gpus) if num_gpus is not None else (1.0 if ray_backend.cluster_gpus() > 0 else 0.0)
                device = "cuda" if gpus > 0 else "cpu"
            else:
                gpus = 0.0
                device = fm.device.type
            settings = dataclasses.replace(settings, device=device)
            report = _run(
                fm,
                store,
                plans,
                settings,
                source=source,
                photos=photo_list,
                k=exemplars,
                ray=ray,
                gpus=gpus,
                in_flight=in_flight,
                progress=progress,
                site=site,
            )
        finally:
            if connected:
                from . import ray_backend

                ray_backend.disconnect()
    report.swept = swept
    report.seconds = time.perf_counter() - t0
    return report


def _run(
    fm: FeatvizModel,
    store: AtlasStore,
    plans: list[LayerPlan],
    settings: AtlasSettings,
    *,
    source: str | None,
    photos: Photos | None,
    k: int,
    ray: str | None,
    gpus: float,
    in_flight: int | None,
    progress: bool,
    site: bool,
) -> AtlasReport:
    fingerprint = model_fingerprint(fm)
    key = settings_key(fingerprint, settings)
    manifest = _manifest(fm, source, fingerprint, key, settings, plans)
    store.write_manifest(manifest)
    ex_key = f"{key}-{photos_key(photos, k)}" if photos else None

    from .site import SiteWriter

    writer = SiteWriter(store, manifest, ex_key) if site else None
    items: list[WorkItem] = []
    left: dict[str, int] = {}  # work items still to do, per layer
    jobs: dict[str, ExemplarJob] = {}
    for p in plans:
        todo: list[WorkItem] = []
        if ex_key is not None:
            jobs[p.name] = ExemplarJob(p.name, p.kind, p.units, k)
            if store.exemplars(ex_key, jobs[p.name]) is None:
                todo.append(jobs[p.name])
        todo += [c for c in p.chunks if not store.is_done(key, c)]
        left[p.name] = len(todo)
        items += todo
    total = sum(p.units for p in plans)
    skipped = total - sum(len(c.units) for c in items if isinstance(c, Chunk))
    report = AtlasReport(store.root, key, total, skipped)

    def finish_layer(name: str) -> None:
        if writer is not None:
            job = jobs.get(name)
            writer.write_layer(name, store.exemplars(ex_key, job) if ex_key and job else None)
            writer.write_index()

    if writer is not None:  # the site from the start: finished layers whole, the others' grids so far
        for p in plans:
            if left[p.name] == 0:
                finish_layer(p.name)
        for p in plans:
            if left[p.name]:
                writer.write_layer(p.name, finished=False)
        writer.write_index()
    results: Iterator[WorkResult]
    if ray is not None:
        from .ray_backend import run_ray

        results = run_ray(fm, items, settings, num_gpus=gpus, photos=photos, in_flight=in_flight)
    else:
        results = run_local(fm, items, settings, photos)
    bar = _progress(total, skipped, progress)
    t_render = time.perf_counter()
    n_jobs = sum(1 for i in items if isinstance(i, ExemplarJob))
    try:
        for result in results:
            if isinstance(result, ChunkResult):
                c = result.chunk
                store.write_chunk(key, result, functools.partial(_tile_settings, manifest, settings, c))
                report.rendered.append((c.layer, c.start))
                report.tiles_rendered += len(c.units)
                layer = c.layer
                if bar is not None:
                    bar.update(len(c.units))
            else:
                assert ex_key is not None and photos is not None
                store.write_exemplars(ex_key, result, photos)
                layer = result.job.layer
                report.exemplar_layers.append(layer)
                if bar is not None:
                    bar.set_postfix_str(f"exemplars {len(report.exemplar_layers)}/{n_jobs} layers")
            left[layer] -= 1
            if left[layer] == 0:
                finish_layer(layer)
            report.render_seconds = time.perf_counter() - t_render
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # Ray: cancel what has not finished
        if bar is not None:
            bar.close()
    if writer is not None:
        writer.write_index()
        report.index = store.root / "index.html"
    return report


def _manifest(
    model: FeatvizModel,
    source: str | None,
    fingerprint: str,
    key: str,
    settings: AtlasSettings,
    plans: list[LayerPlan],
) -> dict[str, Any]:
    net = getattr(model, "net", model)
    return {
        "format": FORMAT,  # the format its tiles are keyed with (plan.py)
        "model": model.name,
        "model_source": source,
        "model_class": f"{type(net).__module__}.{type(net).__qualname__}",
        # what load_model needs besides the model to load it the same way (weights, input_size, mean...)
        "model_load_options": {k: v for k, v in getattr(model, "load_options", {}).items() if k != "device"},
        "fingerprint": fingerprint,
        "key": key,
        "settings": settings.as_dict(),
        "layers": [{"name": p.name, "kind": p.kind, "units": p.units, "of": p.total} for p in plans],
    }
