"""The example notebooks run top to bottom headless, and the live widget works inside them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# Appended to each notebook: drive the widget the notebook created, check it, then stop it.
CHECK = """
import time
from featviz_widgets.view.cells import open_widgets
(w,) = open_widgets()
assert w.wait_for_steps(5, timeout=60), w.runner.snapshot()
w.controls.mode.value = 'channel'
w.controls.unit.value = 3
deadline = time.time() + 30
while w.runner.snapshot().target.unit != 3 and time.time() < deadline:
    time.sleep(0.05)
assert w.runner.snapshot().target.unit == 3 and not w.runner.snapshot().error, w.runner.snapshot()
print('STATUS', w.status.value)
w.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["quickstart.ipynb", "regularizers_lab.ipynb", "directions.ipynb", "deepdream_photo.ipynb"]
)
def test_notebook_runs(name: str, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK))
    NotebookClient(
        nb, timeout=600, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    assert "STATUS" in out and "steps/s" in out
    assert nb.metadata.get("widgets"), "widget state was not stored"
