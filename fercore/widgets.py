"""Interactive browsers for JupyterLab (ipywidgets); a static figure where no front-end is connected.

Where no widget front-end is connected (papermill, nbconvert: ``fercore.progress.frontend_connected``), a
browser draws its first view as a plain figure and creates no widget, so no comm message is sent to a
client that would not answer.

The live browser shows its figure as PNG bytes in an ``ipywidgets.Image``. Its callbacks run wherever the
kernel handles widget messages: JupyterLab 4.6 sends them over a subshell of their own, and ipykernel 7 runs
a subshell's messages on its own thread, at the same time as a cell on the main thread. A redraw therefore
shares nothing with the notebook (``_Redraws``): it draws a figure that pyplot never sees (the inline
backend closes and shows every pyplot figure when a cell ends), on its own copy of the model (captum
registers hooks on the model's ReLUs), one redraw at a time.
"""

from __future__ import annotations

import copy
import html
import io
import threading
import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from torch import nn

from fercore import plots, projections
from fercore.data.faceset import FaceSet
from fercore.progress import frontend_connected


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; a pyplot figure is closed (so no backend shows it again)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


class _Redraws:
    """The redraw callback of one browser, safe on any thread.

    One redraw at a time (a lock); a request that a newer one has superseded by the time the lock is free
    is dropped, so the picture always ends at the controls' last state. ``render(**state)`` returns PNG
    bytes; ``show(png, message, error)`` puts them (or the error) in the widgets.
    """

    def __init__(self, read: Callable[[], dict], prepare: Callable[[], None], render: Callable[..., bytes],
                 show: Callable[[bytes | None, str, bool], None]):
        self.read, self.prepare, self.render, self.show = read, prepare, render, show
        self._tickets = threading.Lock()  # guards the counter only
        self._drawing = threading.RLock()  # re-entrant: prepare() may change a control and call back in
        self.requested = 0
        self.drawn = 0

    def __call__(self, *_) -> None:
        with self._tickets:
            self.requested += 1
            ticket = self.requested
        with self._drawing:
            if ticket != self.requested:
                return  # a newer request draws
            self.prepare()
            if ticket != self.requested:
                return  # prepare() changed a control, whose own callback drew the newer state
            state = self.read()
            label = ", ".join(f"{key} {value}" for key, value in state.items())
            start = time.perf_counter()
            try:
                png = self.render(**state)
            except Exception as error:  # shown in the browser, not lost in the Log Console
                self.show(None, f"{label}: {type(error).__name__}: {error}", True)
                return
            self.drawn += 1
            self.show(png, f"{label}: drawn in {time.perf_counter() - start:.1f} s", False)


def unit_browser(model: nn.Module, faceset: FaceSet, tops: dict[str, pd.DataFrame], k: int = 9,
                 live: bool | None = None):
    """Pick a layer, a filter, a projection method and k; see the filter's top patches and projections.

    Args:
        tops: layer name -> ``fercore.units.mine_topk`` table for that layer (mined with at least ``k``).
        live: True for the interactive browser, False for one static figure (the last layer's filter 0);
            None decides by ``frontend_connected()``.

    Returns:
        The widget box (live): ``[[layer, filter], [method, k], status, image]``, or None (static).
    """
    layers = list(tops)

    def draw(net: nn.Module, layer: str, unit: int, method: str, count: int, pyplot: bool):
        return plots.filter_topk(net, faceset, tops[layer], layer, unit, k=count, pyplot=pyplot,
                                 method=None if method == "patches only" else method)

    if not (frontend_connected() if live is None else live):
        fig = draw(model, layers[-1], 0, "deconvolution", k, pyplot=True)
        display(fig)
        plt.close(fig)
        return None

    import ipywidgets as widgets

    layer = widgets.Dropdown(options=layers, value=layers[-1], description="layer")
    unit = widgets.IntSlider(min=0, max=int(tops[layers[-1]]["filter"].max()), value=0, description="filter")
    method = widgets.Dropdown(options=("patches only",) + projections.METHODS, value="deconvolution",
                              description="method")
    count = widgets.IntSlider(min=1, max=int(tops[layers[-1]]["rank"].max()) + 1, value=k, description="k")
    status = widgets.HTML()
    image = widgets.Image(format="png")
    own = copy.deepcopy(model)  # the browser's hooks and mode changes never touch the notebook's model

    def prepare():
        unit.max = int(tops[layer.value]["filter"].max())
        count.max = int(tops[layer.value]["rank"].max()) + 1

    def show(png: bytes | None, message: str, error: bool):
        if png is not None:
            image.value = png
        colour = "#b00020" if error else "#555"
        status.value = f'<span style="color:{colour}">{html.escape(message)}</span>'

    redraw = _Redraws(read=lambda: {"layer": layer.value, "filter": unit.value, "method": method.value,
                                    "k": count.value},
                      prepare=prepare,
                      render=lambda **s: figure_png(draw(own, s["layer"], s["filter"], s["method"], s["k"],
                                                         pyplot=False)),
                      show=show)
    for control in (layer, unit, method, count):
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([layer, unit]), widgets.HBox([method, count]), status, image])
    box.redraws = redraw  # requests and redraws so far (tests)
    display(box)
    return box
