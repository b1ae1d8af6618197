"""Profiles as data: one frozen dataclass per concern, one literal structure per profile.

Every knob has its unit in a comment. Override any field by keyword::

    cfg = get_profile("quick", train=dict(epochs=12), cul=dict(lr=1e-3))

`smoke` runs in seconds on generated data (tests), `quick` on real CIFAR-10 on one CPU,
`paper` reproduces the official code's recipe (ResNet-18, 60 epochs) on one GPU.
"""

from .profiles import PROFILES, SMOKE_REMOVAL_ATTACKS, SMOKE_SECTION_ATTACKS, get_profile
from .sections import (
    ANCHOR_ATTACKS,
    IMAGE_ATTACKS,
    PAPER_ATTACKS,
    CULConfig,
    DataConfig,
    DetectionConfig,
    ModelDetectionConfig,
    Profile,
    RecoveryConfig,
    RemovalConfig,
    TrainConfig,
    ZooConfig,
    as_dict,
    override,
)

__all__ = [
    "PROFILES",
    "SMOKE_REMOVAL_ATTACKS",
    "SMOKE_SECTION_ATTACKS",
    "get_profile",
    "PAPER_ATTACKS",
    "ANCHOR_ATTACKS",
    "IMAGE_ATTACKS",
    "DataConfig",
    "TrainConfig",
    "CULConfig",
    "DetectionConfig",
    "RecoveryConfig",
    "ZooConfig",
    "ModelDetectionConfig",
    "RemovalConfig",
    "Profile",
    "as_dict",
    "override",
]
