"""SynthFACS: procedurally rendered faces with known facial action units, written as a CK+ tree.

- ``sample_identity`` / ``render_face``: render any identity with any AU intensities (0-5),
  e.g. to switch one AU on and off on the same face.
- ``write_tree`` (``fercore synth``): the whole dataset in the exact CK+ layout, plus the
  true AU intensities of every frame (``read_truth``).
"""

from fercore.data.synthfacs.face import Identity, parse_aus, sample_identity
from fercore.data.synthfacs.render import (
    FRAME_H,
    FRAME_W,
    Pose,
    Rendered,
    Scene,
    au_examples,
    render_crop,
    render_face,
    sample_pose,
    sample_scene,
)
from fercore.data.synthfacs.tree import (
    SequencePlan,
    identity_of,
    plan_dataset,
    read_plans,
    read_truth,
    render_sequence,
    warn_if_outdated,
    write_tree,
)

__all__ = [
    "FRAME_H", "FRAME_W", "Identity", "Pose", "Rendered", "Scene", "SequencePlan", "au_examples", "identity_of",
    "parse_aus", "plan_dataset", "read_plans", "read_truth", "render_crop", "render_face", "render_sequence",
    "sample_identity", "sample_pose", "sample_scene", "warn_if_outdated", "write_tree",
]
