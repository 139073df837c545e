"""Test-only references for mcja.models, written from the spec and torchvision's published layout.

Nothing here imports mcja: the layout, parameter-count formula and forward pass below are independent of the
code under test, so tests that compare against them fail when the package's behaviour breaks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
# torchvision's published parameter counts (including the 1000-way fc head).
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032}


def _bn_shapes(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def torchvision_resnet_shapes(depth: int) -> dict[str, tuple[int, ...]]:
    """torchvision resnet{depth} state-dict keys -> shapes, from its layout (stem, 4 stages, fc)."""
    bottleneck = depth == 50
    shapes = {"conv1.weight": (64, 3, 7, 7)} | _bn_shapes("bn1", 64)
    cin = 64
    for s, n in enumerate(BLOCKS[depth]):
        planes = 64 * 2**s
        cout = planes * (4 if bottleneck else 1)
        for i in range(n):
            p, c = f"layer{s + 1}.{i}", cin if i == 0 else cout
            convs = [(planes, c, 1), (planes, planes, 3), (cout, planes, 1)] if bottleneck else [(planes, c, 3), (planes, planes, 3)]
            for j, (o, ci, k) in enumerate(convs, 1):
                shapes |= {f"{p}.conv{j}.weight": (o, ci, k, k)} | _bn_shapes(f"{p}.bn{j}", o)
            if i == 0 and (s > 0 or cin != cout):
                shapes |= {f"{p}.downsample.0.weight": (cout, cin, 1, 1)} | _bn_shapes(f"{p}.downsample.1", cout)
        cin = cout
    return shapes | {"fc.weight": (1000, cin), "fc.bias": (1000,)}


def reference_mcja_shapes(depth: int, num_classes: int, contexts: int, mda=(0, 2, 3, 0)) -> dict[str, tuple[int, ...]]:
    """Keys -> shapes of a state dict saved by the reference code (backbone.fc included, as it saves it)."""
    shapes = {f"backbone.{k}": v for k, v in torchvision_resnet_shapes(depth).items()}
    widths = [64 * 2**s * (4 if depth == 50 else 1) for s in range(4)]
    for s, (n, c) in enumerate(zip(mda, widths), 1):
        for i in range(min(n, BLOCKS[depth][s - 1])):
            p = f"MDA_{s}.{i}"
            shapes |= {f"{p}.sc_conv.weight": (contexts, c, 1, 1), f"{p}.sc_conv.bias": (contexts,)}
            shapes |= {f"{p}.ca_conv.weight": (c, 1, contexts)} | _bn_shapes(f"{p}.ca_bn", c) | _bn_shapes(f"{p}.norm_bn", c)
    d = widths[-1]
    return shapes | _bn_shapes("bn_neck", d) | {"classifier.weight": (num_classes, d)}


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random but well-conditioned values: He-scaled convs, BN scales and variances around 1."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
            out[key] = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) >= 2:
            out[key] = torch.randn(shape, generator=g) * math.sqrt(1.0 / math.prod(shape[1:]))
        else:  # biases and running means
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out


def expected_param_count(depth: int, num_classes: int, contexts: int, mda=(0, 2, 3, 0)) -> int:
    """Parameters of MCJA without backbone.fc, by formula: trunk + MDAs + BN-neck + classifier."""
    d = 2048 if depth == 50 else 512
    trunk = TORCHVISION_PARAMS[depth] - (d * 1000 + 1000)
    widths = [64 * 2**s * (4 if depth == 50 else 1) for s in range(4)]
    # MDA(C, M): 1x1 conv C*M + M, depth-wise conv C*M, two BNs with 2*C each.
    mdas = sum(min(n, b) * (2 * c * contexts + contexts + 4 * c) for n, b, c in zip(mda, BLOCKS[depth], widths))
    return trunk + mdas + 2 * d + d * num_classes


def _bn(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5)


def _conv(x: torch.Tensor, sd: dict, p: str, stride: int = 1) -> torch.Tensor:
    w = sd[f"{p}.weight"]
    return F.conv2d(x, w, sd.get(f"{p}.bias"), stride=stride, padding=w.shape[-1] // 2)


def reference_mda(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    """MDA in eval mode straight from the spec: explicit per-context weighted sums and per-channel dot products."""
    b, c, h, w = x.shape
    masks = torch.softmax(_conv(x, sd, f"{p}.sc_conv").reshape(b, -1, h * w), dim=-1)
    flat = x.reshape(b, c, h * w)
    contexts = torch.stack([(flat * masks[:, m : m + 1]).sum(-1) for m in range(masks.shape[1])], dim=-1)
    z = (contexts * sd[f"{p}.ca_conv.weight"][:, 0, :]).sum(-1)  # depth-wise conv, kernel = number of contexts
    gate = torch.sigmoid(_bn(z, sd, f"{p}.ca_bn"))
    return _bn(x * gate[:, :, None, None], sd, f"{p}.norm_bn") + x


def reference_features(sd: dict, x: torch.Tensor, last_stride: int = 2) -> torch.Tensor:
    """Eval-mode MCJA features from a reference-format state dict: a loop over blocks, MDA after the last n."""
    bottleneck = "backbone.layer1.0.conv3.weight" in sd
    x = F.max_pool2d(F.relu(_bn(_conv(x, sd, "backbone.conv1", 2), sd, "backbone.bn1")), 3, 2, 1)
    for s in range(1, 5):
        n = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith(f"backbone.layer{s}."))
        n_mda = len({k.split(".")[1] for k in sd if k.startswith(f"MDA_{s}.")})
        for i in range(n):
            p = f"backbone.layer{s}.{i}"
            stride = (1 if s == 1 else last_stride if s == 4 else 2) if i == 0 else 1
            n_conv = 3 if bottleneck else 2
            y = x
            for j in range(1, n_conv + 1):
                on_this = j == (2 if bottleneck else 1)  # the 3x3 conv carries the stride in a bottleneck
                y = _bn(_conv(y, sd, f"{p}.conv{j}", stride if on_this else 1), sd, f"{p}.bn{j}")
                y = F.relu(y) if j < n_conv else y
            short = _bn(_conv(x, sd, f"{p}.downsample.0", stride), sd, f"{p}.downsample.1") if f"{p}.downsample.0.weight" in sd else x
            x = F.relu(y + short)
            if i >= n - n_mda:
                x = reference_mda(sd, f"MDA_{s}.{i - (n - n_mda)}", x)
    pooled = (x.reshape(*x.shape[:2], -1).pow(3).mean(-1) + 1e-12) ** (1 / 3)
    return _bn(pooled, sd, "bn_neck")
