"""Rebuild featviz_widgets/data/maco_spectrum.npz, MaCo's magnitude spectrum, from the probe photos
the package installs (featviz_widgets/data/*.jpg; provenance in docs/parameterizations.md):
``PYTHONPATH=. python scripts/build_maco_spectrum.py``."""

from pathlib import Path

from featviz_widgets.engine.image.maco import SPECTRUM_FILE, write_shipped_spectrum

if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "featviz_widgets" / "data" / SPECTRUM_FILE
    write_shipped_spectrum(target)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
