"""Starting training from a trained MCJA (`model.init_from`): ours or a reference-code state dict.

Backbone, MDA and BN-neck are copied. The classifier is re-initialised when the number of training ids
differs; MDA's context-dependent weights (the mask and context convolutions) are re-initialised only when
asked (`model.reset_mda`), since a different number of contexts changes what MDA computes.
"""

from __future__ import annotations

import os

from mcja.errors import CheckpointError, ConfigError
from mcja.models.checkpoint import load_model
from mcja.models.mcja import MCJA

CONTEXT_PARTS = (".mask_conv.", ".context_conv.")  # MDA weights whose shape depends on the number of contexts


def init_from_checkpoint(model: MCJA, path: str | os.PathLike, reset_mda: bool = False) -> list[str]:
    """Copy a trained model's weights into `model` (built for the new data); returns lines for the console."""
    try:
        source = load_model(path)  # our reader: checks the file and builds its architecture (never unpickles)
    except CheckpointError as err:  # its line starts with the path: say which setting gave it
        raise CheckpointError(f"model.init_from={err}") from None
    src, new = source.arch, model.arch
    for key, setting in (("depth", "model.depth"), ("mda_layers", "model.mda_layers")):
        if src[key] != new[key]:
            raise CheckpointError(f"{path}: model.init_from has {key} {src[key]}, the config {new[key]}; "
                                  f"set {setting}={src[key]}")
    skip: list[str] = []
    notes = [f"weights from {path} (ResNet-{src['depth']}, MDA {src['mda_layers']} x{src['mda_contexts']})"]
    if src["mda_contexts"] != new["mda_contexts"]:
        if not reset_mda:
            raise ConfigError(f"{path}: its MDA has {src['mda_contexts']} contexts, model.mda_contexts is "
                              f"{new['mda_contexts']}: set model.mda_contexts={src['mda_contexts']} to keep them, "
                              "or model.reset_mda=true to re-initialise MDA's masks")
        skip += [k for k in source.state_dict() if any(part in k for part in CONTEXT_PARTS)]
        notes.append(f"MDA masks re-initialised: {src['mda_contexts']} -> {new['mda_contexts']} contexts")
    if src["num_classes"] != new["num_classes"]:
        skip.append("classifier.weight")
        notes.append(f"classifier re-initialised: the checkpoint has {src['num_classes']} ids, "
                     f"the training set {new['num_classes']}")
    state = {k: v for k, v in source.state_dict().items() if k not in skip}
    result = model.load_state_dict(state, strict=False)
    if sorted(result.missing_keys) != sorted(skip) or result.unexpected_keys:  # pragma: no cover - arch checked above
        raise CheckpointError(f"{path}: weights do not fit the configured model (missing {result.missing_keys[:3]}, "
                              f"unexpected {result.unexpected_keys[:3]})")
    return notes
