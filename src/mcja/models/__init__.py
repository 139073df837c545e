"""mcja.models: ResNet backbones, the MDA block, the MCJA network and checkpoint I/O (ours and the reference's)."""

from mcja.models.checkpoint import checkpoint_payload, from_reference_state_dict, load_model, to_reference_state_dict
from mcja.models.mcja import MCJA, MCJAOutput, count_parameters
from mcja.models.mda import MDA
from mcja.models.resnet import ResNet, build_resnet

__all__ = [
    "MCJA",
    "MCJAOutput",
    "MDA",
    "ResNet",
    "build_resnet",
    "load_model",
    "checkpoint_payload",
    "from_reference_state_dict",
    "to_reference_state_dict",
    "count_parameters",
]
