"""The runner layer: the worker thread, its settings and the frames it produces (no widgets)."""

from .live import Frame, FrameSink, LiveRunner, stop_all
from .target import Target

__all__ = ["Frame", "FrameSink", "LiveRunner", "Target", "stop_all"]
