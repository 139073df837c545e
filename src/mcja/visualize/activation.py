"""Grad-CAM style activation maps of an MCJA model, with hooks on the last backbone stage (layer4).

The score explained is the cosine similarity to a reference feature (a matched image's), the logit of a
training identity, or else the squared norm of the pooled layer4 feature. Map = ReLU(sum over channels of mean-gradient x activation),
upsampled bilinearly to the input size and stretched to 0..1 per image (min to max).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mcja.data.augment import normalize
from mcja.models.mcja import gem


def _last_stage(model: nn.Module) -> nn.Module:
    """The module whose output is explained: layer4's last block, or the MDA after it when there is one.

    MCJA runs a stage block by block (an MDA may follow a block), so the hook goes on the last block itself.
    """
    if "layer4" in model.mda:
        return model.mda["layer4"][-1]
    return model.backbone.layer4[-1]


def activation_maps(model: nn.Module, images: Tensor, reference: Tensor | None = None,
                    classes: Tensor | None = None) -> np.ndarray:
    """uint8 images [B, 3, H, W] -> activation maps float32 [B, H, W] in 0..1 (eval mode, on the model's device).

    Explains, per image: the cosine similarity to its row of `reference` [B, D] (a matched image's feature), or
    the logit of its training identity in `classes` [B], else the squared norm of the pooled layer4 feature.
    """
    device = next(model.parameters()).device
    store: dict[str, Tensor] = {}
    hook = _last_stage(model).register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            feats = model(normalize(images.to(device))).float()
            act = store["act"]
            (grad,) = torch.autograd.grad(_explained_score(model, feats, act, reference, classes), act)
    finally:
        hook.remove()
        model.train(was_training)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel: its mean gradient
    cam = F.relu((weights * act).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    low = cam.flatten(1).amin(dim=1)[:, None, None]
    span = (cam.flatten(1).amax(dim=1)[:, None, None] - low).clamp_min(1e-12)
    return ((cam - low) / span).cpu().numpy().astype(np.float32)


def _explained_score(model: nn.Module, feats: Tensor, act: Tensor, reference: Tensor | None,
                     classes: Tensor | None) -> Tensor:
    """The scalar whose gradient weighs the channels (summed over the batch: each image's own term)."""
    if reference is not None:
        return (F.normalize(feats, dim=1) * F.normalize(reference.to(feats.device).float(), dim=1)).sum()
    if classes is not None:
        return model.classifier(feats).gather(1, classes.to(feats.device).long().view(-1, 1)).sum()
    # the pooled map before the BN-neck: its norm grows with activation anywhere (the neck can flip signs)
    return gem(act).pow(2).sum()


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 RGB [H, W, 3] blended with the map in the 'jet' colours: uint8 [H, W, 3]."""
    from matplotlib import colormaps  # the plot extra: figures need it anyway

    heat = colormaps["jet"](np.clip(cam, 0, 1))[..., :3] * 255
    return (alpha * heat + (1 - alpha) * image.astype(np.float32)).clip(0, 255).astype(np.uint8)


def activation_figure(images: np.ndarray, cams: np.ndarray, captions: Sequence[str], out_path: str | os.PathLike,
                      title: str = "Activation maps (Grad-CAM on layer4)") -> Path:
    """Each image above its overlaid map, captioned, with a colour bar: one PNG."""
    from mcja.evaluation.figures import pyplot, save_figure

    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n + 1.2, 5.2), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(captions[i], fontsize=7)
        axes[1, i].imshow(overlay(images[i], cams[i]))
        for row in (0, 1):
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("activation overlay")
    mappable = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes[1, :].tolist(), fraction=0.04, label="activation (0 = image minimum, 1 = maximum)")
    fig.suptitle(title)
    return save_figure(fig, out_path)


def load_images(paths: Sequence[str | os.PathLike], size: Sequence[int]) -> np.ndarray:
    """uint8 [N, H, W, 3] of `paths` resized as in testing (PIL bilinear); errors name the file."""
    from mcja.data.images import load_resized

    return np.stack([load_resized(p, (int(size[0]), int(size[1]))) for p in paths])


def to_batch(images: np.ndarray) -> Tensor:
    """uint8 [N, H, W, 3] -> uint8 tensor [N, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def explain_images(model: nn.Module, paths: Sequence[str | os.PathLike], size: Sequence[int],
                   out_path: str | os.PathLike, captions: Sequence[str] | None = None,
                   reference: Tensor | None = None, title: str = "Activation maps (Grad-CAM on layer4)") -> Path:
    """Activation maps of image files, drawn as one figure (the `visualize --checkpoint` verb)."""
    images = load_images(paths, size)
    cams = activation_maps(model, to_batch(images), reference)
    names = list(captions) if captions is not None else [Path(p).name for p in paths]
    return activation_figure(images, cams, names, out_path, title=title)




def explain_checkpoint(checkpoint: str | os.PathLike, paths: Sequence[str | os.PathLike], out_path: str | os.PathLike,
                       size: Sequence[int] | None = None) -> Path:
    """Activation maps of image files under a checkpoint's model, at its own input size unless `size`."""
    from mcja.models import load_model
    from mcja.models.reader import read_checkpoint, resolve_image_size

    ckpt = read_checkpoint(checkpoint)  # once, weights-only
    return explain_images(load_model(ckpt), paths, resolve_image_size(ckpt, size), out_path)
