"""Small gray frames with a face that OpenCV's Haar cascade finds, for loader tests that crop with it.

The faces are rendered by SynthFACS (no real data), cut so that the face fills about 0.7 of the
frame (inside the paper's 0.5-0.8 band) and shrunk to 128 px so that detection is fast. Only
identities whose render the cascade finds are used; ``test_haar.py`` checks that it still does.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from fercore.data.crop import crop_square
from fercore.data.haar import detect_face
from fercore.data.synthfacs import identity_of, render_face

DETECTABLE = (2, 3, 5, 7, 8, 10, 11)  # SynthFACS identities (seed 0) the cascade finds in a 640x490 render
SIDE = 128


@cache
def face_frame(k: int) -> np.ndarray:
    """uint8 (128, 128): face number ``k`` (cycling over the detectable identities)."""
    frame = render_face(identity_of(DETECTABLE[k % len(DETECTABLE)], 0), {}).image
    x, y, w, h = detect_face(frame)
    side = w / 0.7
    box = (x + w / 2 - side / 2 - 0.5, y + h / 2 - side / 2 - 0.5, side)
    out = crop_square(frame, box, SIDE)
    out.setflags(write=False)
    return out


def blank_frame() -> np.ndarray:
    """uint8 (128, 128) mid gray: no face to find."""
    return np.full((SIDE, SIDE), 128, dtype=np.uint8)


def listing(root) -> list:
    """Every file and folder under ``root`` with size and mtime: compare before and after a load."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))
