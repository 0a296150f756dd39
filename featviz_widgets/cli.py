"""Command line: ``featviz layers``, ``featviz render`` and ``featviz atlas``. Embedded model by default."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine.core import RenderSettings
from .engine.image import PARAMS, maco_recipe
from .errors import FeatvizError, InvalidSettingError


def _image_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that decide the picture (``_image_settings`` reads them): the same for
    ``featviz render`` and ``featviz atlas``."""
    p = parser.add_argument_group("picture settings (the same for render and atlas)")
    p.add_argument(
        "--lr",
        type=float,
        help=f"Adam learning rate (default {RenderSettings().lr}; MaCo's recipe {maco_recipe()['lr']})",
    )
    p.add_argument("--l1", type=float, default=0.0, help="weight of the L1 penalty (pixels toward grey)")
    p.add_argument("--tv", type=float, default=0.0, help="weight of the total-variation penalty")
    p.add_argument("--blur", type=float, default=0.0, help="weight of the blur penalty")
    p.add_argument(
        "--transform-strength",
        type=float,
        help="strength of all the random transforms: zoom, crop, jitter, rotation, pixel noise "
        f"(default {RenderSettings().transform.strength})",
    )
    p.add_argument(
        "--views",
        type=int,
        help=f"randomly transformed copies per step, objectives averaged (default {RenderSettings().views}; "
        "4 is steadier per step for 4x the work: docs/performance.md)",
    )
    p.add_argument(
        "--param",
        choices=sorted(PARAMS),
        help="image parameterization (default decorrelated: 1/f^decay Fourier + decorrelated colour)",
    )
    p.add_argument("--decay", type=float, default=RenderSettings().decay, help="Fourier 1/f^decay exponent")
    p.add_argument(
        "--maco-recipe",
        action="store_true",
        help=f"MaCo's own recipe: --param maco, lr {maco_recipe()['lr']}, crops, pixel noise",
    )
    p.add_argument("--align", type=float, default=0.0, help="weight of the reference-aligned (VITAL) penalty")
    p.add_argument(
        "--align-photos",
        help="folder of reference photos for --align (default: the probe photos; on Ray, every node must see it)",
    )
    p.add_argument("--pixel", action="store_true", help="optimize pixels directly (old flag: no Fourier basis)")
    p.add_argument("--no-decorrelate", action="store_true", help="no colour decorrelation (old flag)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="featviz", description="Feature visualization from the command line.")
    sub = p.add_subparsers(dest="command", required=True)

    layers = sub.add_parser("layers", help="list the model's layers with their output shapes")
    layers.add_argument("--model", default=None, help="model name (default: the embedded efficientnet_lite0)")
    layers.add_argument("--all", action="store_true", help="every sub-module, not only the main layers")

    r = sub.add_parser("render", help="render one visualization to a PNG")
    r.add_argument("--model", default=None, help="model name (default: the embedded efficientnet_lite0)")
    target = r.add_mutually_exclusive_group()
    target.add_argument("--channel", type=int, help="channel of --layer to maximize")
    target.add_argument("--class", dest="klass", type=int, help="ImageNet class index (logit) to maximize")
    target.add_argument("--deepdream", action="store_true", help="maximize the whole --layer (DeepDream)")
    target.add_argument("--objective", help="an objective string, e.g. 'blocks.8:5 - 0.5*blocks.8:7'")
    r.add_argument("--layer", default="blocks.8", help="layer for --channel/--deepdream (default blocks.8)")
    r.add_argument("--neuron", metavar="X,Y", help="with --channel: one position instead of the whole channel")
    r.add_argument("-o", "--output", required=True, help="PNG file to write")
    r.add_argument("--steps", type=int, default=256)
    r.add_argument("--size", type=int, default=224)
    r.add_argument("--seed", type=int, default=0)
    _image_flags(r)
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    a = sub.add_parser("atlas", help="render every channel of chosen layers into a resumable static site")
    a.add_argument("model", nargs="?", default=None, help="model name (default: the embedded efficientnet_lite0)")
    a.add_argument("--layers", help="comma-separated layers (default: the model's main layers)")
    a.add_argument("--logits", action="store_true", help="also render every class logit")
    a.add_argument("--out", required=True, help="folder for the tiles and the site (DIR/index.html)")
    a.add_argument("--steps", type=int, default=128)
    a.add_argument("--size", type=int, default=128)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--chunk", type=int, default=16, help="channels rendered together in one batch (default 16)")
    a.add_argument(
        "--threads",
        type=int,
        help="CPU threads per chunk (default: all cores, in both modes; 1 on Ray: one chunk per core)",
    )
    a.add_argument(
        "--max-units",
        type=int,
        metavar="N",
        help="only the first N units of each layer (whole chunks): a preview the full run completes",
    )
    _image_flags(a)
    a.add_argument("--photos", help="a folder of photos: each channel's page shows its top natural exemplars")
    a.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'local', 'auto', HOST:PORT or ray://HOST:PORT")
    a.add_argument("--num-gpus", type=float, help="GPUs per Ray task (default: 1 when the cluster has GPUs)")
    a.add_argument("--ray-timeout", type=float, default=10.0, help="seconds to wait for the Ray address")
    a.add_argument("--in-flight", type=int, help="Ray tasks at most at once (default: twice the cluster's slots)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _atlas(args: argparse.Namespace) -> int:
    from .atlas import render_atlas

    layers = [x.strip() for x in args.layers.split(",") if x.strip()] if args.layers else None
    try:
        report = render_atlas(
            args.model,
            out=args.out,
            layers=layers,
            logits=args.logits,
            steps=args.steps,
            size=args.size,
            seed=args.seed,
            chunk=args.chunk,
            threads=args.threads,
            max_units=args.max_units,
            photos=args.photos,
            ray=args.ray,
            num_gpus=args.num_gpus,
            ray_timeout=args.ray_timeout,
            in_flight=args.in_flight,
            progress=not args.quiet,
            **_image_settings(args),
        )
    except KeyboardInterrupt:
        print("featviz: interrupted; finished chunks are kept: run the same command to resume.", file=sys.stderr)
        return 130
    print(
        json.dumps(
            {
                "index": str(report.index),
                "tiles": report.total,
                "rendered": report.tiles_rendered,
                "resumed": report.skipped,
                "seconds": round(report.seconds, 2),
                "render_seconds": round(report.render_seconds, 2),
                "exemplar_layers": len(report.exemplar_layers),
            }
        )
    )
    return 0


def _image_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The render settings ``_image_flags`` read: penalties, learning rate, transforms, views,
    alignment and the parameterization. MaCo's recipe when asked, with an explicit --lr, --views,
    --transform-strength or --param winning over it; the old --pixel/--no-decorrelate only alone."""
    if (args.param or args.maco_recipe) and (args.pixel or args.no_decorrelate):
        raise InvalidSettingError(
            "--pixel and --no-decorrelate are the old spelling of --param: use --param alone "
            f"(valid: {', '.join(sorted(PARAMS))}), or --maco-recipe."
        )
    settings: dict[str, Any] = {
        "l1": args.l1,
        "tv": args.tv,
        "blur": args.blur,
        "decay": args.decay,
        "align": args.align,
    }
    given = {"lr": args.lr, "views": args.views, "transform_strength": args.transform_strength}
    if args.maco_recipe:
        settings.update(maco_recipe())
    settings.update({name: value for name, value in given.items() if value is not None})
    if args.param:
        settings["param"] = args.param
    if args.pixel:
        settings["fourier"] = False
    if args.no_decorrelate:
        settings["decorrelate"] = False
    if args.align_photos:
        settings["align_photos"] = args.align_photos
    return settings


def _objective(args: argparse.Namespace) -> str:
    if args.objective:
        return str(args.objective)
    if args.klass is not None:
        return f"logits:{args.klass}"
    if args.deepdream:
        return str(args.layer)
    channel = 0 if args.channel is None else args.channel
    if args.neuron:
        try:
            x, y = (int(v) for v in args.neuron.split(","))
        except ValueError:
            raise InvalidSettingError(f"--neuron must be two integers 'X,Y', got {args.neuron!r}.") from None
        return f"{args.layer}:{channel}@{x},{y}"
    return f"{args.layer}:{channel}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .engine import list_layers, load_model, main_layers, render
    from .engine.core import tune
    from .export import save_png

    tune()  # a process of its own that only renders: keep freed memory for the next step

    try:
        if args.command == "atlas":
            return _atlas(args)
        model = load_model(args.model)
        if args.command == "layers":
            infos = list_layers(model) if args.all else main_layers(model)
            for info in infos:
                print(f"{info.name:<32} {info.channels:>6} channels  output {'x'.join(map(str, info.shape))}")
            return 0
        out = Path(args.output)
        if out.suffix.lower() != ".png":
            raise InvalidSettingError(f"--output must end in .png, got {str(out)!r}.")
        if not out.parent.exists():
            raise InvalidSettingError(f"The folder {str(out.parent)!r} for --output does not exist.")
        result = render(
            model,
            _objective(args),
            steps=args.steps,
            size=args.size,
            seed=args.seed,
            progress=not args.quiet,
            **_image_settings(args),
        )
        save_png(result.image, out, result.settings)
        if not args.quiet:
            print(
                json.dumps(
                    {
                        "output": str(out),
                        "objective": result.settings["objective"],
                        "final_value": result.history[-1] if result.history else None,
                    }
                )
            )
        return 0
    except FeatvizError as exc:
        print(f"featviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
