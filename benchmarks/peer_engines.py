"""Every engine benchmarks/peers.py compares, behind one call: render one target on one model
from one seed and return the picture at each checkpoint of a single trajectory.

``Engine.render(model, layer, unit, checkpoints, seed, size)`` -> {step: (H, W, 3) uint8}: the
image after ``step`` optimizer updates, for every step in ``checkpoints``, all from one run.
``crops`` is how many images the engine sends through the network per step (its work per step).

This project's rows are dicts of ``RenderSettings`` keywords. The peers run at their own
recommended defaults (read from their sources; docs/performance.md lists them), on this
project's EfficientNet-Lite0 (a module taking RGB in [0, 1]), with the canvas ``size``:

- Lucent (torch-lucent 0.1.8): ``render_vis``, ``param.image`` (Fourier, decorrelated colour),
  ``standard_transforms``, Adam 0.05; every module hooked, the whole network runs.
- Horama 0.3.0: ``maco`` (phase-only Fourier with a fixed magnitude spectrum, NAdam lr 1, six
  roi_align crops of 25-30 % of the canvas a step, noise 0.05, values in (-2.5, 2.5) of
  ImageNet-normalized input). Its spectrum would be downloaded at first use; it gets instead the
  mean magnitude of sample photos through Horama's own ``inverse_image_spectrum``.
- dreamlens 0.1.1: ``FeatureVisualizer.synthesize`` at ``RenderConfig``'s defaults (Fourier,
  decorrelated, AdamW lr 9e-3, gradient norm clipped at 1, rotation 15 deg, zoom 0.5-1.2).
- torch-dreams 4.0.0: ``Dreamer.render`` defaults (the same recipe as dreamlens: AdamW 9e-3,
  clip 1, RandomAffine 15 deg, a random resize 0.5-1.2 of each side: the model sees 112-269 px).
- faccent 1.0.3: ``render_vis`` defaults: ``param.fourier`` (decorrelated), Adam 0.05, 16 box
  crops a step of 5-99 % of the canvas each resized to 224, Gaussian + uniform noise 0.02.

Checkpoints come from one trajectory: Lucent's ``thresholds`` and faccent's ``out_thresholds``
do it themselves; for the others a wrapper records the image each step starts from (the image
after the previous updates), the last checkpoint being the engine's returned image.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lucent_run import hooks_restored

from featviz_widgets.engine import Renderer
from featviz_widgets.engine.core import to_uint8

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
Snapshots = dict[int, np.ndarray]


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    image = image.detach().float().cpu()
    return to_uint8(image[None] if image.dim() == 3 else image[:1])[0]


def _module(model: Any, layer: str) -> torch.nn.Module:
    return model.module_for(layer)


@contextlib.contextmanager
def recording(owner: Any, attr: str, to_image: Callable[..., torch.Tensor], checkpoints: set[int], out: Snapshots):
    """Wrap ``owner.attr`` (called once per step to make the step's image): its k-th call makes
    the image after k-1 updates, recorded when k-1 is a checkpoint."""
    original = getattr(owner, attr)
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        done = calls[0]
        calls[0] += 1
        if done in checkpoints and done not in out:
            with torch.no_grad():
                out[done] = _uint8(to_image(result, *args, **kwargs))
        return result

    setattr(owner, attr, wrapped)
    try:
        yield
    finally:
        setattr(owner, attr, original)


@dataclass(frozen=True)
class Engine:
    name: str
    run: Callable[..., Snapshots] = field(repr=False)
    crops: int = 1  # images through the network per step
    note: str = ""

    def render(
        self, model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int
    ) -> Snapshots:
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        with hooks_restored(model):
            return self.run(model, layer, unit, tuple(sorted(checkpoints)), seed, size)


# --- this project -------------------------------------------------------------------------------
def featviz(**settings: Any) -> Callable[..., Snapshots]:
    def run(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
        r = Renderer(model, f"{layer}:{unit}", size=size, seed=seed, **settings)
        out: Snapshots = {}
        for step in range(1, max(checkpoints) + 1):
            r.step()
            if step in checkpoints:
                out[step] = _uint8(r.image())
        return out

    return run


# --- Lucent -------------------------------------------------------------------------------------
def _lucent_name(layer: str) -> str:
    return "net_" + layer.replace(".", "_")


def lucent(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
    from lucent.optvis import param, render, transform

    images = render.render_vis(
        model,
        f"{_lucent_name(layer)}:{unit}",
        param_f=lambda: param.image(size),
        transforms=transform.standard_transforms,
        thresholds=checkpoints,
        show_image=False,
        progress=False,
        preprocess=False,
        fixed_image_size=size,
    )
    return {s: (img[0] * 255).round().astype(np.uint8) for s, img in zip(checkpoints, images, strict=True)}


# --- Horama (MaCo) ------------------------------------------------------------------------------
PHOTO_DIR = Path(__file__).resolve().parent.parent / "featviz_widgets" / "data"


def horama_spectrum(photos: list[np.ndarray], path: Path) -> Path:
    """The magnitude spectrum Horama's MaCo needs, made from ``photos`` (H, W, 3 uint8) with
    Horama's own ``inverse_image_spectrum`` (its inverse preconditioner: logit, decorrelate,
    rfft2), averaged over the photos at 224 px, in ImageNet-normalized values as Horama works."""
    from horama.feature_accentuation import inverse_image_spectrum

    mags = []
    for photo in photos:
        x = torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255
        x = F.interpolate(x, (224, 224), mode="bilinear", antialias=True, align_corners=False)[0]
        mags.append(inverse_image_spectrum((x - IMAGENET_MEAN) / IMAGENET_STD).abs())
    np.save(path, torch.stack(mags).mean(0).numpy().astype(np.float32))
    return path


def horama(spectrum: Path) -> Callable[..., Snapshots]:
    def run(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
        import horama.maco_fv as maco_fv

        acts: dict[str, torch.Tensor] = {}
        handle = (
            None
            if layer == "logits"
            else _module(model, layer).register_forward_hook(lambda _m, _i, o: acts.__setitem__("out", o))
        )

        def objective(images: torch.Tensor) -> torch.Tensor:
            # Horama works in ImageNet-normalized values; the model takes [0, 1].
            logits = model(images * IMAGENET_STD.to(images) + IMAGENET_MEAN.to(images))
            out = logits if handle is None else acts["out"]
            return out[:, unit].mean()

        to01 = lambda img, *_a, **_k: (img * IMAGENET_STD.to(img) + IMAGENET_MEAN.to(img)).clamp(0, 1)  # noqa: E731
        out: Snapshots = {}
        saved = maco_fv.MACO_SPECTRUM_FILENAME, maco_fv.tqdm
        maco_fv.MACO_SPECTRUM_FILENAME = str(spectrum)  # never downloaded: ours, from photos
        maco_fv.tqdm = lambda it: it  # no progress bar
        try:
            with recording(maco_fv, "maco_preconditioner", to01, set(checkpoints), out):
                final, _ = maco_fv.maco(
                    objective, total_steps=max(checkpoints), image_size=size, device=str(model.device)
                )
        finally:
            maco_fv.MACO_SPECTRUM_FILENAME, maco_fv.tqdm = saved
            if handle is not None:
                handle.remove()
        out[max(checkpoints)] = _uint8(to01(final))
        return out

    return run


# --- dreamlens ----------------------------------------------------------------------------------
def dreamlens(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
    import dreamlens.feature_visualizer as fvmod
    from dreamlens import FeatureVisualizer, RenderConfig

    c = RenderConfig()
    fv = FeatureVisualizer(model, quiet=True, normalize=False)  # the model normalizes itself
    out: Snapshots = {}
    with recording(fvmod, "call_image_parameter", lambda img, *_a, **_k: img, set(checkpoints), out):
        param = fv.synthesize(
            [_module(model, layer)],
            width=size,
            height=size,
            iters=max(checkpoints),
            lr=c.lr,
            rotate_degrees=c.transform.rotate_degrees,
            scale_max=c.transform.scale_max,
            scale_min=c.transform.scale_min,
            custom_func=lambda outs: -outs[0][:, unit].mean(),
            weight_decay=c.weight_decay,
            grad_clip=c.grad_clip,
            fft=c.fft,
            decorrelate=c.decorrelate,
        )
    out[max(checkpoints)] = _uint8(fvmod.call_image_parameter(param, model.device))
    return out


# --- torch-dreams -------------------------------------------------------------------------------
def torch_dreams(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
    from torch_dreams import Dreamer
    from torch_dreams.auto_image_param import AutoImageParam

    dreamer = Dreamer(model, quiet=True, device=str(model.device))
    dreamer.set_custom_normalization(torch.nn.Identity())  # the model takes [0, 1] itself
    out: Snapshots = {}
    to01 = lambda _img, self, *_a, **_k: self.postprocess(device=model.device)  # noqa: E731
    with recording(AutoImageParam, "forward", to01, set(checkpoints), out):
        param = dreamer.render(
            layers=[_module(model, layer)],
            width=size,
            height=size,
            iters=max(checkpoints),
            custom_func=lambda outs: -outs[0][:, unit].mean(),
        )
    out[max(checkpoints)] = _uint8(param.postprocess(device=model.device))
    return out


# --- faccent ------------------------------------------------------------------------------------
def faccent(model: Any, layer: str, unit: int, checkpoints: tuple[int, ...], seed: int, size: int) -> Snapshots:
    from faccent import param, render

    with contextlib.redirect_stdout(None):  # it prints its choices at every call
        parameterizer = param.fourier(device=model.device, img_size=(size, size), seed=seed)
        imgs, *_ = render.render_vis(
            model,
            f"{_lucent_name(layer)}:{unit}",
            parameterizer=parameterizer,
            out_thresholds=checkpoints,
            inline_thresholds=[],
            progress=False,
            model_input_size=(model.input_size, model.input_size),
            model_input_range=(0, 1),
            img_size=(size, size),
        )
    return {s: _uint8(img) for s, img in zip(checkpoints, imgs, strict=True)}


def peer_engines(spectrum: Path | None) -> list[Engine]:
    """The peers that import here (each is skipped when it is not installed)."""
    found = []
    for module, engine in (
        ("lucent", lambda: Engine("lucent", lucent)),
        ("horama", lambda: Engine("horama-maco", horama(spectrum), crops=6)),  # spectrum is set: checked below
        ("dreamlens", lambda: Engine("dreamlens", dreamlens)),
        ("torch_dreams", lambda: Engine("torch-dreams", torch_dreams)),
        ("faccent", lambda: Engine("faccent", faccent, crops=16)),
    ):
        try:
            __import__(module)
        except ImportError:
            continue
        if module == "horama" and spectrum is None:
            continue
        found.append(engine())
    return found


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Peers print progress and warnings; keep the benchmark's output to its tables."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
