"""The atlas's files: tiles, the records that vouch for them, the manifest, a lock.

    DIR/atlas.json                              the manifest: model, settings, layers (the latest run)
    DIR/tiles/KEY/LAYER/UNIT.png                a tile; KEY names (model, settings)
    DIR/chunks/KEY/LAYER/START-STOP.json        written after the chunk's tiles: the chunk is done
    DIR/exemplars/EXKEY/LAYER.json, LAYER/UNIT-I.jpg   a layer's natural exemplars (site.py)
    DIR/.atlas.lock                             held (flock) by the run writing the folder

Every file is written to a temporary name in its folder and renamed into place. A record
(a chunk's, a layer's exemplars) lists the SHA-256 of each file it covers and is written after
them; it counts only when it parses, says what it should and every file still has its hash.
So a truncated, emptied or replaced tile, or a damaged record, makes its chunk "not done": the
next run renders it again (``verified_record`` is the one check, used for every record).
The driver is the only writer (Ray tasks return pixels), and one run at a time holds the lock;
temp files a killed run left (``.*.tmp``) are swept when the next run takes the lock.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from ..export import save_png
from .errors import AtlasBusyError, AtlasStorageError
from .exemplars import ExemplarJob, ExemplarResult, Photos
from .plan import Chunk, slug
from .work import ChunkResult


def _save_jpeg(image: Image.Image, path: Path) -> None:
    image.save(path, format="JPEG", quality=88)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "it is not writable"
    return exc.strerror or str(exc)


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


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


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing, unreadable or not JSON (never an exception)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def verified_record(path: Path, expect: dict[str, Any], base: Path, names: list[str]) -> dict[str, Any] | None:
    """The record at ``path`` when it parses to an object holding ``expect``'s items and a
    ``files`` map from exactly ``names`` (files in ``base``) to the SHA-256 each file still
    has; else None. The one check for every record the atlas trusts."""
    record = read_json(path)
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in expect.items()):
        return None
    files = record.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(names):
        return None
    for name in names:
        if file_hash(base / name) != files[name]:
            return None
    return record


class AtlasStore:
    """One atlas folder. ``check()`` it first: a file, or a folder that cannot be written, is
    refused with a clear error before any rendering starts."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._done: dict[tuple[str, str, int, int], dict[str, Any] | None] = {}

    def check(self) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise AtlasStorageError(f"--out {str(root)!r} is a file; give a folder (new or an earlier atlas's).")
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise AtlasStorageError(f"Cannot write the atlas folder {str(root)!r}: {_why(exc)}.") from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for this run: a second run on it at the same time is refused with
        AtlasBusyError (the lock goes with the process, even when it is killed)."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one run at a time is then the user's care
            yield
            return
        path = self.root / ".atlas.lock"
        f = open(path, "a+")  # noqa: SIM115 - held for the whole run
        try:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "?"
                raise AtlasBusyError(
                    f"Another featviz atlas run (pid {holder}) is writing {str(self.root)!r}; wait for it to "
                    "finish (then the same command resumes what it left), or give another --out."
                ) from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield
        finally:
            f.close()  # releases the lock

    def sweep(self) -> int:
        """Remove the ``.*.tmp`` files a killed run left (only under the lock: they are no
        other run's). Returns how many."""
        n = 0
        for p in self.root.rglob(".*.tmp"):
            if p.is_file() and is_temp(p):
                p.unlink(missing_ok=True)
                n += 1
        return n

    # --- paths --------------------------------------------------------------------------------
    def tile_path(self, key: str, layer: str, unit: int) -> Path:
        return self.root / "tiles" / key / slug(layer) / f"{unit}.png"

    def chunk_path(self, key: str, chunk: Chunk) -> Path:
        return self.root / "chunks" / key / slug(chunk.layer) / f"{chunk.name}.json"

    # --- chunks -------------------------------------------------------------------------------
    def chunk_record(self, key: str, chunk: Chunk) -> dict[str, Any] | None:
        """The chunk's record when the chunk is done and every tile is intact, else None."""
        k = (key, chunk.layer, chunk.start, chunk.stop)
        if k not in self._done:
            expect = {"layer": chunk.layer, "kind": chunk.kind, "start": chunk.start, "stop": chunk.stop}
            base = self.tile_path(key, chunk.layer, 0).parent
            names = [f"{u}.png" for u in chunk.units]
            record = verified_record(self.chunk_path(key, chunk), expect, base, names)
            if record is not None:
                values = record.get("values")
                if not isinstance(values, list) or len(values) != len(chunk.units):
                    record = None
            self._done[k] = record
        return self._done[k]

    def is_done(self, key: str, chunk: Chunk) -> bool:
        return self.chunk_record(key, chunk) is not None

    def write_chunk(self, key: str, result: ChunkResult, tile_settings: Callable[[int], dict[str, Any]]) -> None:
        """The chunk's tiles (each atomically), then its record with their hashes."""
        chunk = result.chunk
        files = {}
        for i, unit in enumerate(chunk.units):
            image = Image.fromarray(result.images[i], "RGB")
            path = self.tile_path(key, chunk.layer, unit)
            self._write_png(path, image, tile_settings(unit))
            files[path.name] = file_hash(path)
        record = {
            "layer": chunk.layer,
            "kind": chunk.kind,
            "start": chunk.start,
            "stop": chunk.stop,
            "files": files,
            "values": result.values,
            "seconds": result.seconds,
            "record": result.record,
        }
        write_text(self.chunk_path(key, chunk), json.dumps(record, sort_keys=True))
        self._done[(key, chunk.layer, chunk.start, chunk.stop)] = record

    def _write_png(self, path: Path, image: Image.Image, settings: dict[str, Any]) -> None:
        atomic_write(path, lambda tmp: save_png(image, tmp, settings))

    # --- exemplars -----------------------------------------------------------------------------
    def exemplar_paths(self, ex_key: str, layer: str) -> tuple[Path, Path]:
        """A layer's exemplar record and the folder of its crops."""
        folder = self.root / "exemplars" / ex_key
        return folder / f"{slug(layer)}.json", folder / slug(layer)

    def exemplars(self, ex_key: str, job: ExemplarJob) -> dict[str, Any] | None:
        """The layer's verified exemplar record ({"units": [[item, ...] per unit]}), or None."""
        path, folder = self.exemplar_paths(ex_key, job.layer)
        record = read_json(path)
        units = record.get("units") if isinstance(record, dict) else None
        if not isinstance(units, list) or len(units) != job.units:
            return None
        try:
            names = [str(it["file"]) for items in units for it in items]
        except (TypeError, KeyError):
            return None
        if not all(re.fullmatch(r"\d+-\d+\.jpg", n) for n in names):
            return None
        expect = {"layer": job.layer, "kind": job.kind, "k": job.k}
        return verified_record(path, expect, folder, names)

    def write_exemplars(self, ex_key: str, result: ExemplarResult, photos: Photos) -> None:
        """The crops of every unit (JPEG, at most 256 px), then the layer's record."""
        job = result.job
        path, folder = self.exemplar_paths(ex_key, job.layer)
        files: dict[str, str | None] = {}
        units = []
        for unit in range(job.units):
            items = []
            for i, (p, box, score) in enumerate(result.items(unit)):
                name, img = photos[p]
                crop = (img if box == (0, 0, *img.size) else img.crop(box)).convert("RGB")
                crop.thumbnail((256, 256))
                file = folder / f"{unit}-{i}.jpg"
                atomic_write(file, functools.partial(_save_jpeg, crop))
                files[file.name] = file_hash(file)
                items.append({"file": file.name, "source": Path(name).name, "score": score, "box": list(box)})
            units.append(items)
        record = {"layer": job.layer, "kind": job.kind, "k": job.k, "files": files, "units": units}
        write_text(path, json.dumps(record, sort_keys=True))

    # --- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "atlas.json"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))

    def read_manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest_path.read_text(encoding="utf-8")))
