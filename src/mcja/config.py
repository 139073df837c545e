"""Typed settings: dataclasses loaded from YAML, overridable with dotted `key=value` arguments.

The shipped configs (`mcja/configs/*.yaml`) hold the paper's settings; the defaults below are the
SYSU-MM01 ones. The reference code's flat `configs/*.yml` files load too (see `REFERENCE_KEYS`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from mcja.data.registry import DATASET_NAMES
from mcja.errors import ConfigError
from mcja.input_size import DEFAULT_IMAGE_SIZE, IMAGE_SIDE

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    dataset: str = "sysu"  # a name in mcja.data.registry.DATASETS: sysu | regdb | llcm | folder
    root: str = ""
    trial: int = 1  # RegDB split 1..10
    image_size: list[int] = field(default_factory=lambda: list(DEFAULT_IMAGE_SIZE))  # [height, width]
    p_size: int = 8  # identities per batch (per process)
    k_size: int = 16  # images per identity
    num_workers: int = 0  # DataLoader workers gathering cached uint8 images
    cache_dir: str = ""  # "" -> $MCJA_CACHE_DIR or ~/.cache/mcja
    val_ids: int = 0  # hold out this many training ids as a validation split (SYSU-MM01, LLCM, folder)


@dataclass
class AugmentConfig:
    color_jitter: bool = True
    vimc_wg: bool = True
    vimc_cc: bool = True
    vimc_sj: bool = True
    flip: bool = True
    crop: bool = True
    padding: int = 10
    random_erase: bool = True


@dataclass
class ModelConfig:
    depth: int = 50  # 18 | 34 | 50
    pretrained: str = "imagenet"  # imagenet | none | path to a torchvision-style state dict
    last_stride: int = 2
    mda_layers: list[int] = field(default_factory=lambda: [0, 2, 3, 0])
    mda_contexts: int = 2  # 2 for SYSU-MM01, 12 for RegDB
    init_from: str = ""  # fine-tune: a trained checkpoint (ours or the reference's) to start from
    reset_mda: bool = False  # with init_from: re-initialise MDA's masks when the number of contexts differs


@dataclass
class LossConfig:
    id: bool = True
    cmr: bool = True
    cmr_strength: float = 0.5


@dataclass
class OptimConfig:
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    epochs: int = 140
    lr_steps: list[int] = field(default_factory=lambda: [80, 120])
    lr_gamma: float = 0.1


@dataclass
class TrainConfig:
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto (bf16 on CUDA if supported, else fp16; on a CPU float32 training, bf16 evaluation where the CPU has
    # native bf16) | bf16 | fp16 | off
    amp: str = "auto"
    channels_last: bool = True  # on CUDA, and on a CPU in bf16
    compile: bool = False
    sync_bn: bool = False
    steps_per_epoch: int = 0  # 0 = a whole PK epoch; >0 caps it (demo, smoke runs)
    log_every: int = 10
    tensorboard: bool = False


@dataclass
class EvalConfig:
    every: int = 1  # evaluate every N epochs (0: only at the end)
    start: int = 0  # first epoch that is evaluated
    batch_size: int = 128
    mser: bool = True  # MSER re-ranked figures at the end of training (reported separately)
    mser_at_start: bool = False  # also MSER in the evaluation before training (when start == 0)
    select_on: str = "test"  # test (like the reference) | val (needs data.val_ids > 0)
    trials: int = 10  # SYSU-MM01 / LLCM gallery trials
    mser_preset: str = "auto"  # MSER's parameters: auto (the dataset's) | a name in mcja.evaluation.MSER_PRESETS
    mser_k1: int = 0  # > 0 overrides the preset's k1 (k-reciprocal neighbours)
    mser_k2: int = 0  # > 0 overrides the preset's k2 (query expansion)
    mser_lambda: float = -1.0  # >= 0 overrides the preset's lambda (weight of the original distance)


@dataclass
class Config:
    name: str = "mcja"
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return asdict(self)

    def to_yaml(self) -> str:
        """The whole config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


CHOICES: dict[str, tuple[Any, ...]] = {
    "data.dataset": DATASET_NAMES,
    "model.depth": (18, 34, 50),
    "model.last_stride": (1, 2),
    "train.amp": ("auto", "bf16", "fp16", "off"),
    "eval.select_on": ("test", "val"),
}

_FINITE = math.isfinite
# Numeric settings with a valid range: (key, test, what is expected), checked when a config is loaded.
RANGES: tuple[tuple[str, Any, str], ...] = (
    ("optim.lr", lambda v: _FINITE(v) and v > 0, "a finite number > 0"),
    ("optim.weight_decay", lambda v: _FINITE(v) and v >= 0, "a finite number >= 0"),
    ("optim.lr_gamma", lambda v: _FINITE(v) and v > 0, "a finite number > 0"),
    ("loss.cmr_strength", lambda v: _FINITE(v) and v > 0, "a finite number > 0"),
    ("data.num_workers", lambda v: v >= 0, ">= 0"),
    ("data.val_ids", lambda v: v >= 0, ">= 0"),
    ("augment.padding", lambda v: v >= 0, ">= 0"),
    ("eval.trials", lambda v: 1 <= v <= 10, "1..10 (the protocols define 10 gallery trials)"),
    ("eval.every", lambda v: v >= 0, ">= 0 (0: evaluate only after the last epoch)"),
    ("eval.start", lambda v: v >= 0, ">= 0"),
    ("eval.mser_k1", lambda v: v >= 0, ">= 1, or 0 for the preset's"),
    ("eval.mser_k2", lambda v: v >= 0, ">= 1, or 0 for the preset's"),
    ("eval.mser_lambda", lambda v: _FINITE(v) and v <= 1 and (v >= 0 or v == -1), "0..1, or -1 for the preset's"),
    ("train.log_every", lambda v: v >= 1, ">= 1"),
    ("train.steps_per_epoch", lambda v: v >= 0, ">= 0 (0: whole epochs)"),
)

# The reference code's flat keys -> ours (None: accepted and ignored, with the reason).
REFERENCE_KEYS: dict[str, str | None] = {
    "prefix": "name",
    "dataset": "data.dataset",
    "image_size": "data.image_size",
    "p_size": "data.p_size",
    "k_size": "data.k_size",
    "batch_size": None,  # = p_size * k_size under norm_triplet sampling
    "sample_method": None,  # only norm_triplet (checked)
    "random_flip": "augment.flip",
    "random_crop": "augment.crop",
    "random_erase": "augment.random_erase",
    "color_jitter": "augment.color_jitter",
    "padding": "augment.padding",
    "vimc_wg": "augment.vimc_wg",
    "vimc_cc": "augment.vimc_cc",
    "vimc_sj": "augment.vimc_sj",
    "drop_last_stride": "model.last_stride",
    "mda_ratio": None,  # has no effect in the reference network
    "mda_m": "model.mda_contexts",
    "loss_id": "loss.id",
    "loss_cmr": "loss.cmr",
    "lr": "optim.lr",
    "wd": "optim.weight_decay",
    "num_epoch": "optim.epochs",
    "lr_step": "optim.lr_steps",
    "fp16": "train.amp",
    "start_eval": "eval.start",
    "log_period": "train.log_every",
    "eval_interval": "eval.every",
    "mser": "eval.mser",
    "resume": None,  # use `mcja train --resume RUN_DIR`
    "test_only": None,  # use `mcja test`
}


def resolve_config_path(name: str | os.PathLike) -> Path:
    """A config file path, or the name of a shipped config (`sysu`, `sysu.yaml`)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"{name}: config file not found (shipped configs: {shipped})")


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file (ours or the reference's format), then `key=value` overrides."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        file = resolve_config_path(path)
        source = str(file)
        raw = read_yaml(file)
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: expected a mapping of settings at the top level")
        if _is_reference_format(raw):
            raw = from_reference(raw, source)
    cfg = Config()
    _merge(cfg, raw, source, prefix="")
    for item in overrides:
        apply_override(cfg, item)
    validate(cfg)
    return cfg


def read_yaml(file: Path) -> Any:
    """The parsed YAML of `file`; ConfigError for a file that is not UTF-8 or not YAML (with file:line:column)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                          "save the config as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{file}: cannot read the config ({err.strerror or err})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(file)
        what = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
        raise ConfigError(f"{where}: not valid YAML: {what or err}") from None


def config_from_dict(raw: dict[str, Any], source: str = "checkpoint") -> Config:
    """Rebuild a Config from `Config.to_dict()` output (e.g. stored in a checkpoint)."""
    cfg = Config()
    _merge(cfg, raw, source, prefix="")
    validate(cfg)
    return cfg


def apply_override(cfg: Config, item: str) -> None:
    """Apply one `section.key=value` override (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}': expected section.key=value, e.g. optim.lr=1e-4")
    key, _, text = item.partition("=")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = key.strip().split(".")
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    _merge(cfg, nested, "command line", prefix="")


def _merge(obj: Any, raw: dict[str, Any], source: str, prefix: str) -> None:
    """Set dataclass fields from a nested dict, checking names and types."""
    hints = get_type_hints(type(obj))
    names = [f.name for f in fields(obj)]
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{source}: unknown setting '{dotted}'{_suggest(prefix, key, names)}")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' is a section; expected a mapping of its settings")
            _merge(current, value, source, prefix=f"{dotted}.")
        else:
            setattr(obj, key, _coerce(_choice_word(dotted, value), hints[key], dotted, source))


def _suggest(prefix: str, key: str, names: list[str]) -> str:
    """' (did you mean 'x.y'?)' for the closest valid key, searching all sections for a bare key."""
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{prefix}{close[0]}'?)"
    if not prefix:  # a bare key given at top level: maybe it belongs in a section
        for section in (f for f in fields(Config) if is_dataclass(f.default_factory)):  # type: ignore[arg-type]
            sub = [f.name for f in fields(section.default_factory())]  # type: ignore[misc]
            close = difflib.get_close_matches(key, sub, n=1, cutoff=0.8)
            if close:
                return f" (did you mean '{section.name}.{close[0]}'?)"
    return f" (valid: {', '.join(names)})"


def _choice_word(dotted: str, value: Any) -> Any:
    """The choice word YAML read as something else (`train.amp=off` reads as false) -> that word; else `value`."""
    options = CHOICES.get(dotted, ())
    if any(value == o and type(value) is type(o) for o in options):
        return value
    words = [o for o in options if isinstance(o, str) and _yaml_scalar(o) == value
             and type(_yaml_scalar(o)) is type(value)]
    return words[0] if len(words) == 1 else value


def _yaml_scalar(text: str) -> Any:
    """What YAML makes of a bare word (off -> False, 18 -> 18, auto -> 'auto')."""
    return yaml.safe_load(text)


def _coerce(value: Any, hint: Any, dotted: str, source: str) -> Any:
    """Check/convert a value to the field's type; errors name the setting."""
    origin = get_origin(hint)
    if origin is list:
        (item,) = get_args(hint)
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\sx()\[\]]+", value) if v]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{dotted}' expects a list, got {value!r}")
        return [_coerce(v, item, dotted, source) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: '{dotted}' expects true or false, got {value!r}")
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: '{dotted}' expects an integer, got {value!r}")
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{source}: '{dotted}' expects a number, got {value!r}")
    if hint is str:
        if value is None:
            return ""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: '{dotted}' expects a string, got {value!r}")
    raise ConfigError(f"{source}: '{dotted}' has an unsupported type")  # pragma: no cover


def choices() -> dict[str, tuple[Any, ...]]:
    """CHOICES and the choices fed by the evaluation's registry (imported here: it pulls in torch)."""
    from mcja.evaluation.mser import MSER_PRESETS

    return {**CHOICES, "eval.mser_preset": ("auto", *MSER_PRESETS)}


def validate(cfg: Config) -> None:
    """Cross-field checks: choices, sizes, positive counts."""
    flat = _flatten(cfg.to_dict())
    for key, options in choices().items():
        if flat[key] not in options:
            raise ConfigError(f"'{key}' must be one of {', '.join(map(str, options))}; got {flat[key]!r}")
    lo, hi = IMAGE_SIDE
    if len(cfg.data.image_size) != 2 or not all(lo <= v <= hi for v in cfg.data.image_size):
        raise ConfigError(f"'data.image_size' must be [height, width], each {lo}..{hi}; got {cfg.data.image_size}")
    if len(cfg.model.mda_layers) != 4 or min(cfg.model.mda_layers) < 0:
        raise ConfigError(f"'model.mda_layers' must be 4 non-negative counts (one per stage); got {cfg.model.mda_layers}")
    for key in ("data.p_size", "data.k_size", "optim.epochs", "eval.batch_size", "model.mda_contexts"):
        if flat[key] < 1:
            raise ConfigError(f"'{key}' must be >= 1; got {flat[key]}")
    for key, ok, expected in RANGES:
        if not ok(flat[key]):
            raise ConfigError(f"'{key}' must be {expected}; got {flat[key]!r}")
    if not cfg.loss.id and not cfg.loss.cmr:
        raise ConfigError("'loss.id' and 'loss.cmr' are both false: nothing would be trained (turn on at least one)")
    if cfg.eval.select_on == "val" and cfg.data.val_ids < 1:
        raise ConfigError("'eval.select_on: val' needs 'data.val_ids' > 0 (training ids held out for validation)")


def config_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (old, new)} for every setting that differs between two config dicts."""
    old, new = _flatten(before), _flatten(after)
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _is_reference_format(raw: dict[str, Any]) -> bool:
    """The reference's files are flat and use keys such as p_size, num_epoch, mda_m."""
    ours = {f.name for f in fields(Config)}
    return bool(set(raw) & (set(REFERENCE_KEYS) - ours)) and not any(isinstance(v, dict) for v in raw.values())


def from_reference(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Map a reference-code config (flat keys) onto our nested settings."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in REFERENCE_KEYS:
            close = difflib.get_close_matches(key, list(REFERENCE_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown reference-config key '{key}'{hint}")
        target = REFERENCE_KEYS[key]
        if key == "sample_method" and value != "norm_triplet":
            raise ConfigError(f"{source}: sample_method '{value}' is not supported (only norm_triplet, the paper's)")
        if target is None:
            continue
        if key == "drop_last_stride":
            value = 1 if value else 2
        elif key == "fp16":
            value = "auto" if value else "off"
        elif key == "image_size" and isinstance(value, str):
            value = [int(v) for v in re.findall(r"\d+", value)]
        elif key == "lr_step" and isinstance(value, int):
            value = [value]
        section, _, name = target.rpartition(".")
        (out.setdefault(section, {}) if section else out)[name] = value
    return out
