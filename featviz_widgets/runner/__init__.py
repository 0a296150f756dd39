"""The runner layer: the worker thread, its settings, jobs, snapshots and frames (no widgets)."""

from .frames import encode, labelled_grid
from .jobs import Job
from .live import LiveRunner, stop_all
from .publish import Frame, FrameSink, Snapshot
from .recording import PhotoStart, Recording
from .saved import read_saved
from .target import MODES, Target
from .worker import cpu_threads

__all__ = [
    "MODES",
    "Frame",
    "FrameSink",
    "Job",
    "LiveRunner",
    "PhotoStart",
    "Recording",
    "Snapshot",
    "Target",
    "cpu_threads",
    "encode",
    "labelled_grid",
    "read_saved",
    "stop_all",
]
