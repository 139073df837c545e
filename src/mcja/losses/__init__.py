"""mcja.losses: soft rank, the cross-modality retrieval (CMR) loss, identity loss."""

from mcja.losses.cmr import CMRLoss
from mcja.losses.identity import identity_loss
from mcja.losses.softrank import SoftRank, soft_rank

__all__ = ["CMRLoss", "SoftRank", "identity_loss", "soft_rank"]
