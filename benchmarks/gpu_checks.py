"""The checks behind benchmarks/gpu_check.py: correctness on the device against the CPU, and throughput.

Each check takes the device and the sizes and returns a dict of figures; a mismatch raises CheckFailed naming
what differed and by how much. The sizes are the issue's on a GPU and small ones for `--tiny` (a CPU dry run).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_eval import features, sysu_like  # noqa: E402
from bench_mser import visible_views  # noqa: E402

from mcja.config import load_config  # noqa: E402
from mcja.data.augment import TrainAugment  # noqa: E402
from mcja.data.cache import ImageCache  # noqa: E402
from mcja.data.loader import TrainLoader  # noqa: E402
from mcja.data.records import Sample  # noqa: E402
from mcja.data.sampler import PKSampler  # noqa: E402
from mcja.engine.logger import RunLogger  # noqa: E402
from mcja.engine.runtime import Runtime, cpu_has_native_bf16  # noqa: E402
from mcja.engine.trainer import Trainer  # noqa: E402
from mcja.evaluation import Side, evaluate_sysu, sysu_protocol, sysu_trial_gallery  # noqa: E402
from mcja.evaluation.mser import MserReranker  # noqa: E402
from mcja.inference import FeatureExtractor  # noqa: E402
from mcja.losses import CMRLoss, identity_loss, soft_rank  # noqa: E402
from mcja.models import MCJA  # noqa: E402

METRICS = ("r1", "r5", "r10", "r20", "mAP", "mINP")
# One uint8 step after ImageNet normalisation is 1 / 255 / 0.225 = 0.0174: a colour op computed in another
# order on the GPU may round a pixel to the neighbouring value, never further.
AUG_MAX_DIFF, AUG_MEAN_DIFF = 0.035, 1e-4
GRAD_RTOL = 1e-4  # soft rank and CMR: float64 sorting, float32 products
MSER_DIST_TOL, METRIC_TOL = 1e-4, 0.05  # re-ranked distances; metric points (near-ties may reorder)
FEATURE_MIN_COSINE = 0.99  # bf16 vs float32 L2-normalised features, per image


class CheckFailed(AssertionError):
    """A result on the device differs from the CPU's (or a run went wrong) beyond the stated tolerance."""


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: the issue's on a GPU, small ones for the CPU dry run."""

    image: tuple[int, int] = (384, 192)
    p: int = 8
    k: int = 16
    depth: int = 50
    warmup: int = 5
    steps: int = 20
    fp16_steps: int = 6  # the scaler starts at 2^16 and skips the first steps that overflow: 4 or more judge the loss
    fp16_pk: tuple[int, int] = (8, 16)
    extract_batch: int = 256
    extract_batches: int = 8
    trials: int = 10
    mser_shots: int = 10
    queries: int = 3803  # SYSU-MM01's infrared test images
    dim: int = 2048
    ddp_image: tuple[int, int] = (128, 64)
    compile_backend: str = "inductor"


TINY = Sizes(image=(64, 32), p=4, k=4, depth=18, warmup=1, steps=2, fp16_steps=0, fp16_pk=(2, 2), extract_batch=8,
             extract_batches=2,
             trials=2, mser_shots=1, queries=800, dim=256, ddp_image=(64, 32), compile_backend="eager")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """(seconds, result) of fn(), device work included."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def require(ok: bool, message: str) -> None:
    """Raise CheckFailed(message) unless ok."""
    if not ok:
        raise CheckFailed(message)


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory so far: allocated on the GPU, resident on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----------------------------------------------------------------------------------------------- correctness
def check_augment(device: torch.device, s: Sizes) -> dict[str, Any]:
    """Batched VIMC + flip/crop/erase on the device vs the CPU, from the same generator state."""
    gen = torch.Generator().manual_seed(0)
    n = s.p * s.k
    images = torch.randint(0, 256, (n, 3, *s.image), dtype=torch.uint8, generator=gen)
    modality = torch.arange(n) % 2
    aug = TrainAugment(size=s.image)
    state = torch.Generator().manual_seed(1).get_state()
    outs = []
    for dev in (torch.device("cpu"), device):
        g = torch.Generator()
        g.set_state(state)
        outs.append(aug(images.to(dev), modality.to(dev), g).cpu())
    diff = (outs[0] - outs[1]).abs()
    figures = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "images": n}
    require(figures["max_abs_diff"] <= AUG_MAX_DIFF and figures["mean_abs_diff"] <= AUG_MEAN_DIFF,
            f"augmented batch differs from the CPU's: max {figures['max_abs_diff']:.3g} (tolerance {AUG_MAX_DIFF}), "
            f"mean {figures['mean_abs_diff']:.3g} (tolerance {AUG_MEAN_DIFF})")
    return figures


def _value_and_grad(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """fn(*inputs) summed with fixed random weights, and its gradient with respect to the float inputs."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*leaves)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.device, out.dtype)
    (out * w).sum().backward()
    return out.detach().cpu(), [x.grad.cpu() for x in leaves if x.requires_grad]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(|a|, tiny)."""
    return float((a.double() - b.double()).abs().max() / a.double().abs().max().clamp_min(1e-30))


def check_softrank_cmr(device: torch.device, s: Sizes) -> dict[str, Any]:
    """Soft rank [128, 64] and the CMR loss on a P x K batch of 2048-d features: value and gradient vs the CPU."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(128, 64, generator=gen)
    n = s.p * s.k
    emb = torch.randn(n, 2048, generator=gen)
    ids, modality = torch.arange(n) // s.k, (torch.arange(n) % s.k >= s.k // 2).long()
    cmr = CMRLoss(0.5)
    figures = {}
    for name, fn, args in (("soft_rank", lambda t: soft_rank(t, 0.5), (x,)),
                           ("cmr", lambda e, i, m: cmr(e, i, m).reshape(1), (emb, ids, modality))):
        v_cpu, g_cpu = _value_and_grad(fn, *args)
        v_dev, g_dev = _value_and_grad(fn, *(a.to(device) for a in args))
        figures[f"{name}_value_rel_diff"] = _relative(v_cpu, v_dev)
        figures[f"{name}_grad_rel_diff"] = _relative(g_cpu[0], g_dev[0])
        require(figures[f"{name}_value_rel_diff"] <= GRAD_RTOL and figures[f"{name}_grad_rel_diff"] <= GRAD_RTOL,
                f"{name} on {device} differs from the CPU: value {figures[f'{name}_value_rel_diff']:.2g}, "
                f"gradient {figures[f'{name}_grad_rel_diff']:.2g} (relative tolerance {GRAD_RTOL})")
    return figures


def sysu_features(s: Sizes, views: bool) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """A SYSU-sized test set (bench_eval.sysu_like; the first s.queries queries) with noisy features cut to s.dim;
    the gallery in 4 views if `views`."""
    rng = np.random.default_rng(0)
    d = sysu_like(rng)
    d["q_ids"], d["q_cams"] = d["q_ids"][: s.queries], d["q_cams"][: s.queries]
    q, g = features(rng, d["q_ids"], 3.0)[:, : s.dim], features(rng, d["g_ids"], 3.0)[:, : s.dim]
    return d, q.contiguous(), (visible_views(g, 1) if views else g).contiguous()


def _protocol_args(d: dict, q: torch.Tensor, g: torch.Tensor) -> tuple:
    return q, d["q_ids"], d["q_cams"], g, d["g_ids"], d["g_cams"], d["g_paths"], d["perm"]


def _metric_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    return max(abs(float(a[k]) - float(b[k])) for k in METRICS)


def check_mser(device: torch.device, s: Sizes) -> dict[str, Any]:
    """MSER re-ranked distances (trial 1's all-search gallery) and metrics on 4-view SYSU-sized features vs the CPU."""
    d, q, g = sysu_features(s, views=True)
    mask = sysu_trial_gallery(d["g_paths"], d["g_cams"], d["g_ids"], d["perm"], "all", s.mser_shots, 0)
    cols = torch.as_tensor(np.flatnonzero(mask))
    dist_cpu = MserReranker(q, g[:, cols]).rerank()
    dist_dev = MserReranker(q.to(device), g[:, cols].to(device)).rerank().cpu()
    res = [evaluate_sysu(*_protocol_args(d, q.to(dev), g.to(dev)), "all", s.mser_shots, 1, rerank="mser")
           for dev in (torch.device("cpu"), device)]
    figures = {"distance_max_abs_diff": float((dist_cpu - dist_dev).abs().max()), "metric_max_diff": _metric_diff(*res),
               "gallery": int(mask.sum()), "queries": len(d["q_ids"]), "r1": res[1]["r1"], "mAP": res[1]["mAP"]}
    require(figures["distance_max_abs_diff"] <= MSER_DIST_TOL,
            f"MSER distances differ from the CPU's by {figures['distance_max_abs_diff']:.2g} (tolerance {MSER_DIST_TOL})")
    require(figures["metric_max_diff"] <= METRIC_TOL,
            f"MSER metrics differ from the CPU's by {figures['metric_max_diff']:.3g} points (tolerance {METRIC_TOL})")
    return figures


def check_evaluate_sysu(device: torch.device, s: Sizes) -> dict[str, Any]:
    """evaluate_sysu (all-search single-shot, all trials) on device tensors vs on CPU tensors."""
    d, q, g = sysu_features(s, views=False)
    res = [evaluate_sysu(*_protocol_args(d, q.to(dev), g.to(dev)), "all", 1, s.trials) for dev in ("cpu", device)]
    figures = {"metric_max_diff": _metric_diff(*res), "trials": s.trials, "r1": res[1]["r1"], "mAP": res[1]["mAP"]}
    require(figures["metric_max_diff"] <= METRIC_TOL,
            f"evaluate_sysu on {device} differs from the CPU by {figures['metric_max_diff']:.3g} points "
            f"(tolerance {METRIC_TOL})")
    return figures


# ----------------------------------------------------------------------------------------------- training
@dataclass
class TrainSetup:
    """A Trainer on a synthetic uint8 cache, built the way engine/run.py builds one."""

    trainer: Trainer
    batch: int


def train_setup(device: torch.device, s: Sizes, tmp: Path, amp: torch.dtype | None, compile: bool = False) -> TrainSetup:
    """Random uint8 images of 2P ids x K (half visible, half infrared) in a memory-mapped cache, the PK
    sampler, TrainLoader and the engine's Trainer (batched augmentation on the device, autocast, channels-last)."""
    n_ids, h, w = 2 * s.p, *s.image
    file = tmp / f"cache-{h}x{w}.npy"
    if not file.exists():
        rng = np.random.default_rng(0)
        np.save(file, rng.integers(0, 256, (n_ids * s.k, h, w, 3), dtype=np.uint8))
    samples = [Sample(path=f"synthetic/{i}.jpg", pid=i // s.k, camera=1 if i % s.k < s.k // 2 else 3,
                      modality=int(i % s.k >= s.k // 2), label=i // s.k) for i in range(n_ids * s.k)]
    cfg = load_config("sysu", [f"data.image_size=[{h},{w}]", f"data.p_size={s.p}", f"data.k_size={s.k}",
                               "model.pretrained=none", f"model.depth={s.depth}", f"train.compile={str(compile).lower()}"])
    sampler = PKSampler([x.label for x in samples], s.p, s.k, seed=0)
    loader = TrainLoader(samples, ImageCache(file), sampler, num_workers=cfg.data.num_workers,
                         pin_memory=device.type == "cuda")
    rt = Runtime(device=device, amp_dtype=amp, channels_last=device.type == "cuda" or amp == torch.bfloat16)
    torch.manual_seed(0)
    m = cfg.model
    model = MCJA(n_ids, depth=m.depth, last_stride=m.last_stride, mda_layers=m.mda_layers,
                 mda_contexts=m.mda_contexts, pretrained="none").to(device)
    trainer = Trainer(cfg=cfg, rt=rt, run_dir=tmp, model=model, train_loader=loader, eval_data=None,
                      logger=RunLogger(tmp, enabled=False), progress=False)
    return TrainSetup(trainer, s.p * s.k)


def _batches(setup: TrainSetup):
    """Training batches forever (epoch after epoch)."""
    epoch = 0
    while True:
        setup.trainer.train_loader.sampler.set_epoch(epoch)
        yield from setup.trainer.train_loader
        epoch += 1


def split_step(setup: TrainSetup, batch: dict[str, torch.Tensor], fixed: torch.Tensor | None = None) -> tuple[float, ...]:
    """One step of Trainer._train_step's work, timed in three parts: data (to the device + augmentation),
    forward + losses + backward, optimizer (scaler step). `fixed`: a ready input batch instead (no data part)."""
    t, rt = setup.trainer, setup.trainer.rt
    dev = rt.device
    sync(dev)
    t0 = time.perf_counter()
    labels = batch["labels"].to(dev, non_blocking=True)
    modalities = batch["modalities"].to(dev, non_blocking=True)
    images = fixed if fixed is not None else t.augment(batch["images"].to(dev, non_blocking=True), modalities, t.generator)
    sync(dev)
    t1 = time.perf_counter()
    with rt.autocast():
        feats, logits = t.net(rt.to_input(images))
    loss = identity_loss(logits.float(), labels) + t.cmr(feats.float(), labels, modalities)
    t.optimizer.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    sync(dev)
    t2 = time.perf_counter()
    t.scaler.step(t.optimizer)
    t.scaler.update()
    sync(dev)
    return t1 - t0, t2 - t1, time.perf_counter() - t2, float(loss.detach())


def train_throughput(device: torch.device, s: Sizes, tmp: Path, amp: torch.dtype | None, compile: bool) -> dict[str, Any]:
    """images/s of the engine's own training step (Trainer._train_step, data path included) after warm-up, its
    split into data / forward-backward / optimizer, and the same step fed one constant ready batch."""
    setup = train_setup(device, s, tmp, amp, compile)
    batches = _batches(setup)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(s.warmup):
        setup.trainer._train_step(next(batches), 0, i)
    seconds, losses = timed(lambda: [setup.trainer._train_step(next(batches), 0, i)["loss"] for i in range(s.steps)], device)
    require(all(np.isfinite(losses)), f"non-finite training loss: {losses}")
    parts = [split_step(setup, next(batches)) for _ in range(s.steps)]
    batch = next(batches)
    fixed = setup.trainer.augment(batch["images"].to(device), batch["modalities"].to(device), setup.trainer.generator)
    constant = [split_step(setup, batch, fixed) for _ in range(s.steps)]
    data, fwd_bwd, opt = (statistics.median(p[i] for p in parts) for i in range(3))
    const_rate = setup.batch / statistics.median(c[1] + c[2] for c in constant)
    rate = setup.batch * s.steps / seconds
    return {"images_per_s": rate, "constant_batch_images_per_s": const_rate, "data_path_ratio": rate / const_rate,
            "data_s": data, "fwd_bwd_s": fwd_bwd, "optimizer_s": opt, "data_images_per_s": setup.batch / data,
            "peak_memory_gib": peak_memory_gib(device), "batch": setup.batch, "steps": s.steps}


def train_amp(device: torch.device) -> torch.dtype | None:
    """bf16 where it runs natively (CUDA, bf16 CPUs), else float32 (the dry run on other CPUs)."""
    return torch.bfloat16 if device.type == "cuda" or cpu_has_native_bf16() else None


def check_train(device: torch.device, s: Sizes) -> dict[str, Any]:
    """ResNet-50 MCJA 384x192 batch 128 (P 8 x K 16), bf16 autocast, channels-last, through the real data path."""
    with tempfile.TemporaryDirectory() as tmp:
        return train_throughput(device, s, Path(tmp), train_amp(device), compile=False)


def check_train_compiled(device: torch.device, s: Sizes) -> dict[str, Any]:
    """The same with train.compile=true (the dry run uses torch.compile's eager backend: inductor takes minutes)."""
    previous = torch.compile
    torch.compile = lambda model, **kw: previous(model, backend=s.compile_backend, **kw)  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = train_throughput(device, s, Path(tmp), train_amp(device), compile=True)
    finally:
        torch.compile = previous  # type: ignore[assignment]
    return {**out, "backend": s.compile_backend, "seconds_with_compilation": time.perf_counter() - start}


def check_fp16_scaler(device: torch.device, s: Sizes) -> dict[str, Any]:
    """fp16 autocast with the Trainer's grad scaler, a few steps on one fixed augmented batch: every loss finite,
    at least one step taken (the scaler skips steps whose gradients overflow, halving its scale), and the loss
    after the last step below the first."""
    if s.fp16_steps == 0:
        return {"skipped": "fp16 autocast is emulated on a CPU (2 steps of ResNet-18 at 64x32, batch 4, took 170 s on "
                           "this project's loaded 2-core machine) and train.amp=fp16 is CUDA-only: checked on the GPU"}
    with tempfile.TemporaryDirectory() as tmp:
        setup = train_setup(device, replace(s, p=s.fp16_pk[0], k=s.fp16_pk[1]), Path(tmp), torch.float16)
        t = setup.trainer
        require(t.scaler.is_enabled(), "the Trainer did not enable the grad scaler for fp16")
        batch = next(_batches(setup))
        fixed = t.augment(batch["images"].to(device), batch["modalities"].to(device), t.generator)
        losses, skipped = [], 0
        for _ in range(s.fp16_steps):
            scale = t.scaler.get_scale()
            losses.append(split_step(setup, batch, fixed)[3])
            skipped += int(t.scaler.get_scale() < scale)
        losses.append(split_step(setup, batch, fixed)[3])  # the loss after the last update
    require(all(np.isfinite(losses)), f"fp16 losses not finite: {losses}")
    require(skipped < s.fp16_steps, f"the grad scaler skipped all {skipped} fp16 steps (overflow every time)")
    require(losses[-1] < losses[0], f"fp16 loss did not fall over {s.fp16_steps} steps on one batch: {losses}")
    return {"losses": losses, "skipped_steps": skipped, "scale": float(t.scaler.get_scale())}


# ----------------------------------------------------------------------------------------------- DDP
def check_ddp(device: torch.device, s: Sizes) -> dict[str, Any]:
    """`torchrun --nproc_per_node 1 -m mcja train` (NCCL on a GPU, gloo on a CPU) for a few steps, then resumed."""
    from mcja.data.synthetic import make_synthetic

    backend = "nccl" if device.type == "cuda" else "gloo"
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic("sysu", Path(tmp) / "data", ids=24, seed=0, size=s.ddp_image, images_per_camera=3)
        run = Path(tmp) / "run"
        common = [f"data.root={root}", f"data.cache_dir={Path(tmp) / 'cache'}", f"data.image_size=[{s.ddp_image[0]},"
                  f"{s.ddp_image[1]}]", "data.p_size=4", "data.k_size=4", "train.steps_per_epoch=3",
                  f"train.device={device}", "eval.start=1", "eval.every=0", "eval.trials=2", "eval.mser=false"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "mcja"]
        first = _run([*torchrun, "train", "--config", "demo.yaml", "--out", str(run), "--quiet", *common, "optim.epochs=1"])
        require(f"DDP 1 process ({backend})" in first, f"the run did not report DDP over {backend}:\n{first[-1500:]}")
        require((run / "last.pt").exists(), f"no checkpoint {run / 'last.pt'} after the first run")
        second = _run([*torchrun, "train", "--resume", str(run), "--quiet", "optim.epochs=2"])
        require(f"resumed {run} after epoch 1" in second, f"the resumed run did not continue from epoch 1:\n{second[-1500:]}")
        require("epochs       2" in second, f"the resumed run did not finish epoch 2:\n{second[-1500:]}")
    return {"backend": backend, "world_size": 1}


def _run(cmd: list[str]) -> str:
    """stdout + stderr of a command that must succeed within 5 minutes."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    require(proc.returncode == 0, f"{' '.join(cmd[3:8])} ... exited {proc.returncode}:\n{out[-2000:]}")
    return out


# ----------------------------------------------------------------------------------------------- extraction
def check_extract(device: torch.device, s: Sizes) -> dict[str, Any]:
    """FeatureExtractor images/s in bf16 at the batch size, and its features against float32."""
    torch.manual_seed(0)
    model = MCJA(395, depth=s.depth, pretrained="none").eval()
    gen = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (s.extract_batch, 3, *s.image), dtype=torch.uint8, generator=gen)
    runs = {amp: FeatureExtractor(model, device=device, batch_size=s.extract_batch, image_size=s.image, amp=amp)
            for amp in ("bf16", "off")}
    feats = {amp: ex(images) for amp, ex in runs.items()}
    cosine = float((feats["bf16"] * feats["off"]).sum(1).min())
    figures: dict[str, Any] = {"min_cosine_bf16_vs_float32": cosine,
                               "max_abs_diff": float((feats["bf16"] - feats["off"]).abs().max())}
    for amp, ex in runs.items():
        ex(images)  # warm-up (cuDNN autotuning)
        seconds, _ = timed(lambda: [ex(images) for _ in range(s.extract_batches)], device)
        figures[f"{'bf16' if amp == 'bf16' else 'float32'}_images_per_s"] = s.extract_batch * s.extract_batches / seconds
    figures["onnxruntime_gpu"] = _onnx_gpu(model, s, images)
    require(cosine >= FEATURE_MIN_COSINE, f"bf16 features differ from float32: min cosine {cosine:.4f} "
            f"(tolerance {FEATURE_MIN_COSINE})")
    return figures


def _onnx_gpu(model: torch.nn.Module, s: Sizes, images: torch.Tensor) -> Any:
    """images/s of the exported model through onnxruntime's CUDA provider, or why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "skipped: onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu not installed)"
    from mcja.data.augment import normalize
    from mcja.inference import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "m.pt"
        from mcja.models import checkpoint_payload

        torch.save(checkpoint_payload(model, config={"data": {"image_size": list(s.image)}}), ckpt)
        export_onnx(ckpt, Path(tmp) / "m.onnx", dynamic_batch=True)
        session = ort.InferenceSession(str(Path(tmp) / "m.onnx"), providers=["CUDAExecutionProvider"])
        x = normalize(images).numpy()
        session.run(None, {"images": x})
        start = time.perf_counter()
        for _ in range(s.extract_batches):
            session.run(None, {"images": normalize(images).numpy()})
        return s.extract_batch * s.extract_batches / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------- protocols
def check_protocol_time(device: torch.device, s: Sizes) -> dict[str, Any]:
    """The SYSU-MM01 protocol (4 settings x trials) on device features: median of 3 runs."""
    d, q, g = sysu_features(s, views=False)
    args = _protocol_args(d, q.to(device), g.to(device))
    query, gallery = Side.of(*args[:3], name="query"), Side.of(*args[3:7], name="gallery")
    times = [timed(lambda: sysu_protocol(query, gallery, args[7], trials=s.trials), device)[0] for _ in range(3)]
    return {"seconds": statistics.median(times), "trials": s.trials}


def check_mser_time(device: torch.device, s: Sizes) -> dict[str, Any]:
    """MSER all-search (multi-shot on the GPU sizes) over the trials on 4-view device features: time, peak memory."""
    d, q, g = sysu_features(s, views=True)
    args = _protocol_args(d, q.to(device), g.to(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds, res = timed(lambda: evaluate_sysu(*args, "all", s.mser_shots, s.trials, rerank="mser"), device)
    return {"seconds": seconds, "shots": s.mser_shots, "trials": s.trials, "r1": res["r1"], "mAP": res["mAP"],
            "peak_memory_gib": peak_memory_gib(device)}


CHECKS: dict[str, Callable[[torch.device, Sizes], dict[str, Any]]] = {  # the slowest to set up (compilation) last
    "augment": check_augment,
    "softrank_cmr": check_softrank_cmr,
    "mser": check_mser,
    "evaluate_sysu": check_evaluate_sysu,
    "train": check_train,
    "fp16_scaler": check_fp16_scaler,
    "extract": check_extract,
    "protocol_time": check_protocol_time,
    "mser_time": check_mser_time,
    "ddp": check_ddp,
    "train_compiled": check_train_compiled,
}
