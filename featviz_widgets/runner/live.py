"""The live loop: one worker thread per view drives a Renderer and publishes snapshots.

Flow control (read this before changing anything here):

* The runner owns the truth (``changes.Truth``): one validated ``RenderSettings``, one ``Target``
  and its objective, built once. ``set()``, ``set_target()``, ``reset()``, ``start_from()`` and
  ``load()`` validate a change once, against that truth, on the caller's (kernel) thread, store
  the new truth, queue the change as a typed record (``changes.py``: ``SetSettings``,
  ``SetTarget`` carrying the built objective, ...) and wake the worker. O(1), and a refusal
  changes nothing.
* The worker thread is the only user of the Renderer. Before every step it applies the queued
  records in order: ``changes.effect`` says what each does to the image (restart, rebuild, warm
  start, or a live change), the record's ``apply_to`` does it, and the runner records it at its
  step for ``code()``. Then it steps, unless the user paused it, a job holds it (``held()``), or
  the objective has settled (``settle.py``): then it waits on its wake event without using the
  CPU. Any change or ``resume()`` wakes it.
* After each applied change, and at most ``fps`` times a second while running, the worker
  publishes a ``Snapshot`` (images, step, settings, target, state, history) through its
  ``publish.Publisher``. The kernel thread reads snapshots only; it never touches the Renderer.
* Frames go out through a ``FrameSink`` only when it says it can take one (the browser has
  acknowledged all but at most 2 frames and some view is visible); otherwise only the status.
  JPEG while running; one lossless PNG when the loop stops stepping (paused, busy, settled).
* Any exception inside a step is caught: it goes to the snapshot's ``error`` and
  ``last_error`` (the traceback), the image is kept, and the loop keeps serving.
* When every browser view of the widget is gone for a few seconds, the sink reports
  ``abandoned()`` and the loop pauses itself, saying so: nothing runs that nobody sees. It runs
  again by itself when a view speaks again, and whenever the user asks (``resume()`` tells the
  sink through ``revive()``); the note goes with the pause.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..engine import FeatvizModel, Renderer, RenderSettings
from ..engine.core.renderer import to_uint8
from ..engine.core.runtime import release_idle_openmp_threads
from ..engine.core.timelapse import Timelapse
from ..engine.models import load_code, load_code_note
from ..errors import FeatvizError, InvalidSettingError
from .changes import Change, Effect, Load, SetTarget, StartFrom, Truth, Unsettle, effect
from .publish import UNSEEN, Frame, FrameSink, Publisher, Snapshot, thumbnail
from .recording import PhotoStart, Recording
from .settle import Settle
from .target import Target

__all__ = ["Frame", "FrameSink", "LiveRunner", "Snapshot", "cpu_threads", "stop_all"]

_RUNNERS: weakref.WeakSet[LiveRunner] = weakref.WeakSet()


def stop_all() -> int:
    """Stop every live loop in this process; returns how many were running."""
    running = [r for r in list(_RUNNERS) if r.is_running]
    for r in running:
        r.stop()
    return len(running)


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
        settle: Settle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (0 < fps <= 60):
            raise InvalidSettingError(f"fps must be in (0, 60], got {fps!r}.")
        self.model = model
        self.keep_image = True  # warm start when the target changes
        self.last_error: str | None = None
        self.settle = settle if settle is not None else Settle()
        self.timelapse = Timelapse()
        self._lock = threading.RLock()  # the worker's publish may call back into code()
        self._generation = 0  # changes applied so far: a paused loop shows each one
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = False
        self._unseen = False  # paused by itself because no view was left (not by the user)
        self._holds = 0
        self._queue: list[Change] = []
        self._thread: threading.Thread | None = None
        self._truth = Truth(model, settings, target)  # validated here, like every change after
        self._start_objective = self._truth.objective  # the worker's Renderer starts with it
        self._photo: PhotoStart | None = None
        self.recording = Recording(settings, target)
        self.renderer: Renderer | None = None  # the worker's; never used from another thread
        self._history: deque[float] = deque(maxlen=history)
        start = Snapshot(None, 0, settings, target, "starting", None, 0.0, str(model.device))
        self._out = Publisher(sink, start, float(fps), clock, self._send_failed)
        self._error = self._warning = ""
        self._step_times: deque[float] = deque(maxlen=20)  # seconds of the last steps (steps/s)
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

    # --- the worker ---------------------------------------------------------------------------
    def _apply_queue(self) -> bool:
        """Apply the queued changes in order (recording each); True when any was applied."""
        with self._lock:
            queue, self._queue = self._queue, []
            if self.renderer is None:
                self.renderer = Renderer(self.model, self._start_objective, self.recording.settings)
            if not queue:
                return False
            r = self.renderer
            self._generation += 1
            self.settle.reset()  # any change wakes a settled loop
            try:
                for change in queue:
                    self._apply(r, change)
                self._error = ""
            except FeatvizError as exc:  # validated on the way in, but the model may disagree
                self._error = str(exc)
                self._truth.revert(r.settings, self.recording.current_target, r.objective)
            state = self._state()  # show the change at once (a stopped loop shows it from _idle)
            self._publish_snapshot(state, frame="jpeg" if state in ("running", "error") else "status")
        return True

    def _apply(self, r: Renderer, change: Change) -> None:
        """One change: what it does decided by ``effect``, done by the record, recorded here."""
        what = effect(change, r.settings)
        change.apply_to(r, what)
        if isinstance(change, (StartFrom, Load)):
            self._photo = change.source
        if what is Effect.RESTART:
            self._restarted(r, change.target if isinstance(change, (SetTarget, Load)) else None)
        elif what is Effect.WARM:
            assert isinstance(change, SetTarget)
            self.settle.reset()
            self._history.clear()
            self.recording.target_changed(r.step_count, change.target)
        elif what is Effect.NOTHING:
            self.settle.reset()
        else:  # LIVE or REBUILD
            self.recording.settings_changed(r.step_count, r.settings)

    def _restarted(self, r: Renderer, target: Target | None = None) -> None:
        self.recording.restart(r.settings, target or self.recording.current_target, self._photo)
        self.settle.reset()
        self._history.clear()
        self.timelapse.clear()

    def _state(self) -> str:
        if self._paused:
            return "paused"
        if self._holds:
            return "busy"
        if self.settle.settled:
            return "settled"
        return "error" if self._error else "running"

    def _run(self) -> None:
        if self.model.device.type == "cpu":
            torch.set_num_threads(cpu_threads())
        while not self._stop.is_set():
            try:
                self._apply_queue()
                self._check_views()
                state = self._state()
                if state in ("paused", "busy", "settled"):
                    self._idle(state)
                    continue
                self._step()
            except torch.OutOfMemoryError:
                self._out_of_memory()
            except Exception as exc:  # the loop must survive anything a step can throw
                self.last_error = traceback.format_exc()
                self._error = f"{type(exc).__name__}: {exc}"
                self._publish_snapshot("error", frame="status")
                if self._stop.wait(0.5):
                    break
        self._out.snapshot = replace(self._out.snapshot, state="stopped")
        self._out.send(None)

    def _check_views(self) -> None:
        """Pause when every view is gone (cell re-run or cleared, tab closed); run again by
        itself when one is back."""
        gone = self._out.sink.abandoned()
        if self._paused and not self._unseen:
            return  # the user's pause: theirs to end
        if gone and not self._paused:
            self._paused = self._unseen = True
        elif not gone and self._unseen:
            self._paused = self._unseen = False

    def _idle(self, state: str) -> None:
        """Not stepping: publish the state (and one lossless frame), then sleep until woken."""
        if not self._out.png_sent(state, self._generation):
            self._publish_snapshot(state, frame="png")
        self._wake.wait(1.0)
        self._wake.clear()

    def _step(self) -> None:
        r = self.renderer
        assert r is not None
        t0 = time.perf_counter()
        info = r.step()
        self._step_times.append(time.perf_counter() - t0)
        self._history.append(info.objective)
        if info.warning:
            self._warning = info.warning
        settled = self.settle.update(info.objective)
        if self.timelapse.due(info.step) or info.step % 8 == 0:  # (every 8th: the film ends near now)
            self.timelapse.add(info.step, thumbnail(r))
        if self._out.due(now_anyway=settled):
            self._publish_snapshot("settled" if settled else "running", frame="png" if settled else "jpeg")

    def _publish_snapshot(self, state: str, frame: str = "status") -> None:
        """Refresh the snapshot from the renderer; send it (with a frame when the sink can take one)."""
        r = self.renderer
        rate = self._step_times
        snapshot = Snapshot(
            images=to_uint8(r.image()) if r is not None else None,
            step=r.step_count if r is not None else 0,
            settings=r.settings if r is not None else self._truth.settings,
            target=self.recording.current_target,
            state=state,
            objective=self._history[-1] if self._history else None,
            steps_per_s=len(rate) / max(sum(rate), 1e-9) if rate else 0.0,
            device=str(self.model.device),
            error=self._error,
            warning=UNSEEN if self._unseen and self._paused else self._warning,
            history=tuple(self._history),
            paused=self._paused,
        )
        self._out.publish(snapshot, r, frame, self._generation)

    def _send_failed(self, trace: str) -> None:
        self.last_error = trace

    def _out_of_memory(self) -> None:
        """Out of device memory: halve the image (keeping the picture), down to 32 px, and say so."""
        r = self.renderer
        side = r.halve_size(minimum=32) if r is not None else None
        if side is None:
            if r is None and self.model.device.type == "cuda":
                torch.cuda.empty_cache()  # (halve_size has freed it otherwise)
            self._error = "Out of memory even at 32 px: close other widgets or use the CPU."
            self._paused = True
            self._publish_snapshot("paused")
            return
        assert r is not None
        with self._lock:
            self._truth.settings = r.settings
            self.recording.settings_changed(r.step_count, r.settings)
            self._warning = f"Out of {self.model.device.type} memory at {side} px: continuing at {side // 2} px."
            self._publish_snapshot(self._state())
