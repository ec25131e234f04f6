"""Progress bars that suit where fercore runs: a widget in JupyterLab, text in a terminal, none where nobody
watches (a kernel that papermill or nbconvert drives).

A kernel that a Jupyter server starts for a notebook (JupyterLab, Notebook 7) has ``JPY_SESSION_NAME`` in its
environment, and a widget front-end that reconnects opens ipywidgets' control comm; a kernel that papermill or
nbconvert starts has neither (fercore's own executor also removes the variable from the kernels it starts, in
case it runs inside a notebook's kernel). Where no front-end is connected a progress widget would send comm
messages that no client answers, and a text bar would leave its redraws in the executed notebook, so bars
are off there. ``FERCORE_WIDGETS=live`` or ``static`` decides instead (e.g. for VS Code's own kernels).
"""

from __future__ import annotations

import os
import sys


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


SESSION_VARIABLE = "JPY_SESSION_NAME"  # set by jupyter_server in the kernels of its notebook sessions


def frontend_connected() -> bool:
    """Whether a widget front-end is connected to this kernel (``FERCORE_WIDGETS`` decides if set)."""
    choice = os.environ.get("FERCORE_WIDGETS", "").strip().lower()
    if choice in ("live", "static"):
        return choice == "live"
    widgets = sys.modules.get("ipywidgets")
    control = widgets is not None and getattr(widgets.Widget, "_control_comm", None) is not None
    return in_kernel() and (bool(os.environ.get(SESSION_VARIABLE)) or control)


def tqdm(*args, **kwargs):
    """``tqdm.tqdm`` with the same arguments: a widget bar in JupyterLab, a text bar in a terminal, disabled in a
    kernel without a front-end."""
    if in_kernel():
        if frontend_connected():
            from tqdm.notebook import tqdm as widget_bar

            return widget_bar(*args, **kwargs)
        kwargs["disable"] = True
    from tqdm.std import tqdm as text_bar

    return text_bar(*args, **kwargs)


__all__ = ["SESSION_VARIABLE", "frontend_connected", "in_kernel", "tqdm"]
