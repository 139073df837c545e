"""Plain references for the loss tests: a sequential pool-adjacent-violators soft rank and the reference CMR loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pav_block_ids(y: list[float]) -> list[int]:
    """Block id per position of the non-increasing isotonic fit of y; equal neighbouring means are pooled."""
    blocks: list[list[float]] = []  # [sum, count] per block, left to right
    for value in y:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] <= blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return [i for i, (_, count) in enumerate(blocks) for _ in range(int(count))]


def reference_soft_rank(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Soft rank row by row in float64, differentiable by autograd once the PAV blocks are fixed."""
    n = x.shape[-1]
    rows = []
    for row in x.reshape(-1, n).double():
        theta = row / strength
        order = sorted(range(n), key=lambda i: -theta[i].item())
        s = theta[order]
        y = s - torch.arange(n, 0, -1, dtype=torch.float64)
        ids = torch.tensor(pav_block_ids(y.tolist()))
        same = (ids[:, None] == ids[None, :]).double()
        fitted = (same / same.sum(1, keepdim=True)) @ y
        rows.append(torch.zeros(n, dtype=torch.float64).index_put((torch.tensor(order),), s - fitted))
    return torch.stack(rows).reshape(x.shape)


def reference_cmr(embeddings: torch.Tensor, ids: torch.Tensor, modalities: torch.Tensor, strength: float = 0.5):
    """The authors' loop (per modality, boolean masks, F.l1_loss) with the sequential soft rank for torchsort's."""
    present = torch.unique(modalities)
    embs = [embeddings[modalities == m] for m in present]
    labels = [ids[modalities == m] for m in present]
    total, count = 0, 0
    for i in range(len(present)):
        others = [j for j in range(len(present)) if j != i]
        if not others:
            continue  # the authors' code crashes here (torch.cat of nothing); the spec skips
        gallery = torch.cat([embs[j] for j in others])
        gallery_ids = torch.cat([labels[j] for j in others])
        match = labels[i][:, None] == gallery_ids[None, :]
        remove = (match.sum(1) == 0) | (match.sum(1) == len(gallery_ids))
        if remove.all():
            continue
        query, match = embs[i][~remove], match[~remove]
        dist = (1 - F.cosine_similarity(query[:, None, :], gallery[None, :, :], dim=-1)) / 2
        predicted = reference_soft_rank(dist, strength)
        target = torch.zeros_like(predicted)
        target[match] = 1
        target[~match] = len(gallery_ids)
        total = total + F.l1_loss(predicted, target)
        count += 1
    return total / count if count else 0
