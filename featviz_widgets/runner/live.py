"""``LiveRunner``: a live view's calls on the kernel thread (validate a change against the truth,
store it, queue it, wake the worker; pause, resume, hold; read snapshots, ``code()``; start, stop,
close), and ``stop_all``. Its worker thread, and the flow control between the two, are worker.py's:
read its notes before changing anything here."""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..engine import FeatvizModel, RenderSettings
from ..engine.core import Timelapse, release_idle_openmp_threads
from ..engine.models import load_code, load_code_note
from ..errors import FeatvizError, InvalidSettingError
from .changes import Change, Truth, Unsettle
from .publish import Frame, FrameSink, Publisher, Snapshot
from .recording import PhotoStart, Recording
from .settle import Settle
from .target import Target
from .worker import Worker, cpu_threads

__all__ = ["Frame", "FrameSink", "LiveRunner", "Snapshot", "cpu_threads", "stop_all"]

_RUNNERS: weakref.WeakSet[LiveRunner] = weakref.WeakSet()


def stop_all() -> int:
    """Stop every live loop in this process; returns how many were running."""
    running = [r for r in list(_RUNNERS) if r.is_running]
    for r in running:
        r.stop()
    return len(running)


class LiveRunner(Worker):
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
        settle: Settle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (0 < fps <= 60):
            raise InvalidSettingError(f"fps must be in (0, 60], got {fps!r}.")
        self.model = model
        self.keep_image = True  # warm start when the target changes
        self.last_error = None
        self.settle = settle if settle is not None else Settle()
        self.timelapse = Timelapse()
        self._lock = threading.RLock()  # the worker's publish may call back into code()
        self._generation = 0  # changes applied so far: a paused loop shows each one
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = False
        self._unseen = False  # paused by itself because no view was left (not by the user)
        self._holds = 0
        self._queue = []
        self._thread: threading.Thread | None = None
        self._truth = Truth(model, settings, target)  # validated here, like every change after
        self._start_objective = self._truth.objective  # the worker's Renderer starts with it
        self._photo = None
        self.recording = Recording(settings, target)
        self.renderer = None  # the worker's; never used from another thread
        self._history = deque(maxlen=history)
        start = Snapshot(None, 0, settings, target, "starting", None, 0.0, str(model.device))
        self._out = Publisher(sink, start, float(fps), clock, self._send_failed)
        self._error = self._warning = ""
        self._step_times = deque(maxlen=20)  # seconds of the last steps (steps/s)
        _RUNNERS.add(self)

    # --- the truth, and changes to it (kernel thread): validate, store, queue, wake ----------
    @property
    def settings(self) -> RenderSettings:
        """The settings the image is being made with (the latest accepted)."""
        return self._truth.settings

    @property
    def target(self) -> Target:
        return self._truth.target

    def channels_for(self, target: Target) -> int:
        """The layer's channel count, which only a random direction needs to be built."""
        return self._truth.channels_for(target)

    def check(self, settings: RenderSettings, target: Target) -> None:
        """Raise what ``load(settings, target)`` would raise, changing nothing (the objective
        against the model, and the memory a step needs against the device's)."""
        self._truth.objective_for(target, settings)

    def _queue_change(self, change: Change | None) -> None:
        if change is not None:
            self._queue.append(change)
            self._wake.set()

    def set(self, **changes: Any) -> None:
        """Change render settings (``lr``, ``l1``, ``tv``, ``blur``, ``transform_strength``,
        ``size``, ``seed``, ``batch``...). Validated now; applied by the worker before its next
        step. Raises InvalidSettingError (or ChannelRangeError), leaving everything as it was."""
        with self._lock:
            self._queue_change(self._truth.set(**changes))

    def set_target(self, target: Target, keep_image: bool | None = None) -> None:
        """Optimize for a new target (validated now, applied before the next step)."""
        keep = self.keep_image if keep_image is None else keep_image
        with self._lock:
            self._queue_change(self._truth.set_target(target, keep))

    def reset(self, seed: int | None = None) -> None:
        """Restart the image from its start (noise, or the photo it started from), optionally
        with a new seed."""
        with self._lock:
            self._queue_change(self._truth.reset(seed))

    def start_from(self, photo: torch.Tensor | None, source: PhotoStart | None = None) -> None:
        """Restart from ``photo`` (1x3xHxW in [0, 1]; the canvas takes its aspect ratio with the
        longest side at the current size), or from noise with None. ``source`` says where the
        photo came from, so ``code()`` can load it again."""
        with self._lock:
            self._queue_change(self._truth.start_from(photo, source))

    def load(
        self,
        settings: RenderSettings,
        target: Target,
        photo: torch.Tensor | None = None,
        source: PhotoStart | None = None,
    ) -> None:
        """Take ``settings`` and ``target`` together (all or nothing) and restart, from ``photo``
        when given (``source`` says where it came from, for ``code()``), else from the seed."""
        with self._lock:
            self._queue_change(self._truth.load(settings, target, photo, source))

    def pause(self) -> None:
        self._paused = True
        self._unseen = False
        self._wake.set()

    def show_transparency(self, on: bool) -> None:
        """Frames fade the pixels the objective's gradient touched least (``transparency_overlay``);
        the picture itself, saves and code are unchanged. A paused loop shows it at once."""
        with self._lock:
            self._out.transparency = bool(on)
            self._out.resend_png()  # an idle loop sends the next frame
        self._wake.set()

    def resume(self) -> None:
        """Run again: after a pause, and after settling (it then makes more steps). Always:
        a loop that paused itself for want of a view runs again too."""
        self._out.sink.revive()
        self._paused = self._unseen = False
        self._queue_change(Unsettle())
        if not self.is_running:
            self.start()

    @contextmanager
    def held(self) -> Iterator[None]:
        """No steps while a job uses the machine (state 'busy'); the loop resumes after."""
        with self._lock:
            self._holds += 1
        self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
            self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def sink(self) -> FrameSink:
        return self._out.sink

    @property
    def fps(self) -> float:
        return self._out.fps

    @property
    def clock(self) -> Callable[[], float]:
        return self._out.clock

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- reading (any thread) -------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._out.snapshot

    def image(self) -> np.ndarray | None:
        """The current images as (N, H, W, 3) uint8, or None before the first step."""
        return self._out.snapshot.images

    def code(self) -> str:
        """The Python that reproduces the current image exactly (same thread count)."""
        with self._lock:
            snap = self._out.snapshot
            if snap.images is None:
                raise FeatvizError("No image yet: the optimization has not made a step.")
            rec = Recording(self.recording.settings, self.recording.target, self.recording.photo)
            rec.events = [e for e in self.recording.events if e[0] <= snap.step]
        threads = cpu_threads() if self.model.device.type == "cpu" else None
        return rec.code(load_code(self.model), snap.step, self.channels_for, threads, load_code_note(self.model))

    def timelapse_gif(self, fps: float = 12.0) -> bytes:
        with self._lock:
            return self.timelapse.to_gif(fps)

    def wait_for_steps(self, steps: int, timeout: float = 30.0) -> bool:
        """Block until the snapshot shows ``steps`` steps (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._out.snapshot.step >= steps:
                return True
            time.sleep(0.02)
        return False

    # --- thread control -----------------------------------------------------------------------
    def start(self) -> None:
        if self.is_running:
            return
        self._stop.clear()
        release_idle_openmp_threads()  # the worker's OpenMP team then runs at full speed (engine/core/runtime.py)
        self._thread = threading.Thread(target=self._run, name=f"featviz-live-{id(self):x}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (the image is kept; ``start()`` continues)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._out.snapshot = replace(self._out.snapshot, state="stopped")

    def close(self) -> None:
        """Stop and free the model, the image and (on CUDA) cached GPU memory."""
        self.stop()
        device = self.model.device if self.model is not None else None
        self.renderer = None
        self.model = None  # type: ignore[assignment]
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()
        _RUNNERS.discard(self)
