"""The paper's face crop: OpenCV's Haar frontal-face cascade, and the image -> face step of the loaders.

Datasets that ship neither crops nor landmarks (JAFFE, KDEF, CK+ without ``Landmarks/``) are
cropped the way the paper did it (docs: paper.md): the frontal face cascade bundled with OpenCV,
``scaleFactor`` 1.3 and ``minNeighbors`` 5, retried with 3 when nothing is found, faces between
0.5 and 0.8 of the image's short side, the largest detection kept. A frame in which no face is
found is left out and reported, never replaced by the whole frame: a "face" that is really a
frame would teach the network the background.

Boxes follow ``fercore.data.crop``'s convention ((x0, y0, side), pixel i centred on i), so
``crop_square`` cuts exactly the detected rectangle and ``to_crop_coords`` carries landmarks into it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fercore.data.common import DatasetFormatError, read_gray
from fercore.data.crop import crop_square
from fercore.progress import tqdm

CASCADE_FILE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = 1.3
MIN_NEIGHBORS = (5, 3)  # the paper's setting, then its retry
FACE_FRACTION = (0.5, 0.8)  # face side relative to the short side of the image
CROP_METHODS = ("haar", "none")

_local = threading.local()  # one cascade per thread: CascadeClassifier is not documented as thread-safe
# OpenCV's first import swaps modules in sys.modules while it bootstraps: a second thread importing it then
# gets a half-made module (no cv2.data). The first import happens under this lock.
_import_lock = threading.Lock()


def _cascade():
    if getattr(_local, "cascade", None) is None:
        try:
            with _import_lock:
                import cv2
        except ImportError as e:
            raise ImportError("the Haar face crop needs OpenCV: pip install 'opencv-python-headless>=4.8,<5'") from e
        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 dropped it): "
                              "pip install 'opencv-python-headless>=4.8,<5'")
        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise ImportError(f"cannot load OpenCV's bundled cascade {path}")
        _local.cascade = cascade
    return _local.cascade


def detect_face(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest frontal face in ``gray`` under the paper's settings, or None.

    Args:
        gray: uint8 (H, W).

    Returns:
        (x, y, w, h) of OpenCV's rectangle in pixels (column, row of its top-left pixel), or None.
    """
    short = min(gray.shape)
    smallest = max(1, int(round(FACE_FRACTION[0] * short)))
    largest = max(smallest, int(round(FACE_FRACTION[1] * short)))
    cascade = _cascade()
    for neighbours in MIN_NEIGHBORS:
        found = cascade.detectMultiScale(np.ascontiguousarray(gray, dtype=np.uint8), scaleFactor=SCALE_FACTOR,
                                         minNeighbors=neighbours, minSize=(smallest, smallest),
                                         maxSize=(largest, largest))
        if len(found):
            x, y, w, h = max((tuple(int(v) for v in r) for r in found), key=lambda r: (r[2] * r[3], r))
            return x, y, w, h
    return None


def face_boxes(gray: np.ndarray, min_neighbors: int = MIN_NEIGHBORS[0]) -> list[tuple[int, int, int, int]]:
    """Every face the cascade finds in ``gray`` (uint8 (H, W)) at the paper's scale factor and size band.

    Returns:
        [(x, y, w, h), ...] in pixels; empty when none.
    """
    short = min(gray.shape)
    smallest = max(1, int(round(FACE_FRACTION[0] * short)))
    largest = max(smallest, int(round(FACE_FRACTION[1] * short)))
    found = _cascade().detectMultiScale(np.ascontiguousarray(gray, dtype=np.uint8), scaleFactor=SCALE_FACTOR,
                                        minNeighbors=min_neighbors, minSize=(smallest, smallest),
                                        maxSize=(largest, largest))
    return [tuple(int(v) for v in r) for r in found]


def haar_box(gray: np.ndarray) -> tuple[float, float, float] | None:
    """``detect_face`` as a crop box (x0, y0, side) in ``fercore.data.crop`` coordinates, or None."""
    found = detect_face(gray)
    if found is None:
        return None
    x, y, w, h = found
    side = float(max(w, h))  # the cascade's rectangles are square
    return x - 0.5, y - 0.5, side


def centre_box(gray: np.ndarray) -> tuple[float, float, float]:
    """The centre square of the whole frame as a crop box (for images that are faces already)."""
    h, w = gray.shape
    side = min(h, w)
    return (w - side) // 2 - 0.5, (h - side) // 2 - 0.5, float(side)


@dataclass
class Faces:
    """What ``load_faces`` made of a list of image files.

    Attributes:
        images: uint8 (K, 1, S, S), one per kept file.
        kept: int (K,), index into the file list of every kept file.
        boxes: float (K, 3) crop box (x0, y0, side) in frame pixels; the whole (centre square)
            frame for ``crop="none"``.
        left_out: {"no_face": [file, ...], "unreadable": [file, ...]}.
    """

    images: np.ndarray
    kept: np.ndarray
    boxes: np.ndarray
    left_out: dict[str, list[str]] = field(default_factory=dict)


def load_faces(files: list[Path], crop: str = "haar", size: int = 96, skip_unreadable: bool = True,
               relative_to: Path | None = None, desc: str = "faces",
               error: type[Exception] = DatasetFormatError) -> Faces:
    """Read image files as gray faces: Haar crop (``"haar"``) or resize only (``"none"``).

    Args:
        files: image paths.
        crop: ``"haar"`` = the paper's cascade crop, files without a face are left out;
            ``"none"`` = the image is already a face (pre-cropped datasets): its centre square
            is resized.
        size: output side.
        skip_unreadable: leave out (and list) files that cannot be decoded, else raise ``error``.
        relative_to: list left-out files relative to this folder (the dataset root).
        desc: progress bar label.

    Returns:
        ``Faces``.
    """
    if crop not in CROP_METHODS:
        raise ValueError(f"crop must be one of {CROP_METHODS}, got {crop!r}")
    if crop == "haar":
        _cascade()  # fail early (missing OpenCV) rather than once per thread

    def one(path: Path):
        try:
            gray = read_gray(path, error)
        except error:
            if not skip_unreadable:
                raise
            return "unreadable", None, None
        box = centre_box(gray) if crop == "none" else haar_box(gray)
        if box is None:
            return "no_face", None, None
        return None, crop_square(gray, box, size), box

    images, kept, boxes = [], [], []
    left_out: dict[str, list[str]] = {"no_face": [], "unreadable": []}
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = tqdm(pool.map(one, files), total=len(files), desc=desc, unit="img", disable=len(files) < 200)
        for i, (reason, face, box) in enumerate(results):
            if reason is not None:
                path = files[i]
                left_out[reason].append(path.relative_to(relative_to).as_posix() if relative_to else str(path))
                continue
            images.append(face)
            kept.append(i)
            boxes.append(box)
    stack = np.stack(images)[:, None] if images else np.zeros((0, 1, size, size), dtype=np.uint8)
    return Faces(images=stack, kept=np.asarray(kept, dtype=np.int64),
                 boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 3), left_out=left_out)
