"""The atlas on disk: tiles as PNG (with their settings, as ``export.save_png`` writes them),
one record per finished chunk, and the manifest.

    DIR/atlas.json                              the manifest: model, settings, layers (the latest run)
    DIR/tiles/KEY/LAYER/UNIT.png                a tile; KEY names (model, settings)
    DIR/chunks/KEY/LAYER/START-STOP.json        written after the chunk's tiles: the chunk is done

Every file is written to a temporary name in its folder and renamed into place, so a killed
run leaves whole files or none. A chunk counts as done only once its record exists, and its
record is written after all its tiles: a resumed run renders exactly the chunks without one.
The driver is the only writer (Ray tasks return pixels), so a retried task rewrites the same
bytes under the same names at worst.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..export import save_png
from .errors import AtlasStorageError
from .plan import Chunk, slug
from .work import ChunkResult


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "it is not writable"
    return exc.strerror or str(exc)


def atomic_write(path: Path, write: Callable[[Path], Any], durable: bool = True) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it onto ``path`` (after an
    fsync when ``durable``: tiles and records; the site's pages are rebuilt by every run)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise AtlasStorageError(
            f"Cannot write the atlas file {str(path)!r}: {_why(exc)}. Finished tiles are kept; "
            "fix the folder and run the same command again to resume."
        ) from exc
    tmp = Path(name)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AtlasStorageError(
            f"Cannot write the atlas file {str(path)!r}: {_why(exc)}. Finished tiles are kept; "
            "fix the folder and run the same command again to resume."
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable)


class AtlasStore:
    """One atlas folder. ``check()`` it first: a file, or a folder that cannot be written, is
    refused with a clear error before any rendering starts."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def check(self) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise AtlasStorageError(f"--out {str(root)!r} is a file; give a folder (new or an earlier atlas's).")
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise AtlasStorageError(f"Cannot write the atlas folder {str(root)!r}: {_why(exc)}.") from exc

    # --- paths --------------------------------------------------------------------------------
    def tile_path(self, key: str, layer: str, unit: int) -> Path:
        return self.root / "tiles" / key / slug(layer) / f"{unit}.png"

    def chunk_path(self, key: str, chunk: Chunk) -> Path:
        return self.root / "chunks" / key / slug(chunk.layer) / f"{chunk.name}.json"

    # --- chunks -------------------------------------------------------------------------------
    def is_done(self, key: str, chunk: Chunk) -> bool:
        if not self.chunk_path(key, chunk).is_file():
            return False
        return all(self.tile_path(key, chunk.layer, u).is_file() for u in chunk.units)

    def chunk_record(self, key: str, chunk: Chunk) -> dict[str, Any]:
        return dict(json.loads(self.chunk_path(key, chunk).read_text(encoding="utf-8")))

    def write_chunk(self, key: str, result: ChunkResult, tile_settings: Callable[[int], dict[str, Any]]) -> None:
        """The chunk's tiles (each atomically), then its record."""
        chunk = result.chunk
        for i, unit in enumerate(chunk.units):
            image = Image.fromarray(result.images[i], "RGB")
            settings = tile_settings(unit)
            self._write_png(self.tile_path(key, chunk.layer, unit), image, settings)
        record = {
            "layer": chunk.layer,
            "kind": chunk.kind,
            "start": chunk.start,
            "stop": chunk.stop,
            "values": result.values,
            "seconds": result.seconds,
            "record": result.record,
        }
        write_text(self.chunk_path(key, chunk), json.dumps(record, sort_keys=True))

    def _write_png(self, path: Path, image: Image.Image, settings: dict[str, Any]) -> None:
        atomic_write(path, lambda tmp: save_png(image, tmp, settings))

    # --- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "atlas.json"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))

    def read_manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest_path.read_text(encoding="utf-8")))
