"""The live loop: one worker thread per view drives a Renderer and publishes frames.

Flow control (read this before changing anything here):

* Observers (kernel main thread) never touch torch. ``LiveRunner.set()`` validates the change,
  stores it in ``_pending`` under a lock, bumps ``generation`` and sets the wake event. O(1).
* The worker thread is the only user of the Renderer. Before every step it takes the pending
  changes and applies them: learning rate, penalties and transform strength on the running
  optimization; a new target restarts or warm-starts; a new size rebuilds.
* Frames go out through a ``FrameSink``. The worker publishes at most ``fps`` frames a second,
  only when the sink says it can take one (the browser has acknowledged all but at most 2 frames
  and some view is visible); otherwise only the status line is sent. JPEG while running (the
  picture changes every step); one PNG when paused, and an occasional PNG once the objective
  has converged ("quiet"), so what stays on screen is lossless.
* Any exception inside a step is caught: it goes to ``status['error']`` and ``last_error`` (the
  traceback), the image is kept, and the loop keeps serving.
* When every browser view of the widget is gone for a few seconds (its cell re-run or cleared),
  the sink reports ``abandoned()`` and the loop pauses itself: nothing runs that nobody sees.
* ``stop()`` sets an event and joins; ``close()`` also drops the model and image (and frees CUDA
  memory). ``stop_all()`` stops every runner still alive in this process.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ..engine import FeatvizModel, Renderer, RenderSettings
from ..engine.layers import layer_info, layers_by_name
from ..engine.openmp import release_idle_openmp_threads
from ..engine.renderer import to_uint8
from ..errors import FeatvizError, InvalidSettingError
from .encode import encode, tile
from .target import Target

_RUNNERS: weakref.WeakSet[LiveRunner] = weakref.WeakSet()


@dataclass
class Frame:
    data: bytes
    mime: str  # "image/jpeg" or "image/png"
    width: int
    height: int
    step: int


class FrameSink(Protocol):
    def ready(self) -> bool:
        """True when a new frame may be sent now (back-pressure and visibility)."""

    def publish(self, frame: Frame | None, status: dict[str, Any]) -> None:
        """Show ``frame`` (None: status only). Called from the worker thread."""

    def abandoned(self) -> bool:
        """True when no one can see the output any more: the loop pauses itself."""


def stop_all() -> int:
    """Stop every live loop in this process; returns how many were running."""
    running = [r for r in list(_RUNNERS) if r.is_running]
    for r in running:
        r.stop()
    return len(running)


def is_quiet(history: deque[float] | list[float], window: int = 30, tolerance: float = 0.002) -> bool:
    """True when the objective has stopped moving: over the last ``window`` steps it stayed
    within ``tolerance`` (relative) of its mean."""
    if len(history) < window:
        return False
    recent = list(history)[-window:]
    mean = sum(recent) / window
    return max(abs(v - mean) for v in recent) <= tolerance * max(abs(mean), 1e-6)


def cpu_threads() -> int:
    """Intra-op threads for the CPU worker: all cores but one, which stays with the kernel."""
    return max(1, (os.cpu_count() or 2) - 1)


class LiveRunner:
    """Runs the optimization for ``target`` in a background thread and feeds ``sink``."""

    def __init__(
        self,
        model: FeatvizModel,
        target: Target,
        settings: RenderSettings,
        sink: FrameSink,
        *,
        fps: float = 12.0,
        history: int = 300,
    ) -> None:
        if not (0 < fps <= 60):
            raise InvalidSettingError(f"fps must be in (0, 60], got {fps!r}.")
        self.model = model
        self.sink = sink
        self.fps = float(fps)
        self.keep_image = True  # warm start when the target changes
        self.generation = 0
        self.last_error: str | None = None
        self.history: deque[float] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = False
        self._pending: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self.settings = settings
        self._check_target(target)
        self.target = target
        self.renderer: Renderer | None = None
        self.status: dict[str, Any] = {
            "step": 0,
            "objective": None,
            "steps_per_s": 0.0,
            "device": str(model.device),
            "state": "starting",
            "error": "",
            "warning": "",
        }
        # Small thumbnails every few steps for the time-lapse export (bounded memory).
        self.timelapse: deque[np.ndarray] = deque(maxlen=240)
        self.timelapse_every = 4
        self.changed_since_reset = False  # a live change makes the run not reproducible by render()
        self._frames_sent = 0
        self._last_frame_step = -1
        self._png_sent_for: tuple[int, int] = (-1, -1)
        self._last_png_time = 0.0
        _RUNNERS.add(self)

    # --- called from the kernel thread: record and wake, nothing else -------------------------
    def _check_target(self, target: Target) -> None:
        layers = layers_by_name(self.model)
        target.objective(self.channels_for(target)).check(layers, self.settings.batch)

    def set(self, **changes: Any) -> None:
        """Change render settings (``lr``, ``l1``, ``tv``, ``blur``, ``transform_strength``,
        ``size``, ``seed``, ``batch``...). Validated now; applied by the worker on its next step.
        Raises InvalidSettingError, leaving the loop as it was."""
        with self._lock:
            base = self.settings.replace(**self._pending.get("settings", {}))
            base.replace(**changes)  # validation only
            merged = {**self._pending.get("settings", {}), **changes}
            self._pending["settings"] = merged
            self.generation += 1
        self._wake.set()

    def set_target(self, target: Target, keep_image: bool | None = None) -> None:
        """Optimize for a new target (validated now, applied on the next step)."""
        self._check_target(target)
        with self._lock:
            self._pending["target"] = (target, self.keep_image if keep_image is None else keep_image)
            self.generation += 1
        self._wake.set()

    def reset(self, seed: int | None = None) -> None:
        """Restart the image from noise (optionally with a new seed)."""
        if seed is not None:
            RenderSettings().replace(seed=seed)
        with self._lock:
            self._pending["reset"] = seed
            self.generation += 1
        self._wake.set()

    def start_from(self, photo: torch.Tensor | None) -> None:
        """Restart the optimization from ``photo`` (1x3xHxW in [0, 1]; the canvas takes its
        aspect ratio with the longest side at the current size), or from noise with None."""
        if photo is not None and (not isinstance(photo, torch.Tensor) or photo.dim() != 4 or photo.shape[:2] != (1, 3)):
            raise InvalidSettingError("start_from needs a 1x3xHxW image tensor in [0, 1], or None for noise.")
        with self._lock:
            self._pending["photo"] = None if photo is None else photo.detach().cpu()
            self.generation += 1
        self._wake.set()

    def pause(self) -> None:
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()
        if not self.is_running:
            self.start()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_running:
            return
        self._stop.clear()
        release_idle_openmp_threads()  # the worker's OpenMP team then runs at full speed (engine/openmp.py)
        self._thread = threading.Thread(target=self._run, name=f"featviz-live-{id(self):x}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (the image is kept; ``start()`` continues)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.status["state"] = "stopped"

    def close(self) -> None:
        """Stop and free the model, the image and (on CUDA) cached GPU memory."""
        self.stop()
        device = self.model.device if self.model is not None else None
        self.renderer = None
        self.model = None  # type: ignore[assignment]
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()
        _RUNNERS.discard(self)

    # --- the worker ---------------------------------------------------------------------------
    def image(self) -> np.ndarray | None:
        """The current images as (N, H, W, 3) uint8, or None before the first step."""
        r = self.renderer
        return None if r is None else to_uint8(r.image())

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if self.renderer is None:
            self.renderer = Renderer(self.model, self.target.objective(self.channels_for(self.target)), self.settings)
        r = self.renderer
        if not pending:
            return
        try:
            if "settings" in pending:
                r.update(keep_image=True, **pending["settings"])
                self.settings = r.settings
            if "target" in pending:
                target, keep = pending["target"]
                r.set_objective(target.objective(self.channels_for(target)), keep_image=keep)
                self.target = target
                self.history.clear()
            if "photo" in pending:
                photo = pending["photo"]
                side = r.settings.side
                r.set_init_image(photo)
                size = side if photo is None else _fit(photo.shape[-2:], side, minimum=16)
                r.update(keep_image=False, size=size)
                r.reset()
                self.settings = r.settings
                self.history.clear()
                self.timelapse.clear()
            if "reset" in pending:
                r.reset(seed=pending["reset"])
                self.settings = r.settings
                self.history.clear()
                self.timelapse.clear()
            self.changed_since_reset = "reset" not in pending or len(pending) > 1
            self.status["error"] = ""
        except FeatvizError as exc:  # validated on set(), but the model may disagree: keep going
            self.status["error"] = str(exc)

    def channels_for(self, target: Target) -> int:
        """The layer's channel count, which only a random direction needs to be built."""
        return layer_info(self.model, target.layer).channels if target.mode == "direction" else 0

    def _run(self) -> None:
        if self.model.device.type == "cpu":
            torch.set_num_threads(cpu_threads())
        rate_window: deque[float] = deque(maxlen=20)
        last_push = 0.0
        while not self._stop.is_set():
            try:
                self._apply_pending()
                if self._paused:
                    announce = self.status["state"] != "paused"
                    self.status.update(state="paused")
                    if not self._publish_png() and announce:
                        self._safe_status()
                    self._wake.wait(0.1)
                    self._wake.clear()
                    continue
                if self.sink.abandoned():  # its views are gone (cell re-run or cleared)
                    self._paused = True
                    self.status["warning"] = "Paused: no view of this widget is left on screen."
                    continue
                assert self.renderer is not None
                t0 = time.perf_counter()
                info = self.renderer.step()
                rate_window.append(time.perf_counter() - t0)
                self.history.append(info.objective)
                if info.step % self.timelapse_every == 0:
                    self.timelapse.append(_thumbnail(self.renderer))
                self.status.update(
                    step=info.step,
                    objective=info.objective,
                    state="running",
                    steps_per_s=len(rate_window) / max(sum(rate_window), 1e-9),
                )
                if info.warning:
                    self.status["warning"] = info.warning
                now = time.perf_counter()
                if now - last_push >= 1.0 / self.fps:
                    last_push = now
                    if self.sink.ready():
                        # Converged ("quiet"): an occasional lossless frame instead of JPEG.
                        quiet = now - self._last_png_time > 2.0 and is_quiet(self.history)
                        if quiet:
                            self._last_png_time = now
                        self._publish("png" if quiet else "jpeg")
                    else:  # no frame now (back-pressure, hidden), but keep the status line live
                        self._safe_status()
            except torch.OutOfMemoryError:
                self._out_of_memory()
            except Exception as exc:  # the loop must survive anything a step can throw
                self.last_error = traceback.format_exc()
                self.status.update(error=f"{type(exc).__name__}: {exc}", state="error")
                self._safe_status()
                if self._stop.wait(0.5):
                    break
        self.status["state"] = "stopped"
        self._safe_status()

    def _out_of_memory(self) -> None:
        """Out of device memory: halve the image (keeping the picture), down to 32 px, and say so."""
        r = self.renderer
        side = r.halve_size(minimum=32) if r is not None else None
        if side is None:
            if r is None and self.model.device.type == "cuda":
                torch.cuda.empty_cache()  # (halve_size has freed it otherwise)
            self.status.update(error="Out of memory even at 32 px: close other widgets or use the CPU.", state="error")
            self._paused = True
            self._safe_status()
            return
        assert r is not None
        self.settings = r.settings
        self.status["warning"] = f"Out of {self.model.device.type} memory at {side} px: continuing at {side // 2} px."
        self._safe_status()

    def _publish(self, fmt: str) -> None:
        assert self.renderer is not None
        images = to_uint8(self.renderer.image())
        grid = tile(images)
        data = encode(grid, fmt)
        frame = Frame(data, f"image/{fmt}", grid.shape[1], grid.shape[0], self.renderer.step_count)
        self._frames_sent += 1
        self._last_frame_step = frame.step
        self.sink.publish(frame, dict(self.status))

    def _publish_png(self) -> bool:
        """Once per pause: the lossless picture of where the optimization stopped."""
        r = self.renderer
        if r is None or self._png_sent_for == (r.step_count, self.generation) or not self.sink.ready():
            return False
        self._png_sent_for = (r.step_count, self.generation)
        self._publish("png")
        return True

    def _safe_status(self) -> None:
        try:
            self.sink.publish(None, dict(self.status))
        except Exception:  # a closed view must not kill the worker
            self.last_error = traceback.format_exc()


def _thumbnail(renderer: Renderer, side: int = 160) -> np.ndarray:
    """The current image (or grid) shrunk to at most ``side`` pixels, as uint8 HxWx3."""
    img = renderer.image()
    if max(img.shape[-2:]) > side:
        img = torch.nn.functional.interpolate(
            img, _fit(img.shape[-2:], side), mode="bilinear", align_corners=False, antialias=True
        )
    return tile(to_uint8(img))


def _fit(shape: tuple[int, int] | torch.Size, side: int, minimum: int = 1) -> tuple[int, int]:
    """(height, width) scaled so the longest side is ``side``, each at least ``minimum``."""
    h, w = shape
    scale = side / max(h, w)
    return max(minimum, round(h * scale)), max(minimum, round(w * scale))
