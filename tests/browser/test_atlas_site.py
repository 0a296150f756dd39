"""The atlas site opened from disk (file://) in Chromium: the index links each layer, a layer
page shows every tile with its label, a tile links to its page with image, settings, code and
natural exemplars, and the links lead back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featviz_widgets.atlas import render_atlas
from featviz_widgets.engine.models import FeatvizModel

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHOTOS = Path(__file__).resolve().parents[2] / "featviz_widgets" / "data"


def loaded_images(page: Any, selector: str) -> list[int]:
    return list(page.eval_on_selector_all(selector, "els => els.map(e => e.complete ? e.naturalWidth : 0)"))


def test_site_from_disk(page: Any, tiny: FeatvizModel, tmp_path: Path) -> None:
    r = render_atlas(
        tiny,
        out=tmp_path,
        layers=["conv1", "conv2"],
        chunk=4,
        steps=3,
        size=32,
        threads=1,
        photos=PHOTOS,
        exemplars=2,
        progress=False,
    )
    assert r.index is not None
    page.goto(r.index.as_uri())
    assert page.title() == "Atlas of tiny"
    assert page.locator("a.layer").all_inner_texts() == ["conv1", "conv2"]
    assert "2 of 2 layers finished" in page.locator("body").inner_text()
    assert "in progress" not in page.locator("body").inner_text()
    page.click("a.layer:text('conv2')")
    page.wait_for_load_state("load")
    assert page.url.endswith("/layers/conv2.html")
    assert page.locator(".tile span").all_inner_texts() == [str(u) for u in range(6)]
    page.wait_for_function("[...document.images].every(i => i.complete)")
    assert loaded_images(page, ".tile img") == [32] * 6  # every tile decoded from its PNG
    page.click(".tile:has(span:text-is('5'))")
    page.wait_for_load_state("load")
    assert page.url.endswith("/units/conv2/5.html")
    assert page.locator("h1").inner_text() == "conv2 channel 5"
    page.wait_for_function("[...document.images].every(i => i.complete)")
    assert loaded_images(page, "img.main") == [32]
    assert "Channel('conv2', 5)" in page.locator("pre.settings").inner_text()
    code = page.locator("pre.code").inner_text()
    assert "BatchChannels('conv2', tuple(range(4, 6)))" in code and "pil_images()[1]" in code
    exemplars = loaded_images(page, ".exemplars img")
    assert len(exemplars) == 2 and all(w > 0 for w in exemplars)
    page.click("a[rel=prev]")
    page.wait_for_load_state("load")
    assert page.url.endswith("/units/conv2/4.html")
    page.click("a:text('conv2')")
    page.click("a:text('atlas')")
    page.wait_for_load_state("load")
    assert page.url == r.index.as_uri()
