"""Interactive browsers for JupyterLab (ipywidgets); a static figure where no front-end is connected.

Where no widget front-end is connected (papermill, nbconvert: ``fercore.progress.frontend_connected``), a
browser draws its first view as a plain figure and creates no widget, so no comm message is sent to a
client that would not answer.

The live browser shows its figure as PNG bytes in an ``ipywidgets.Image``: a redraw only changes
that widget's value, whichever thread the kernel runs the callback on (no output capture involved).
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from torch import nn

from fercore import plots, projections
from fercore.data.faceset import FaceSet
from fercore.progress import frontend_connected


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed (so no backend shows it again)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def unit_browser(model: nn.Module, faceset: FaceSet, tops: dict[str, pd.DataFrame], k: int = 9,
                 live: bool | None = None):
    """Pick a layer, a filter, a projection method and k; see the filter's top patches and projections.

    Args:
        tops: layer name -> ``fercore.units.mine_topk`` table for that layer (mined with at least ``k``).
        live: True for the interactive browser, False for one static figure (the last layer's filter 0);
            None decides by ``frontend_connected()``.

    Returns:
        The widget box (live), or None (static).
    """
    layers = list(tops)

    def draw(layer: str, unit: int, method: str, count: int):
        return plots.filter_topk(model, faceset, tops[layer], layer, unit, k=count,
                                 method=None if method == "patches only" else method)

    if not (frontend_connected() if live is None else live):
        fig = draw(layers[-1], 0, "deconvolution", k)
        display(fig)
        plt.close(fig)
        return None

    import ipywidgets as widgets

    layer = widgets.Dropdown(options=layers, value=layers[-1], description="layer")
    unit = widgets.IntSlider(min=0, max=int(tops[layers[-1]]["filter"].max()), value=0, description="filter")
    method = widgets.Dropdown(options=("patches only",) + projections.METHODS, value="deconvolution",
                              description="method")
    count = widgets.IntSlider(min=1, max=int(tops[layers[-1]]["rank"].max()) + 1, value=k, description="k")
    image = widgets.Image(format="png")

    def redraw(*_):
        unit.max = int(tops[layer.value]["filter"].max())
        count.max = int(tops[layer.value]["rank"].max()) + 1
        image.value = figure_png(draw(layer.value, unit.value, method.value, count.value))

    for control in (layer, unit, method, count):
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, unit]), widgets.HBox([method, count]), image])
    display(box)
    return box
