"""When the live objective has converged, so the loop can stop stepping ("settled").

With random transforms the objective jumps from step to step (its standard deviation on Lite0
at 128 px is ~8% of its value), so no single step says anything. What does: the mean over a
window of steps against the mean over the window before. Measured on Lite0 at the widget's
defaults (docs/decisions.md, "settling"): the objective of blocks.8:0 and blocks.2:3 rises for
~600 steps and then moves less than 1-2% per 200 steps, while the colours keep saturating slowly
(a default run left for 14,000 steps ended dark and magenta). Settling stops that drift.
"""

from __future__ import annotations

from collections import deque


class Settle:
    """``update(value)`` after each step; True once the mean of the last ``window`` values rose
    less than ``tolerance`` (relative) over the mean of the window before."""

    def __init__(self, window: int = 200, tolerance: float = 0.02) -> None:
        self.window = int(window)
        self.tolerance = float(tolerance)
        self._values: deque[float] = deque(maxlen=2 * self.window)
        self._older = 0.0  # sum of the older window
        self._newer = 0.0  # sum of the newer window
        self.settled = False

    def reset(self) -> None:
        self._values.clear()
        self._older = self._newer = 0.0
        self.settled = False

    def update(self, value: float) -> bool:
        values, w = self._values, self.window
        if len(values) == 2 * w:
            self._older -= values[0]
        if len(values) >= w:
            moved = values[-w]  # leaves the newer window for the older one
            self._newer -= moved
            self._older += moved
        values.append(value)
        self._newer += value
        if len(values) == 2 * w and not self.settled:
            newer, older = self._newer / w, self._older / w
            self.settled = newer - older < self.tolerance * max(abs(newer), 1e-6)
        return self.settled
