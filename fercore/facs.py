"""Facial action units (FACS): names, intensity codes and EMFACS-style emotion prototypes.

AUs are written as ``"AU12"`` everywhere in fercore. Intensities follow CK+'s FACS files:
1-5 are FACS A-E; CK+ writes 0 for "present, intensity not coded".
"""

from __future__ import annotations

# AU number -> FACS name (the AUs that occur in CK+ and in SynthFACS).
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    11: "nasolabial deepener",
    12: "lip corner puller",
    13: "cheek puffer",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip puckerer",
    20: "lip stretcher",
    21: "neck tightener",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    28: "lip suck",
    31: "jaw clencher",
    34: "cheek puff",
    38: "nostril dilator",
    39: "nostril compressor",
    43: "eyes closed",
    45: "blink",
}

# The AUs that the SynthFACS renderer draws (geometry and appearance).
SYNTH_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 27)

# Codes of FaceSet.aus (int8): which AUs a frame shows and how strongly.
AU_NOT_CODED = -1  # the frame has no FACS coding (e.g. onset frames of a sequence)
AU_ABSENT = 0
AU_PRESENT_UNKNOWN = 9  # present, intensity not coded (CK+ writes intensity 0)
INTENSITY_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D", 5: "E"}

# CK+ emotion ids -> names (also the class order of fercore's 8-class CK+ protocol).
CKPLUS_EMOTIONS: tuple[str, ...] = (
    "neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
)


def au_code(au: int) -> str:
    """``12 -> "AU12"``."""
    return f"AU{int(au)}"


def au_number(code: str) -> int:
    """``"AU12" -> 12``; raises ValueError on anything else."""
    if not code.startswith("AU") or not code[2:].isdigit():
        raise ValueError(f"not an action unit code: {code!r} (expected e.g. 'AU12')")
    return int(code[2:])


def au_label(au: int) -> str:
    """``12 -> "AU12 lip corner puller"``, for plot labels."""
    return f"AU{au} {AU_NAMES.get(au, '')}".strip()


# EMFACS-style prototypes used by SynthFACS. Each emotion lists AU groups:
#   "core":     always present;
#   "one_of":   exactly one AU from each inner tuple is present (e.g. disgust is 9 or 10);
#   "optional": each present with probability p.
# "side" makes the whole prototype unilateral (contempt is R12A+R14A in FACS).
EMOTION_PROTOTYPES: dict[str, dict] = {
    "happy": {"core": (6, 12), "optional": {25: 0.5, 26: 0.1}},
    "sadness": {"core": (1, 4, 15), "optional": {17: 0.4}},
    "surprise": {"core": (1, 2, 5), "one_of": ((26, 27),), "optional": {25: 0.8}},
    "fear": {"core": (1, 2, 4, 5, 20), "one_of": ((25, 26, 27),), "optional": {25: 0.5}},
    "anger": {"core": (4, 5, 7), "one_of": ((23, 24),), "optional": {17: 0.4}},
    "disgust": {"core": (15, 16), "one_of": ((9, 10),), "optional": {17: 0.3, 25: 0.4}},
    "contempt": {"core": (12, 14), "optional": {}, "unilateral": True},
}
