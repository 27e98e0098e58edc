"""The captioner-agreement script tells a caption written back word for word from the same objects in another order
and from a caption that names something else."""

from __future__ import annotations


def test_agreement_tells_order_from_content(load_script):
    agreement = load_script("captioner_agreement").agreement
    one = "a small yellow triangle in the top center on a white gradient background"
    two = "a small red circle in the top left and a large blue square in the center on a gray background"
    swapped = "a large blue square in the center and a small red circle in the top left on a gray background"
    assert agreement(one, one) == "exact"
    assert agreement(two, swapped) == "same objects"
    assert agreement(one, one.replace("triangle", "star")) == "differs"  # the target's word for the source object
    assert agreement(two, swapped.replace("gray", "black")) == "differs"  # another background
    assert agreement(two, swapped.replace("square", "circle")) == "differs"
