"""Issue #24, class 1: every HTML value the widget can show, made with crafted layer and file
names, rendered in Chromium the way ipywidgets renders an HTML widget (``innerHTML``), with the
events the payloads wait for fired on every element: no handler runs. A control page with the
same payloads unescaped proves the detector sees them run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..crafted import FILE_PAYLOADS, PAYLOADS, every_html_value

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("comms")]

RENDER = """(values) => {
  window.__xss = undefined;
  for (const value of values) {
    const box = document.createElement('div');
    box.className = 'widget-html-content';
    box.innerHTML = value;  // what ipywidgets' HTMLView does with the model's value
    document.body.appendChild(box);
  }
}"""
PROVOKE = """() => {
  for (const el of document.querySelectorAll('*')) {
    for (const type of ['mouseover', 'mouseenter', 'click', 'focus', 'toggle', 'load', 'error']) {
      el.dispatchEvent(new Event(type, {bubbles: true}));
    }
    if (el.focus) el.focus();
  }
}"""


def _executed(page: Any, values: list[str]) -> Any:
    page.set_content("<!doctype html><html><body></body></html>")
    page.evaluate(RENDER, values)
    page.evaluate(PROVOKE)
    page.wait_for_timeout(800)  # image errors, iframes and toggles fire asynchronously
    return page.evaluate("() => window.__xss")


def test_no_crafted_name_runs_in_the_page(page: Any, tmp_path: Path) -> None:
    values, fed = every_html_value(tmp_path)
    assert len(values) > 50 and fed > 20
    assert _executed(page, values) is None
    # the detector works: the same payloads, unescaped, do run
    raw = [f"<span>{p}</span>" for p in (*PAYLOADS, *FILE_PAYLOADS)]
    assert _executed(page, raw) is not None
    for payload in (*PAYLOADS[:7], *PAYLOADS[8:], *FILE_PAYLOADS):  # (the 8th is escaped text on purpose)
        contexts = [f"<small>{payload}</small>", f'<a download="{payload}">x</a>', f"<a title='{payload}'>x</a>"]
        assert _executed(page, contexts) is not None, payload
