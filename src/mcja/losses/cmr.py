"""Cross-Modality Retrieval (CMR) loss: soft ranks of cross-modality distances pulled toward target ranks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mcja.losses.softrank import soft_rank


def unit_rows(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Rows divided by max(norm, eps), with the gradient F.cosine_similarity has (norm clamped by value only)."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / (norm + (norm.clamp_min(eps) - norm).detach())


class CMRLoss(nn.Module):
    """CMR loss (MCJA-SPEC "Losses"): each modality's queries rank all other modalities' embeddings."""

    def __init__(self, strength: float = 0.5) -> None:
        super().__init__()
        if not strength > 0:
            raise ValueError(f"CMR soft-rank strength must be > 0, got {strength}")
        self.strength = float(strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"

    def forward(self, embeddings: Tensor, id_labels: Tensor, modality_labels: Tensor) -> Tensor:
        """Scalar float32 loss; a graph-connected zero when no modality has a usable query."""
        unit = unit_rows(embeddings.float())
        losses = []
        for modality in torch.unique(modality_labels):
            is_query = modality_labels == modality
            loss = self._modality_loss(unit[is_query], id_labels[is_query], unit[~is_query], id_labels[~is_query])
            if loss is not None:
                losses.append(loss)
        if not losses:
            # an empty slice sums to 0 whatever the embeddings hold (no 0 * inf = nan) and backpropagates zeros
            return embeddings[:0].float().sum()
        return torch.stack(losses).mean()

    def _modality_loss(self, query: Tensor, query_ids: Tensor, gallery: Tensor, gallery_ids: Tensor) -> Tensor | None:
        """Mean |soft rank - target rank| over the usable queries, or None when there are none."""
        gallery_size = gallery_ids.numel()
        match = query_ids[:, None] == gallery_ids[None, :]
        matches = match.sum(dim=1)
        usable = (matches > 0) & (matches < gallery_size)
        if not bool(usable.any()):
            return None
        distance = (1 - query[usable] @ gallery.T) / 2
        ranks = soft_rank(distance, self.strength)
        target = torch.where(match[usable], 1.0, float(gallery_size))
        return (ranks - target).abs().mean()
