"""Which live widgets are open in this process, and which notebook cell made each: re-running a
cell closes the widget that cell made before (JupyterLab tags each execute request with its cell
id), and ``stop_all`` closes every one. Knows nothing of the Dreamer but ``close()``."""

from __future__ import annotations

import weakref
from typing import Protocol


class Closable(Protocol):
    def close(self) -> None: ...


_OPEN: weakref.WeakSet[Closable] = weakref.WeakSet()
_BY_CELL: dict[str, weakref.ReferenceType[Closable]] = {}


def current_cell_id() -> str | None:
    """JupyterLab tags each execute request with its cell id; None elsewhere."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        parent = ip.kernel.get_parent() if ip is not None and hasattr(ip, "kernel") else None
    except Exception:
        return None
    if not parent:
        return None
    cell = (parent.get("metadata") or {}).get("cellId")
    return str(cell) if cell else None


def opened(widget: Closable, replace_same_cell: bool) -> None:
    """Count ``widget`` as open; with ``replace_same_cell``, close the one the running cell made
    before (one per cell)."""
    _OPEN.add(widget)
    cell = current_cell_id()
    if replace_same_cell and cell is not None:
        old = _BY_CELL.get(cell)
        before = old() if old is not None else None
        if before is not None and before is not widget:
            before.close()
        _BY_CELL[cell] = weakref.ref(widget)


def closed(widget: Closable) -> None:
    _OPEN.discard(widget)


def open_widgets() -> list[Closable]:
    """The widgets open in this process (created and not closed)."""
    return list(_OPEN)


def stop_all() -> int:
    """Close every Dreamer in this process (their loops stop, memory is freed)."""
    alive = open_widgets()
    for d in alive:
        d.close()
    from ..runner import stop_all as stop_runners

    return len(alive) + stop_runners()
