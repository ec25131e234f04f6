"""fercore.widgets: no comm traffic where no front-end is connected (papermill), a live browser that redraws
every method as a non-blank image."""

from __future__ import annotations

import io

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from PIL import Image

from fercore import units, widgets
from fercore.data.common import make_faceset
from fercore.models import ModelConfig, build_model

SETUP = """
import numpy as np, pandas as pd
from fercore import units, widgets
from fercore.data.common import make_faceset
from fercore.models import ModelConfig, build_model
images = np.random.default_rng(0).integers(0, 256, (24, 1, 32, 32), dtype=np.uint8)
faceset = make_faceset("t", images, np.zeros(24), ["x"], subjects=np.arange(24),
                       meta=pd.DataFrame({"i": range(24)}), splits=[], protocol={})
model = build_model(ModelConfig(image_size=32, width=0.125), seed=0).eval()
tops = {name: units.mine_topk(model, faceset, name, k=3) for name in ("conv2", "conv3")}  # with progress bars
"""


class CommCounter(NotebookClient):
    """nbclient, as papermill drives it, counting the comm messages the kernel sends."""

    comms = 0

    def handle_comm_msg(self, outs, msg, cell_index):
        self.comms += 1
        return super().handle_comm_msg(outs, msg, cell_index)


def run_browser(call: str) -> tuple[int, list]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(call)]
    client = CommCounter(nb, timeout=300, kernel_name="python3", startup_timeout=120)
    client.execute()
    return client.comms, nb.cells[1].outputs


@pytest.mark.slow
def test_no_comm_messages_without_a_front_end():
    comms, outputs = run_browser("browser = widgets.unit_browser(model, faceset, tops, k=3)\nprint(browser)")
    assert comms == 0  # neither the browser nor the progress bars of the mining made a widget
    assert any("image/png" in o.get("data", {}) for o in outputs), "a static figure stands in for the browser"
    assert any(o.get("text", "").strip() == "None" for o in outputs if o.output_type == "stream")
    # The control: forced live, the same call does send widget messages (so the counter can count).
    comms, outputs = run_browser("browser = widgets.unit_browser(model, faceset, tops, k=3, live=True)")
    assert comms > 0 and any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_live_browser_redraws_every_method_as_a_non_blank_image():
    images = np.random.default_rng(0).integers(0, 256, (24, 1, 32, 32), dtype=np.uint8)
    faceset = make_faceset("t", images, np.zeros(24), ["x"], subjects=np.arange(24),
                           meta=pd.DataFrame({"i": range(24)}), splits=[], protocol={})
    model = build_model(ModelConfig(image_size=32, width=0.125), seed=0).eval()
    tops = {"conv3": units.mine_topk(model, faceset, "conv3", k=3, progress=False)}
    box = widgets.unit_browser(model, faceset, tops, k=3, live=True)
    method, image = box.children[1].children[0], box.children[2]
    seen = set()
    for choice in ["guided backprop", "patches only", "deconvolution", "guided backprop", "guided backprop"]:
        method.value = choice
        picture = np.asarray(Image.open(io.BytesIO(image.value)).convert("L"), dtype=float)
        assert picture.shape[0] > 80 and picture.std() > 10, f"{choice}: blank figure"
        seen.add(bytes(image.value))
    assert len(seen) == 3  # each method draws its own figure; the same method draws the same one
