"""mcja.losses: soft rank, the cross-modality retrieval (CMR) loss, identity loss, camera-to-modality labels."""

from mcja.losses.cmr import CMRLoss
from mcja.losses.identity import identity_loss
from mcja.losses.modality import camera_to_modality
from mcja.losses.softrank import SoftRank, soft_rank

__all__ = ["CMRLoss", "SoftRank", "camera_to_modality", "identity_loss", "soft_rank"]
