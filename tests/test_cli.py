"""The featviz command line on the embedded model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from featviz_widgets.cli import main
from featviz_widgets.export import read_settings

from .conftest import featviz_render


def test_layers_lists_main_layers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert "blocks.8" in out and "112 channels" in out and "logits" in out


def test_render_writes_png_with_settings(tmp_path: Path) -> None:
    out = tmp_path / "ch.png"
    assert (
        main(
            [
                "render",
                "--layer",
                "blocks.2",
                "--channel",
                "3",
                "--steps",
                "4",
                "--size",
                "48",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (48, 48)
    settings = read_settings(out)
    assert settings["objective"] == "Channel('blocks.2', 3)" and settings["steps"] == 4


@pytest.mark.parametrize(
    ("flags", "objective"),
    [(["--class", "309"], "ClassLogit(309)"), (["--deepdream", "--layer", "blocks.3"], "DeepDream('blocks.3')")],
)
def test_render_class_and_deepdream(tmp_path: Path, flags: list[str], objective: str) -> None:
    out = tmp_path / "x.png"
    assert main(["render", *flags, "--steps", "2", "--size", "32", "-o", str(out), "--quiet"]) == 0
    assert read_settings(out)["objective"] == objective


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layer", "blocks.99", "--channel", "1"], "Unknown layer 'blocks.99'"),
        (["--layer", "blocks.2", "--channel", "999"], "valid channels are 0 to 23"),
        (["--size", "8"], "16 to 4096"),
        (["--steps", "0"], "steps"),
        (["--lr", "nan"], "learning rate"),
        (["--objective", "blocks.2:1 +"], "ends without a term"),
    ],
)
def test_render_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    out = tmp_path / "x.png"
    assert main(["render", *flags, "-o", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_render_refuses_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--steps", "1", "-o", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_views_and_transform_strength_reach_the_render_from_a_fresh_process(tmp_path: Path) -> None:
    # --transform-strength was parsed and then dropped on the way to render(); the PNG's settings
    # say what the render used.
    def featviz(*args: str) -> subprocess.CompletedProcess[str]:
        return featviz_render(tmp_path, "--class", "309", *args)

    assert featviz("--views", "3", "--transform-strength", "0.5", "-o", "a.png").returncode == 0
    saved = read_settings(tmp_path / "a.png")
    assert saved["views"] == 3 and saved["transform"]["strength"] == 0.5
    assert featviz("--maco-recipe", "--views", "2", "-o", "m.png").returncode == 0
    recipe = read_settings(tmp_path / "m.png")
    assert recipe["param"] == "maco" and recipe["views"] == 2 and recipe["transform"]["noise"] == 0.04
    for flags, message in [
        (["--views", "0"], "views must be an integer from 1 to 64, got 0"),
        (["--transform-strength", "-1"], "Transform strength must be a finite number >= 0"),
    ]:
        bad = featviz(*flags, "-o", "bad.png")
        assert bad.returncode == 2 and message in bad.stderr
        assert not (tmp_path / "bad.png").exists()
