"""Are neurons special? Score neuron, random, PCA, NMF and k-means directions of EfficientNet-Lite0
at an early, a mid and a late layer on selectivity, exemplar coherence and a 2AFC, judged in
EfficientNet-Lite2's embedding (definitions: docs/directions.md), and print the table and the
answer it gives. ``--speed`` instead times the streaming pass over 1,000 synthesized 224 px images.

    .venv/bin/python benchmarks/bases.py [--layers blocks.2,blocks.8,blocks.14] [--k 4] [--seeds 0,1]
        [--steps 48] [--size 64] [--methods neuron,random,pca,nmf,kmeans] [--folder DIR] [--fit-folder DIR]
        [--max-images N] [--cossim 0]
    .venv/bin/python benchmarks/bases.py --speed [--images 1000] [--batch 16]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import warnings
from pathlib import Path

from featviz_widgets.engine import load_model
from featviz_widgets.engine.explore import collect, compare_bases, crop_boxes, probe_images
from featviz_widgets.engine.layers import layer_info


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthesize(folder: Path, n: int, side: int = 256) -> None:
    """``n`` JPEGs cut from the probe photos at several scales and offsets (flipped on odd rounds)."""
    photos = [img for _, img in probe_images()]
    i = 0
    while i < n:
        for img in photos:
            for box in crop_boxes(img.width, img.height, (1.0, 0.7, 0.5, 0.35, 0.25)):
                if i >= n:
                    return
                crop = img.crop(box).resize((side, side))
                if (i // 200) % 2:
                    crop = crop.transpose(0)  # mirror left-right
                crop.save(folder / f"{i:04d}.jpg", quality=90)
                i += 1


def speed(args: argparse.Namespace) -> None:
    model = load_model()
    layers = args.layers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp), args.images)
        collect(model, layers, Path(tmp), scales=(1.0,), input_size=224, max_images=args.batch)  # warm up
        before = maxrss_mb()
        got = collect(model, layers, Path(tmp), scales=(1.0,), input_size=224, batch_size=args.batch)
        after = maxrss_mb()
    kept = sum(t.numel() * 4 for d in (got.pooled, got.samples) for t in d.values()) / 1e6
    full = sum(got.n_crops * 4 * math.prod(layer_info(model, name).shape) for name in layers) / 1e6
    print(
        f"{got.n_images} images at 224 px, layers {', '.join(layers)}, batch {args.batch}: "
        f"{got.seconds:.1f} s, {got.n_images / got.seconds:.1f} images/s"
    )
    print(
        f"peak RSS {after:.0f} MB (before the pass {before:.0f} MB: +{after - before:.0f} MB); kept {kept:.1f} MB "
        f"(pooled + {sum(len(s) for s in got.samples.values())} sampled positions) instead of {full:.0f} MB of full activations"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="blocks.2,blocks.8,blocks.14")
    ap.add_argument("--methods", default="neuron,random,pca,nmf,kmeans")
    ap.add_argument("--k", type=int, default=4, help="directions of each method per layer and seed")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cossim", type=float, default=0.0, help="cossim_power of every Direction objective")
    ap.add_argument("--folder", help="probe photos (default: scikit-image's bundled photos)")
    ap.add_argument("--fit-folder", help="find the directions from these photos instead of the probe photos")
    ap.add_argument("--max-images", type=int, help="use only the first N probe photos (smoke runs)")
    ap.add_argument("--speed", action="store_true", help="time the streaming pass instead")
    ap.add_argument("--images", type=int, default=1000, help="--speed: images to synthesize")
    ap.add_argument("--batch", type=int, default=16, help="--speed: images a batch")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.speed:
        speed(args)
        return
    images = args.folder
    if args.max_images:
        images = [img for _, img in probe_images()[: args.max_images]] if not args.folder else images
    t0 = time.perf_counter()
    result = compare_bases(
        load_model(),
        args.layers.split(","),
        images,
        methods=args.methods.split(","),
        k=args.k,
        seeds=[int(s) for s in args.seeds.split(",")],
        steps=args.steps,
        size=args.size,
        fit_images=args.fit_folder,
        cossim_power=args.cossim,
    )
    print(result.table)
    print()
    print(result.table.to_markdown())
    print()
    print(result.answer())
    print(f"\nratio: {time.perf_counter() - t0:.0f} s for {len(result.table.rows)} cells")


if __name__ == "__main__":
    main()
