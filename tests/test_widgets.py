"""fercore.widgets: no comm traffic where no front-end is connected (papermill), a live browser that redraws
every method as a non-blank image."""

from __future__ import annotations

import io
import threading

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from PIL import Image

from fercore import plots, units, widgets
from fercore.data.common import make_faceset
from fercore.models import ModelConfig, build_model

SETUP = """
import numpy as np, pandas as pd
from fercore import plots, units, widgets
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


def tiny_browser_inputs():
    images = np.random.default_rng(0).integers(0, 256, (24, 1, 32, 32), dtype=np.uint8)
    faceset = make_faceset("t", images, np.zeros(24), ["x"], subjects=np.arange(24),
                           meta=pd.DataFrame({"i": range(24)}), splits=[], protocol={})
    model = build_model(ModelConfig(image_size=32, width=0.125), seed=0).eval()
    tops = {"conv3": units.mine_topk(model, faceset, "conv3", k=3, progress=False)}
    return model, faceset, tops


def picture(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


def test_live_browser_redraws_every_method_as_a_non_blank_image():
    model, faceset, tops = tiny_browser_inputs()
    box = widgets.unit_browser(model, faceset, tops, k=3, live=True)
    method, status, image = box.children[1].children[0], box.children[2], box.children[3]
    seen = set()
    for choice in ["guided backprop", "patches only", "deconvolution", "guided backprop", "guided backprop"]:
        method.value = choice
        pixels = picture(image.value)
        assert pixels.shape[0] > 80 and pixels.std() > 10, f"{choice}: blank figure"
        assert f"method {choice}" in status.value and "drawn in" in status.value
        seen.add(bytes(image.value))
    assert len(seen) == 3  # each method draws its own figure; the same method draws the same one


def test_redraws_leave_pyplot_and_the_notebooks_model_alone(monkeypatch):
    """The cause of the blank guided-backprop figures: JupyterLab 4.6 sends widget messages over a subshell, which
    ipykernel 7 runs on its own thread while a cell runs on the main thread; a redraw that made a pyplot figure
    (which the inline backend closes and shows when a cell ends) or hooked the notebook's model (captum) broke
    the other thread's figure."""
    import matplotlib.pyplot as plt

    model, faceset, tops = tiny_browser_inputs()
    hooked = []
    project = widgets.projections.project
    monkeypatch.setattr(widgets.plots.units.projections, "project",
                        lambda net, *a, **kw: (hooked.append(net), project(net, *a, **kw))[1])

    def no_pyplot(*_, **__):
        raise AssertionError("a redraw made a pyplot figure")

    monkeypatch.setattr(plt, "figure", no_pyplot)
    monkeypatch.setattr(plt, "subplots", no_pyplot)
    box = widgets.unit_browser(model, faceset, tops, k=3, live=True)
    box.children[1].children[0].value = "guided backprop"
    assert "drawn in" in box.children[2].value, box.children[2].value  # no error shown in the status line
    assert hooked and all(net is not model for net in hooked)


def test_redraws_on_many_threads_end_at_the_last_state_while_the_main_thread_draws():
    model, faceset, tops = tiny_browser_inputs()
    reference = {m: widgets.figure_png(plots.filter_topk(model, faceset, tops["conv3"], "conv3", 0, k=3, method=m))
                 for m in ("deconvolution", "guided backprop")}
    box = widgets.unit_browser(model, faceset, tops, k=3, live=True)
    method, image = box.children[1].children[0], box.children[3]
    choices = ["guided backprop", "deconvolution", "patches only"] * 3

    def switch(offset: int):
        for choice in choices[offset:] + choices[:offset]:
            method.value = choice

    threads = [threading.Thread(target=switch, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    main_thread = [widgets.figure_png(plots.filter_topk(model, faceset, tops["conv3"], "conv3", 0, k=3,
                                                        method="guided backprop")) for _ in range(4)]
    for thread in threads:
        thread.join(timeout=300)
    assert all(png == reference["guided backprop"] for png in main_thread), "the notebook's figures are intact"
    method.value = "guided backprop"
    assert image.value == reference["guided backprop"]
    assert box.redraws.drawn <= box.redraws.requested
