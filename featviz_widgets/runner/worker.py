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
from collections import deque
from dataclasses import replace

import torch

from ..engine import FeatvizModel, Objective, Renderer
from ..engine.core import Timelapse, to_uint8
from ..errors import FeatvizError
from .changes import Change, Effect, Load, SetTarget, StartFrom, Truth, effect
from .publish import UNSEEN, Publisher, Snapshot, thumbnail
from .recording import PhotoStart, Recording
from .settle import Settle
from .target import Target

__all__ = ["Worker", "cpu_threads"]


def cpu_threads() -> int:
    """Intra-op threads for the CPU worker: all cores but one, which stays with the kernel."""
    return max(1, (os.cpu_count() or 2) - 1)


class Worker:
    """The worker thread's half of a ``LiveRunner`` (its base class; the kernel thread's half is
    live.py): the loop, and all it does between two steps. ``LiveRunner.__init__`` sets up the
    state declared here, which the two halves share."""

    model: FeatvizModel
    settle: Settle
    timelapse: Timelapse
    recording: Recording
    renderer: Renderer | None
    last_error: str | None
    _lock: threading.RLock
    _generation: int
    _wake: threading.Event
    _stop: threading.Event
    _paused: bool
    _unseen: bool
    _holds: int
    _queue: list[Change]
    _truth: Truth
    _start_objective: Objective
    _photo: PhotoStart | None
    _history: deque[float]
    _out: Publisher
    _error: str
    _warning: str
    _step_times: deque[float]

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
