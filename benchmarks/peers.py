"""This project against every installable peer, side by side on the same EfficientNet-Lite0:
speed per step, and the quality of class renders at equal step budgets.

The peers are not dependencies; install them in a benchmark-only environment (docs/performance.md,
"Peers"), e.g. a venv that sees the project's packages and adds the peers with ``--no-deps``:

    python3 -m venv .bench-venv
    echo "$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \
        > .bench-venv/lib/python3.11/site-packages/zz_project.pth
    .bench-venv/bin/pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1 decorator horama \
        dreamlens torch-dreams faccent
    .bench-venv/bin/pip install einops opencv-python-headless matplotlib

Then (PYTHONPATH=. so this checkout is imported; a peer that does not import is left out):

    .bench-venv/bin/python benchmarks/peers.py speed [--rounds 3] [--steps 10] [--size 224]
    .bench-venv/bin/python benchmarks/peers.py render [--engines a,b] [--classes 30] [--seeds 0,1]
        [--steps 32,64,256] [--channels 2]      # renders cached in artifacts/peers/renders
    .bench-venv/bin/python benchmarks/peers.py report [--steps 32,64,256]   # judges what is cached
    .bench-venv/bin/python benchmarks/peers.py grid [--step 64] [--columns 6]  # docs/peers_grid.png

``speed``: CPU seconds per steady step on one thread at a mid-layer channel (blocks.8:5) and a class logit
(logits:309), interleaved rounds, as ratios to this project's default and to the floor (one
forward+backward of the network truncated at the layer); peers that send k crops through the
network a step are also set against this project with ``views=k`` (equal work per step).
``render`` + ``report``: each engine renders each class logit for each seed; one trajectory gives
every checkpoint. Lite1 and Lite2 judge the renders (top-1, top-5: transferability); for classes
with a sample photo, plausibility is the cosine between render and photo in Lite2's pooled
features; a Fréchet distance in the same space, renders vs crops of the sample photos (not
Inception FID). Results are reported on the (class, seed) pairs every engine has rendered, at
equal steps and at equal compute (network passes = steps x crops).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import peer_engines as pe
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from quality import CLASSES, HELD_OUT

from featviz_widgets.engine import TransformConfig, capture, load_model, maco_recipe
from featviz_widgets.lab import clipped_share, hsv_saturation

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "artifacts" / "peers"
# This project's rows: RenderSettings keywords (the default is 1/f^1.5 Fourier + decorrelated colour).
ALIGN = 5.0  # the aligned row's weight (the widget's slider at 0.32)
VARIANTS: dict[str, dict[str, Any]] = {
    "featviz": {},  # param="decorrelated": 1/f^1.5 Fourier (tilted) + decorrelated colour
    "featviz-pixels": {"param": "pixels"},
    "featviz-fourier": {"param": "fourier"},
    "featviz-maco": maco_recipe(),  # MaCo's own recipe: phase only, crops, pixel noise, lr 0.3
    # VITAL's reference-aligned penalty on the default (the package's probe photos as references).
    "featviz-aligned": {"align": ALIGN},
    # The class-logit recipe docs/decisions.md gives (total variation 100; not the default, as it
    # washes channel renders out).
    "featviz-tv100": {"tv": 100.0},
    # The default before 2026-12-07: views only zoom in (crops, zoom 1-1.5). Taken from dreamlens's
    # and torch-dreams' transforms (their views zoom out to 0.5), the default now draws 0.8-1.7.
    "featviz-zoomin": {"transform": TransformConfig(scale=0.0)},
    # Further out: scale=0.3, zoom drawn from 0.7-1.8.
    "featviz-zoomout": {"transform": TransformConfig(scale=0.3)},
    # The default before the second change of 2026-12-07: Lucid's 1/f spectrum (decay 1). The
    # default is now 1/f^1.5, tilted about 1/16 cycle per pixel (param.py's fourier_scale).
    "featviz-decay1": {"decay": 1.0},
    # Equal work per step against faccent (16 crops a step): 16 views a step, objectives averaged;
    # the default and the class-logit recipe.
    "featviz-views16": {"views": 16},
    "featviz-tv100-views16": {"tv": 100.0, "views": 16},
    # A quarter of faccent's work per step (`featviz render --views 4`).
    "featviz-views4": {"views": 4},
    # MaCo with several views a step, as its authors run it, and the aligned penalty (the widget's
    # align slider at 0.63): at 128 px level with the one-view default after 32 steps and ahead
    # after 64, with half its speckle (docs/parameterizations.md, "MaCo with alignment").
    "featviz-maco-aligned": {"param": "maco", "views": 4, "align": 20.0},
}
SPEED_TARGETS = {"mid": ("blocks.8", 5), "logit": ("logits", 309)}
GRID_CHANNELS = [("blocks.8", 5), ("blocks.11", 20)]


# --- photos and classes -------------------------------------------------------------------------
def sample_photos() -> dict[str, np.ndarray]:
    """The photos bundled with the package, plus scikit-image's motorcycle when it is there."""
    paths = sorted(pe.PHOTO_DIR.glob("*.jpg"))
    try:
        import skimage

        paths.append(Path(skimage.__file__).parent / "data" / "motorcycle_left.png")
    except ImportError:
        pass
    return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in paths if p.exists()}


def to_judge(images: list[np.ndarray], judge: Any) -> torch.Tensor:
    """(N, 3, S, S) at the judge's input size; a photo that is not square is centre-cropped."""
    out = []
    for img in images:
        h, w, _ = img.shape
        side = min(h, w)
        img = img[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
        out.append(F.interpolate(x, (judge.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(out)


@torch.no_grad()
def judged(images: list[np.ndarray], judge: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and pooled features of ``judge`` for (H, W, 3) uint8 images, in batches of 32."""
    logits, feats = [], []
    for i in range(0, len(images), 32):
        x = to_judge(images[i : i + 32], judge)
        acts = capture(judge, x, ["pool", "logits"])
        logits.append(acts["logits"])
        feats.append(acts["pool"].flatten(1))
    return torch.cat(logits), torch.cat(feats)


# The ImageNet class of each sample photo that shows one (the astronaut shows none; Lite2 calls
# the rocket a drilling platform, the motorcycle a moped).
PHOTO_CLASSES = {"chelsea": 285, "coffee": 967, "motorcycle_left": 665, "rocket": 657}


def photo_classes(photos: dict[str, np.ndarray]) -> dict[int, str]:
    """{class: photo name} for the photos that show an ImageNet class."""
    return {k: name for name, k in PHOTO_CLASSES.items() if name in photos}


def class_list(photo_cls: dict[int, str], n: int) -> list[int]:
    """Classes with a photo first (plausibility needs one), then quality.py's fixed and held-out sets."""
    ordered = list(dict.fromkeys([*photo_cls, *CLASSES, *HELD_OUT]))
    return ordered[:n]


def photo_crops(photos: dict[str, np.ndarray], per_photo: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Random square crops (40-100 % of the short side), half of them mirrored: the natural
    reference set of the Fréchet distance."""
    rng = np.random.RandomState(seed)
    out = []
    for photo in photos.values():
        h, w, _ = photo.shape
        for i in range(per_photo):
            side = int(min(h, w) * rng.uniform(0.4, 1.0))
            y, x = rng.randint(0, h - side + 1), rng.randint(0, w - side + 1)
            crop = np.asarray(Image.fromarray(photo[y : y + side, x : x + side]).resize((224, 224), Image.BILINEAR))
            out.append(crop[:, ::-1] if i % 2 else crop)
    return out


def speckle(image: np.ndarray) -> float:
    """Share of the luminance's spectral power (mean removed) above half the Nyquist frequency:
    pixel-scale speckle and high-frequency noise raise it, smooth shapes lower it."""
    lum = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    power = np.abs(np.fft.rfft2(lum - lum.mean())) ** 2
    fy = np.fft.fftfreq(lum.shape[0])[:, None]
    fx = np.fft.rfftfreq(lum.shape[1])[None, :]
    return float(power[np.hypot(fx, fy) > 0.25].sum() / max(power.sum(), 1e-12))


def colour_measures(images: list[np.ndarray]) -> dict[str, float]:
    """Mean share of clipped pixels (a channel at 0-2 or 253-255) and mean HSV saturation: judges
    and the Fréchet distance can score an over-saturated picture well (docs/performance.md)."""
    pictures = [Image.fromarray(img) for img in images]
    return {
        "clipped": float(np.mean([clipped_share(p) for p in pictures])),
        "saturation": float(np.mean([hsv_saturation(p) for p in pictures])),
    }


def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b``:
    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2). With fewer rows than features the
    trace of the square root comes from the small (rows x rows) matrix X_a S_b X_a^T, which has
    the same non-zero eigenvalues as S_a S_b (exact, and no 1280 x 1280 sqrtm)."""
    xa, xb = a.double(), b.double()
    ca, cb = xa - xa.mean(0), xb - xb.mean(0)
    na, nb = len(xa) - 1, len(xb) - 1
    small = (ca @ cb.T) @ (cb @ ca.T) / (na * nb)
    root = torch.linalg.eigvalsh((small + small.T) / 2).clamp(min=0).sqrt().sum()
    mean = ((xa.mean(0) - xb.mean(0)) ** 2).sum()
    return float(mean + (ca**2).sum() / na + (cb**2).sum() / nb - 2 * root)


# --- engines ------------------------------------------------------------------------------------
def all_engines() -> list[pe.Engine]:
    spectrum = None
    try:
        import horama  # noqa: F401

        OUT.mkdir(parents=True, exist_ok=True)
        spectrum = pe.horama_spectrum(list(sample_photos().values()), OUT / "horama_spectrum.npy")
    except ImportError:
        pass
    return our_engines() + pe.peer_engines(spectrum)


def our_engines(**extra: Any) -> list[pe.Engine]:
    """This project's rows (``VARIANTS``), each counting its views as crops; ``extra`` settings
    go to every row."""
    return [pe.Engine(name, pe.featviz(**kw, **extra), crops=kw.get("views", 1)) for name, kw in VARIANTS.items()]


def pick(engines: list[pe.Engine], names: str | None) -> list[pe.Engine]:
    if not names:
        return engines
    wanted = names.split(",")
    known = {e.name: e for e in engines}
    missing = [n for n in wanted if n not in known]
    if missing:
        raise SystemExit(f"Unknown or not installed engine(s) {missing}; available: {list(known)}")
    return [known[n] for n in wanted]


def render_path(out: Path, engine: str, layer: str, unit: int, seed: int) -> Path:
    return out / "renders" / engine / f"{layer}_{unit}_s{seed}.npz"


def cached(path: Path, steps: tuple[int, ...]) -> dict[int, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as z:
        have = {int(k[1:]): z[k] for k in z.files if k[0] == "s" and k[1:].isdigit()}
    return have if all(s in have for s in steps) else None


def cmd_render(args: argparse.Namespace) -> None:
    model = load_model()
    steps = tuple(int(s) for s in args.steps.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    classes = class_list(photo_classes(sample_photos()), args.classes)
    targets = [("logits", k) for k in classes] + GRID_CHANNELS[: args.channels]
    engines = pick(all_engines(), args.engines)
    print(f"engines={[e.name for e in engines]} targets={len(targets)} seeds={seeds} steps={steps}", flush=True)
    t_all = time.perf_counter()
    for seed in seeds:  # every engine's first seed before any second seed: a cut run stays paired
        for layer, unit in targets:
            for engine in engines:
                path = render_path(args.out, engine.name, layer, unit, seed)
                if cached(path, steps) is not None:
                    continue
                t0 = time.perf_counter()
                with pe.quiet():
                    snaps = engine.render(model, layer, unit, steps, seed, args.size)
                seconds = time.perf_counter() - t0
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(path, seconds=seconds, **{f"s{k}": v for k, v in snaps.items()})
                print(f"{engine.name:<16} {layer}:{unit:<4} seed {seed}  {seconds:6.1f} s", flush=True)
    print(f"render done in {time.perf_counter() - t_all:.0f} s", flush=True)


# --- report -------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> None:
    steps = tuple(int(s) for s in args.steps.split(","))
    engines = {e.name: e for e in all_engines()}
    judges = {"lite1": load_model("efficientnet_lite1"), "lite2": load_model("efficientnet_lite2")}
    photos = sample_photos()
    photo_cls = photo_classes(photos)
    _, photo_feats = judged(list(photos.values()), judges["lite2"])
    photo_feat = dict(zip(photos, photo_feats, strict=True))
    crops = photo_crops(photos, args.photo_crops)
    _, crop_feats = judged(crops, judges["lite2"])
    natural = {"speckle": float(np.mean([speckle(img) for img in crops])), **colour_measures(crops)}
    renders: dict[str, dict[tuple[int, int], dict[int, np.ndarray]]] = {}
    seconds: dict[str, list[float]] = {}
    for folder in sorted((args.out / "renders").glob("*")):
        if folder.name not in engines or (args.engines and folder.name not in args.engines.split(",")):
            continue
        for f in folder.glob("logits_*_s*.npz"):
            _, unit, seed = f.stem.split("_")
            snaps = cached(f, steps)
            if snaps is not None:
                renders.setdefault(folder.name, {})[(int(unit), int(seed[1:]))] = snaps
                seconds.setdefault(folder.name, []).append(float(np.load(f)["seconds"]))
    if not renders:
        raise SystemExit(f"No renders with steps {steps} under {args.out / 'renders'}: run `render` first.")
    common = set.intersection(*(set(r) for r in renders.values()))
    if not common:
        raise SystemExit("No (class, seed) pair is rendered by every engine: report fewer engines (--engines).")
    pairs = sorted(common)
    n_cls, n_seed = len({c for c, _ in pairs}), len({s for _, s in pairs})
    print(f"{len(pairs)} renders per engine and step ({n_cls} classes x {n_seed} seeds), steps {steps}")
    rows: dict[str, dict[int, dict[str, float]]] = {}
    order = list(engines)
    for name, by_pair in sorted(renders.items(), key=lambda kv: order.index(kv[0])):
        rows[name] = {}
        # This project's rows are judged at their deeper checkpoints too (e.g. 256 when the peers are
        # reported at 32, 64): the equal-compute comparison sets a peer's k x s passes against them.
        deeper = (
            set.intersection(*(set(by_pair[p]) for p in pairs)) - set(steps) if name.startswith("featviz") else set()
        )
        for s in (*steps, *sorted(deeper)):
            images = [by_pair[p][s] for p in pairs]
            labels = torch.tensor([c for c, _ in pairs])
            row: dict[str, float] = {"speckle": float(np.mean([speckle(img) for img in images]))}
            row.update(colour_measures(images))
            for jname, judge in judges.items():
                logits, feats = judged(images, judge)
                row[f"{jname}_top1"] = float((logits.argmax(1) == labels).float().mean())
                row[f"{jname}_top5"] = float((logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean())
                # The judge's mean probability of the intended class: still separates engines once
                # top-1 saturates (every long run at 100 %).
                row[f"{jname}_prob"] = float(logits.softmax(1).gather(1, labels[:, None]).mean())
                if jname == "lite2":
                    cos = [
                        float(F.cosine_similarity(feats[i], photo_feat[photo_cls[c]], dim=0))
                        for i, (c, _) in enumerate(pairs)
                        if c in photo_cls
                    ]
                    row["plausibility"] = float(np.mean(cos)) if cos else float("nan")
                    row["frechet"] = frechet(feats, crop_feats)
            rows[name][s] = row
    print_tables(rows, engines, steps, seconds, natural)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(markdown(rows, engines, steps, seconds, n_cls, n_seed, natural))
    (args.out / "report.json").write_text(
        json.dumps({"pairs": pairs, "steps": steps, "rows": rows, "photos": natural}, indent=1)
    )


def markdown(
    rows: dict[str, dict[int, dict[str, float]]],
    engines: dict[str, pe.Engine],
    steps: tuple[int, ...],
    seconds: dict[str, list[float]],
    n_cls: int,
    n_seed: int,
    natural: dict[str, float],
) -> str:
    """The report as a Markdown table, for docs/performance.md."""
    cols = [f"{s} steps: Lite1 / Lite2 top-1 (Lite2 top-5) [Lite1 / Lite2 p(class)]" for s in steps]
    cols += [f"{s} steps: plausibility / Fréchet / speckle / clipped / saturation" for s in steps]
    lines = [
        f"{n_cls} classes x {n_seed} seed(s), the same pairs for every engine. The photos' crops: "
        + _natural_line(natural)
        + ".",
        "",
        "| engine | crops | " + " | ".join(cols) + " | median s/render |",
        "|---|---|" + "---|" * len(cols) + "---|",
    ]
    for name, by_step in rows.items():
        cells = [
            f"{by_step[s]['lite1_top1']:.0%} / {by_step[s]['lite2_top1']:.0%} ({by_step[s]['lite2_top5']:.0%})"
            f" [{by_step[s]['lite1_prob']:.2f} / {by_step[s]['lite2_prob']:.2f}]"
            for s in steps
        ]
        cells += [
            f"{by_step[s]['plausibility']:.3f} / {by_step[s]['frechet']:.0f} / {by_step[s]['speckle']:.1%} / "
            f"{by_step[s]['clipped']:.1%} / {by_step[s]['saturation']:.2f}"
            for s in steps
        ]
        lines.append(
            f"| {name} | {engines[name].crops} | " + " | ".join(cells) + f" | {statistics.median(seconds[name]):.0f} |"
        )
    return "\n".join(lines) + "\n"


def _natural_line(natural: dict[str, float]) -> str:
    return f"speckle {natural['speckle']:.1%}, clipped {natural['clipped']:.1%}, saturation {natural['saturation']:.2f}"


def print_tables(
    rows: dict[str, dict[int, dict[str, float]]],
    engines: dict[str, pe.Engine],
    steps: tuple[int, ...],
    seconds: dict[str, list[float]],
    natural: dict[str, float],
) -> None:
    head = f"{'engine':<16} {'crops':>5} " + " ".join(f"{f'L1/L2@{s}':>24}" for s in steps)
    print("\ntransferability, top-1 (top-5) % judged by Lite1 / Lite2 [their mean p(class)], at equal steps")
    print(head + f" {'s/render':>9}")
    for name, by_step in rows.items():
        cells = []
        for s in steps:
            r = by_step[s]
            cells.append(
                f"{r['lite1_top1']:>4.0%}/{r['lite2_top1']:>4.0%}({r['lite2_top5']:>3.0%})"
                f"[{r['lite1_prob']:.2f}/{r['lite2_prob']:.2f}]"
            )
        print(
            f"{name:<16} {engines[name].crops:>5} "
            + " ".join(f"{c:>24}" for c in cells)
            + f" {statistics.median(seconds[name]):>9.1f}"
        )
    print(
        "\nplausibility (cosine to the class's photo, Lite2 features) / judge-space Frechet distance to photo"
        " crops (not Inception FID) / speckle (% of power above half Nyquist) / clipped pixels / HSV saturation"
    )
    print(f"photo crops: {_natural_line(natural)}")
    print(f"{'engine':<16} " + " ".join(f"{f'@{s}':>36}" for s in steps))
    for name, by_step in rows.items():
        cells = [
            f"{r['plausibility']:.3f}/{r['frechet']:>5.0f}/{r['speckle']:>5.1%}/{r['clipped']:>5.1%}/{r['saturation']:.2f}"
            for r in (by_step[s] for s in steps)
        ]
        print(f"{name:<16} " + " ".join(f"{c:>36}" for c in cells))
    ours = rows.get("featviz")
    if ours is None:
        return
    print(
        "\nequal compute (network passes = steps x crops): a peer at s steps vs this project's default and"
        " class recipe at the largest checkpoint <= its passes"
    )
    for name, by_step in rows.items():
        crops = engines[name].crops
        if crops == 1 or name.startswith("featviz"):
            continue
        for s in steps:
            versus = []
            for mine in ("featviz", "featviz-tv100"):
                if mine in rows:
                    t = max(c for c in rows[mine] if c <= s * crops)
                    versus.append(f"{mine} @{t}: {rows[mine][t]['lite1_top1']:.0%} / {rows[mine][t]['lite2_top1']:.0%}")
            print(
                f"  {name} @{s} ({s * crops} passes): Lite1 / Lite2 top-1 {by_step[s]['lite1_top1']:.0%} / "
                f"{by_step[s]['lite2_top1']:.0%}  vs  " + ",  ".join(versus)
            )
    for s in steps:
        best = max(
            (n for n in rows if not n.startswith("featviz")), key=lambda n: rows[n][s]["lite2_top1"], default=None
        )
        if best is not None:
            print(
                f"ratio @{s}: featviz Lite2 top-1 {ours[s]['lite2_top1']:.0%} vs best peer {best} "
                f"{rows[best][s]['lite2_top1']:.0%} (Lite1 {ours[s]['lite1_top1']:.0%} vs {rows[best][s]['lite1_top1']:.0%})"
            )


# --- speed --------------------------------------------------------------------------------------
def step_seconds(engine: pe.Engine, model: Any, layer: str, unit: int, size: int, n: int) -> float:
    """CPU seconds per step (this process's CPU time, so the load of a shared machine does not
    enter; one thread): a run of 2 + n steps less a run of 2 (setup and hooking cost)."""
    with pe.quiet():
        t0 = time.process_time()
        engine.render(model, layer, unit, (2,), 0, size)
        short = time.process_time() - t0
        t0 = time.process_time()
        engine.render(model, layer, unit, (2 + n,), 0, size)
    return (time.process_time() - t0 - short) / n


def floor_seconds(model: Any, layer: str, size: int, n: int) -> float:
    x = torch.rand(1, 3, size, size)

    def once() -> None:
        xi = x.detach().requires_grad_(True)
        capture(model, xi, [layer])[layer].mean().backward()

    once()
    t0 = time.process_time()
    for _ in range(n):
        once()
    return (time.process_time() - t0) / n


def cmd_speed(args: argparse.Namespace) -> None:
    model = load_model()
    # This project's steady step: without the first 16 steps' redirected ReLU gradient.
    steady = {e.name: e for e in our_engines(redirect_steps=0)}
    engines = [steady.get(e.name, e) for e in pick(all_engines(), args.engines)]
    # Equal work per step: this project with as many views a step as a peer has crops.
    for k in sorted({e.crops for e in engines if e.crops > 1}):
        if any(e.name == f"featviz-views{k}" for e in engines):
            continue
        engines.append(pe.Engine(f"featviz-views{k}", pe.featviz(views=k, redirect_steps=0), crops=k))
    print(
        f"threads={torch.get_num_threads()} size={args.size} steps={args.steps} rounds={args.rounds} engines={[e.name for e in engines]}"
    )
    for target, (layer, unit) in SPEED_TARGETS.items():
        times: dict[str, list[float]] = {e.name: [] for e in engines}
        times["floor"] = []
        for _ in range(args.rounds):  # interleaved: machine noise hits every engine alike
            for e in engines:
                n = max(2, args.steps * 2 // e.crops) if e.crops > 1 else args.steps
                times[e.name].append(step_seconds(e, model, layer, unit, args.size, n))
            times["floor"].append(floor_seconds(model, layer, args.size, args.steps))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{target} ({layer}:{unit}), medians of {args.rounds} rounds")
        print(
            f"{'engine':<18} {'crops':>5} {'s/step':>8} {'x floor':>8} {'featviz speed / it':>19} {'at equal work':>14}"
        )
        for e in engines:
            same_work = f"featviz-views{e.crops}" if e.crops > 1 and not e.name.startswith("featviz") else "featviz"
            print(
                f"{e.name:<18} {e.crops:>5} {med[e.name]:>8.3f} {med[e.name] / med['floor']:>8.2f} "
                f"{med[e.name] / med['featviz']:>18.2f}x {med[e.name] / med[same_work]:>13.2f}x"
            )
        print(f"{'floor':<18} {1:>5} {med['floor']:>8.3f} {1.0:>8.2f}")
        slowest_ratio = (
            min(
                med[e.name] / med[f"featviz-views{e.crops}" if e.crops > 1 else "featviz"]
                for e in engines
                if not e.name.startswith("featviz")
            )
            if any(not e.name.startswith("featviz") for e in engines)
            else float("nan")
        )
        print(
            f"ratio {target}: featviz step = {med['featviz'] / med['floor']:.2f}x the floor; closest peer at equal work takes {slowest_ratio:.2f}x featviz's time"
        )


# --- grid ---------------------------------------------------------------------------------------
def cmd_grid(args: argparse.Namespace) -> None:
    from featviz_widgets.engine.models import imagenet_class_names

    names = imagenet_class_names()
    folders = [f for f in sorted((args.out / "renders").glob("*")) if f.is_dir()]
    order = [e.name for e in all_engines()]
    folders.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
    key = f"s{args.step}"
    per_engine = {f.name: {p.stem: p for p in f.glob(f"*_s{args.seed}.npz")} for f in folders}
    shared = set.intersection(*(set(v) for v in per_engine.values())) if per_engine else set()
    shared = {s for s in shared if all(key in np.load(per_engine[e][s]).files for e in per_engine)}
    logits = sorted((s for s in shared if s.startswith("logits_")), key=lambda s: int(s.split("_")[1]))
    chans = sorted(s for s in shared if not s.startswith("logits_"))
    columns = logits[: args.columns - len(chans[:2])] + chans[:2]
    if not columns:
        raise SystemExit(f"No target rendered to step {args.step} with seed {args.seed} by every engine.")
    tile, label_w, head_h = args.tile, 120, 28
    canvas = Image.new("RGB", (label_w + tile * len(columns), head_h + tile * len(folders)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, col in enumerate(columns):
        layer, unit, _ = col.rsplit("_", 2)
        title = names[int(unit)][:18] if layer == "logits" else f"{layer}:{unit}"
        draw.text((label_w + j * tile + 3, 8), title, fill="black")
    for i, folder in enumerate(folders):
        draw.text((4, head_h + i * tile + tile // 2 - 6), folder.name, fill="black")
        for j, col in enumerate(columns):
            img = Image.fromarray(np.load(per_engine[folder.name][col])[key]).resize((tile, tile), Image.LANCZOS)
            canvas.paste(img, (label_w + j * tile, head_h + i * tile))
    draw.text((4, 8), f"{args.step} steps, seed {args.seed}", fill="black")
    args.grid.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.grid, optimize=True)
    if args.grid.stat().st_size > 1_000_000:
        canvas.quantize(256).save(args.grid, optimize=True)
    print(f"{args.grid}: {len(folders)} engines x {len(columns)} targets, {args.grid.stat().st_size // 1024} KiB")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=OUT, help="where renders and the report go")
    common.add_argument("--engines", help="comma-separated engine names (default: all that import)")
    common.add_argument("--size", type=int, default=224)
    common.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: the per-step figures are single-thread)"
    )
    r = sub.add_parser("render", parents=[common])
    r.add_argument("--classes", type=int, default=30)
    r.add_argument("--seeds", default="0,1")
    r.add_argument("--steps", default="32,64,256")
    r.add_argument("--channels", type=int, default=2, help="mid-layer channels rendered too (for the grid)")
    rep = sub.add_parser("report", parents=[common])
    rep.add_argument("--steps", default="32,64,256")
    rep.add_argument(
        "--photo-crops", type=int, default=16, help="crops of each sample photo in the Fréchet reference set"
    )
    s = sub.add_parser("speed", parents=[common])
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--steps", type=int, default=10)
    g = sub.add_parser("grid", parents=[common])
    g.add_argument("--step", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--columns", type=int, default=7)
    g.add_argument("--tile", type=int, default=112)
    g.add_argument("--grid", type=Path, default=ROOT / "docs" / "peers_grid.png")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    {"render": cmd_render, "report": cmd_report, "speed": cmd_speed, "grid": cmd_grid}[args.cmd](args)


if __name__ == "__main__":
    main()
