"""``render_atlas``: plan, skip what is done, render the rest (in-process or on Ray), write
each chunk as it arrives, then the site."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engine import FeatvizModel
from ..engine.core.settings import check_int
from ..engine.models import ensure_model
from .local import run_local
from .plan import AtlasSettings, Chunk, LayerPlan, default_layers, model_fingerprint, plan_layers, settings_key
from .store import AtlasStore
from .work import ChunkResult


@dataclass
class AtlasReport:
    """What one ``render_atlas`` call did. ``rendered`` lists the chunks it rendered (layer,
    start) in the order they were written; ``skipped`` counts tiles an earlier run had finished."""

    out: Path
    key: str
    total: int
    skipped: int
    rendered: list[tuple[str, int]] = field(default_factory=list)
    tiles_rendered: int = 0
    seconds: float = 0.0
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

    return tqdm(total=total, initial=initial, unit="tile", desc="atlas", smoothing=0.1)


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
    photos: str | Path | None = None,
    exemplars: int = 4,
    ray: str | None = None,
    num_gpus: float | None = None,
    ray_timeout: float = 10.0,
    progress: bool = True,
    site: bool = True,
    **render: Any,
) -> AtlasReport:
    """Render every unit of ``layers`` (default: the model's main layers; the class logits too
    with ``logits=True``) into ``out``, ``chunk`` units per batch, and write a static site
    (``out/index.html``).

    Resumable: a tile is stored under (model, layer, unit, settings) and a chunk is recorded
    once all its tiles are on disk, so the same call after an interruption renders only the
    chunks not recorded; a changed setting renders anew beside the old tiles. ``threads`` CPU
    threads per chunk (default: torch's thread count here, all cores, in both modes; a Ray task
    asks for as many CPUs) are part of the settings: the same seed and threads give the same
    pixels in-process and on Ray. ``threads=1`` runs one chunk per core on Ray.

    ``ray``: None (in-process), ``"local"`` (a Ray instance on this machine) or a cluster address
    (``HOST:PORT``, ``ray://HOST:PORT``, ``"auto"``); ``num_gpus`` per task (default 1 when the
    cluster has GPUs). ``photos``: a folder of natural images whose top ``exemplars`` crops
    each unit's page shows. Other keywords are render settings (``lr``, ``tv``,
    ``transform_strength``...).
    """
    t0 = time.perf_counter()
    store = AtlasStore(out)
    store.check()
    chunk = check_int("chunk", chunk, 1, 1024)
    fm = ensure_model(model)
    source = model if isinstance(model, str) else (fm.name if model is None else None)  # loadable by name
    names = list(layers) if layers is not None else default_layers(fm, logits)
    if layers is not None and logits and "logits" not in names:
        names.append("logits")
    plans = plan_layers(fm, names, chunk)  # unknown layers fail here, before Ray or rendering

    if ray is not None:
        from . import ray_backend

        ray_backend.connect(ray, timeout=ray_timeout)
        gpus = float(num_gpus) if num_gpus is not None else (1.0 if ray_backend.cluster_gpus() > 0 else 0.0)
        device = "cuda" if gpus > 0 else "cpu"
    else:
        gpus = 0.0
        device = fm.device.type
    # The same default in both modes, so the same command gives the same tiles in-process and on Ray.
    threads = torch.get_num_threads() if threads is None else threads
    settings = AtlasSettings(
        steps=steps,
        size=size,
        seed=seed,
        chunk=chunk,
        threads=threads,
        device=device,
        render=tuple(sorted(render.items())),
    )
    fingerprint = model_fingerprint(fm)
    key = settings_key(fingerprint, settings)
    manifest = _manifest(fm, source, fingerprint, key, settings, plans)
    store.write_manifest(manifest)

    todo = [c for p in plans for c in p.chunks if not store.is_done(key, c)]
    total = sum(p.units for p in plans)
    skipped = total - sum(len(c.units) for c in todo)
    report = AtlasReport(Path(out), key, total, skipped)
    results: Iterator[ChunkResult]
    if ray is not None:
        from .ray_backend import run_ray

        results = run_ray(fm, todo, settings, num_gpus=gpus)
    else:
        results = run_local(fm, todo, settings)
    bar = _progress(total, skipped, progress)
    try:
        for result in results:
            c = result.chunk
            store.write_chunk(key, result, functools.partial(_tile_settings, manifest, settings, c))
            report.rendered.append((c.layer, c.start))
            report.tiles_rendered += len(c.units)
            if bar is not None:
                bar.update(len(c.units))
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # Ray: cancel what has not finished
        if bar is not None:
            bar.close()
    if site:
        from .site import build_site

        report.index = build_site(store, manifest, fm, photos=photos, exemplars=exemplars, progress=progress)
    report.seconds = time.perf_counter() - t0
    return report


def _manifest(
    model: FeatvizModel,
    source: str | None,
    fingerprint: str,
    key: str,
    settings: AtlasSettings,
    plans: list[LayerPlan],
) -> dict[str, Any]:
    return {
        "format": 1,
        "model": model.name,
        "model_source": source,
        "fingerprint": fingerprint,
        "key": key,
        "settings": settings.as_dict(),
        "layers": [{"name": p.name, "kind": p.kind, "units": p.units} for p in plans],
    }
