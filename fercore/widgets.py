"""Interactive browsers for JupyterLab (ipywidgets). Under papermill they render once, statically."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from torch import nn

from fercore import plots, units
from fercore.data.faceset import FaceSet


def unit_browser(model: nn.Module, faceset: FaceSet, tops: dict[str, pd.DataFrame], k: int = 9):
    """Pick a layer, a filter, a projection method and k; see the filter's top patches and projections.

    Args:
        tops: layer name -> ``units.mine_topk`` table for that layer (mined with at least ``k``).
    """
    layers = list(tops)
    layer = widgets.Dropdown(options=layers, value=layers[-1], description="layer")
    unit = widgets.IntSlider(min=0, max=int(tops[layers[-1]]["filter"].max()), value=0, description="filter")
    method = widgets.Dropdown(options=("patches only",) + units.METHODS, value="deconvolution", description="method")
    count = widgets.IntSlider(min=1, max=int(tops[layers[-1]]["rank"].max()) + 1, value=k, description="k")
    out = widgets.Output()

    def redraw(*_):
        unit.max = int(tops[layer.value]["filter"].max())
        count.max = int(tops[layer.value]["rank"].max()) + 1
        with out:
            out.clear_output(wait=True)
            fig = plots.filter_topk(model, faceset, tops[layer.value], layer.value, unit.value, k=count.value,
                                    method=None if method.value == "patches only" else method.value)
            plt.show(fig)

    for control in (layer, unit, method, count):
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, unit]), widgets.HBox([method, count]), out])
    display(box)
    return box
