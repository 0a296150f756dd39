"""Jobs: heavy one-off work (galleries, comparisons, exemplar search, photo dreams) on its own
thread beside a live loop.

One job at a time per runner. While it runs the live loop is held (state "busy": no steps, so
the two do not fight over the cores) and resumes by itself after, whatever the job did; the
user's own Run/Pause choice is untouched. Progress and errors go to callbacks the view gives;
a ``FeatvizError`` is shown as it is, anything else with its type and the traceback kept.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from ..engine.core import release_idle_openmp_threads
from ..errors import FeatvizError
from .live import LiveRunner


class Job:
    def __init__(
        self,
        runner: LiveRunner,
        on_progress: Callable[[str, int, int], None],
        on_error: Callable[[str, str], None],
        on_finish: Callable[[str], None],
    ) -> None:
        self.runner = runner
        self.on_progress = on_progress
        self.on_error = on_error
        self.on_finish = on_finish
        self.thread: threading.Thread | None = None
        self.cancel = threading.Event()
        self.last_error: str | None = None
        self.name = ""

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def progress(self, done: int, total: int) -> None:
        self.on_progress(self.name, min(done, total), max(total, 1))

    def start(self, name: str, work: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Run ``work()`` on a thread and hand its result to ``done`` (on that thread); False
        (and an error naming the running job) when one is still running."""
        if self.busy:
            self.on_error(name, f"Still busy with '{self.name}'; wait for it before '{name}'.")
            return False
        self.name = name
        self.cancel.clear()
        self.on_progress(name, 0, 1)

        def body() -> None:
            with self.runner.held():
                try:
                    done(work())
                except InterruptedError:
                    pass
                except FeatvizError as exc:
                    self.on_error(name, str(exc))
                except Exception as exc:  # keep the widget alive; the traceback stays available
                    self.last_error = traceback.format_exc()
                    self.on_error(name, f"{name} failed: {type(exc).__name__}: {exc} (details in .last_error)")
                finally:
                    self.on_finish(name)

        release_idle_openmp_threads()  # see engine/core/runtime.py: the job's OpenMP team runs at full speed
        self.thread = threading.Thread(target=body, name=f"featviz-job-{name}", daemon=True)
        self.thread.start()
        return True

    def wait(self, timeout: float = 120.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def stop(self) -> None:
        self.cancel.set()
        self.wait(10)
