"""Train one stacked hourglass network on a spectrogram cache (checkpoints, exact resume).

``hourglass-sep train --cache train.npz -o model.pt [arch flags] [train flags]``

What one step does (Park et al. / the seed report):
    draw ``batch`` patches of 512 x ``frames`` (freq x frames) from the cache,
    forward the network, loss = sum over stacks of ``model.loss_terms`` (L1),
    Adam (default betas) at lr = lr0 * factor ** (step // every).

Sampling (``--sampling``):
    per_clip  Park's: a random permutation of the (long enough) clips per epoch; each
              patch takes the next clip of it and a random start in [0, T - frames].
    uniform   the seed's change: uniform over all (clip, start) pairs, start in [0, T - frames].
Clips shorter than ``frames`` cannot give a patch and are skipped with a warning.

Reproducibility.  All randomness comes from ``--seed``: the weights' initialisation from
the torch generator (``torch.manual_seed``) and every patch from one
``numpy.random.Generator`` (PCG64).  On the CPU the run is bit-reproducible -- same
config, seed, torch build *and thread count* => identical weights -- because
``torch.use_deterministic_algorithms(True)`` is switched on there; a different
``--threads`` may change the order of floating-point reductions, so keep it fixed
when you compare runs.  On CUDA the run uses cuDNN autotuning and bf16 autocast and
is *not* bit-reproducible (statistically equivalent only).

Checkpoints.  Every ``--checkpoint-every`` steps (and at the last step) the complete
state -- model, optimizer, numpy bit-generator and torch RNG states, sampler epoch,
step, history so far, elapsed time -- is written atomically to
``<workdir>/checkpoint.pt``.  A later run with the same configuration resumes from it
(a run killed with SIGKILL and restarted ends, on the CPU, with the same weights as an
uninterrupted one); a run with a different configuration is refused with the list of
differing keys.  Keys that do not change the trajectory (``--iterations``, as long as it
is not below the checkpoint's step, ``--snapshots``, ``--checkpoint-every``,
``--log-every``) may change between sessions; a change of device, precision or thread
count is allowed with a warning that the result is then not bit-identical.
The wall time between the last checkpoint and a kill is not counted in ``wall_seconds``.

Outputs (all written atomically, after the last step): the model (``-o``, format
``hourglass-sep-model/1``, loadable with ``torch.load(p, weights_only=True)``),
snapshots ``<stem>@<step><suffix>`` beside it, the history CSV and the JSON run
summary.  A non-finite loss stops the run before the bad update: the error names the
step, and the last checkpoint (whose weights are checked to be finite before it is
written) is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import math
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from .audio import atomic_path
from .cache import SpectrogramCache
from .errors import UserError
from .features import N_BINS
from .hardware import DEVICES, default_threads, resolve_device
from .model import (
    KINDS,
    LEGACY_KINDS,
    TARGETS,
    ArchConfig,
    build_model,
    count_parameters,
    loss_terms,
)

log = logging.getLogger(__name__)

MODEL_FORMAT = "hourglass-sep-model/1"
CHECKPOINT_FORMAT = "hourglass-sep-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
SAMPLING = ("per_clip", "uniform")

AMPS = ("auto", "off", "bf16")

# TrainConfig keys that change the training trajectory: they must match to resume.
TRAJECTORY_KEYS = (
    "lr",
    "lr_decay_every",
    "lr_decay_factor",
    "batch",
    "frames",
    "sampling",
    "seed",
    "precise_bn",
    "weight_average",
)
# Resolved execution settings: a change is allowed on resume, with a warning.
EXECUTION_KEYS = ("device", "amp", "threads")


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class TrainConfig:
    """Every training setting, with its default (Park et al.'s published schedule).

    ``lr_decay_every = 0`` disables the decay.  ``threads = None`` means
    ``OMP_NUM_THREADS`` when set, else ``os.cpu_count()``.  ``amp = "auto"`` is bf16
    autocast where the hardware has native bfloat16 (see resolve_amp), else fp32.  ``allow_cpu`` lets ``device="cuda"``
    fall back to the CPU (with a warning) when no GPU is visible.  ``precise_bn`` and
    ``weight_average`` change only what is saved (see precise_bn_state and WeightAverage).
    """

    iterations: int = 15000
    lr: float = 1e-4
    lr_decay_every: int = 12000
    lr_decay_factor: float = 0.2
    batch: int = 4
    frames: int = 64
    sampling: str = "per_clip"
    seed: int = 0
    checkpoint_every: int = 500
    snapshots: tuple[int, ...] = ()
    log_every: int = 50
    device: str = "auto"
    threads: int | None = None
    amp: str = "auto"
    allow_cpu: bool = False
    precise_bn: int = 0
    weight_average: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "snapshots", tuple(sorted({int(s) for s in self.snapshots})))
        problems = []
        for name in ("iterations", "batch", "frames", "log_every"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name}={getattr(self, name)} (must be >= 1)")
        for name in ("lr_decay_every", "checkpoint_every", "precise_bn"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name}={getattr(self, name)} (must be >= 0; 0 = never)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr={self.lr} (must be a positive number)")
        if not (math.isfinite(self.lr_decay_factor) and self.lr_decay_factor > 0):
            problems.append(f"lr_decay_factor={self.lr_decay_factor} (must be a positive number)")
        if not (0.0 <= float(self.weight_average) < 1.0):
            problems.append(
                f"weight_average={self.weight_average} (the decay of the weight average: 0 <= d < 1; "
                "0 = save the raw weights)"
            )
        elif self.weight_average and not self.precise_bn:
            problems.append(
                f"weight_average={self.weight_average} needs precise_bn > 0 (the BatchNorm running "
                "averages belong to the raw weights, not to their average)"
            )
        if self.sampling not in SAMPLING:
            problems.append(f"sampling={self.sampling!r} (choose {', '.join(SAMPLING)})")
        if self.device not in DEVICES:
            problems.append(f"device={self.device!r} (choose {', '.join(DEVICES)})")
        if self.amp not in AMPS:
            problems.append(f"amp={self.amp!r} (choose {', '.join(AMPS)})")
        if self.threads is not None and int(self.threads) < 1:
            problems.append(f"threads={self.threads} (must be >= 1)")
        bad = [s for s in self.snapshots if not 1 <= s <= self.iterations]
        if bad:
            problems.append(f"snapshots {bad} (must lie in 1..iterations={self.iterations})")
        if problems:
            raise UserError("invalid training settings: " + "; ".join(problems))

    def lr_at(self, step: int) -> float:
        """Learning rate of the step with 0-based index ``step``."""
        if not self.lr_decay_every:
            return float(self.lr)
        return float(self.lr * self.lr_decay_factor ** (step // self.lr_decay_every))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snapshots"] = list(self.snapshots)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def resolve_amp(requested: str, device: torch.device) -> str:
    """``off`` or ``bf16`` for ``requested`` in ``auto|off|bf16`` on ``device``.

    ``auto`` is bf16 autocast where the hardware computes bfloat16 natively (a CUDA GPU with
    bf16, a CPU with AVX512-BF16 or AMX) and fp32 elsewhere; the choice is recorded in
    train.json.  On the 2-core development CPU it makes a CPU-scale training step 2.2x faster.
    """
    from .hardware import bf16_support

    if requested == "off":
        return "off"
    ok, native, where = bf16_support(device)
    if requested == "bf16":
        if not ok:
            raise UserError(f"--amp bf16: {where} does not support bfloat16; use --amp off")
        return "bf16"
    if not native:
        log.info("%s has no native bfloat16; training in fp32", where)
    return "bf16" if native else "off"


# ---------------------------------------------------------------------- sampling
class PatchSampler:
    """Draws (clip index, start frame) pairs; all randomness from one numpy Generator.

    ``clip_frames`` are the frame counts of every clip in the cache; clips shorter than
    ``frames`` are left out (see :attr:`skipped`).
    """

    def __init__(self, clip_frames: np.ndarray, frames: int, mode: str, seed: int):
        if mode not in SAMPLING:
            raise ValueError(f"unknown sampling {mode!r}")
        self.clip_frames = np.asarray(clip_frames, dtype=np.int64)
        self.frames = int(frames)
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        ok = self.clip_frames >= self.frames
        self.eligible = np.flatnonzero(ok).astype(np.int64)
        self.skipped = np.flatnonzero(~ok).astype(np.int64)
        self.n_starts = self.clip_frames[self.eligible] - self.frames + 1  # starts 0..T-frames
        self.cum = np.cumsum(self.n_starts)
        self.perm = np.empty(0, dtype=np.int64)
        self.pos = 0
        self.epoch = 0

    @property
    def cases(self) -> int:
        """Number of distinct (clip, start) pairs."""
        return int(self.cum[-1]) if len(self.cum) else 0

    def batch(self, n: int) -> list[tuple[int, int]]:
        if self.mode == "uniform":
            k = self.rng.integers(0, self.cases, size=n)
            j = np.searchsorted(self.cum, k, side="right")
            starts = k - (self.cum[j] - self.n_starts[j])
            return [(int(self.eligible[a]), int(s)) for a, s in zip(j, starts)]
        out = []
        for _ in range(n):
            if self.pos >= len(self.perm):
                self.perm = self.rng.permutation(self.eligible)
                self.pos = 0
                self.epoch += 1
            clip = int(self.perm[self.pos])
            self.pos += 1
            start = int(self.rng.integers(0, self.clip_frames[clip] - self.frames + 1))
            out.append((clip, start))
        return out

    def state(self) -> dict:
        return {
            "bit_generator": json.dumps(self.rng.bit_generator.state),  # 128-bit ints: keep as text
            "perm": [int(x) for x in self.perm],
            "pos": int(self.pos),
            "epoch": int(self.epoch),
        }

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = json.loads(state["bit_generator"])
        self.perm = np.asarray(state["perm"], dtype=np.int64)
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])


def cache_fingerprint(cache: SpectrogramCache) -> str:
    """Digest of the cache's clip names, frame counts and scales (identifies its content)."""
    h = hashlib.sha1()
    h.update("\n".join(cache.clips).encode())
    h.update(np.ascontiguousarray(cache.offsets, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(cache.scale, dtype=np.float32).tobytes())
    return h.hexdigest()


def load_batch(cache: SpectrogramCache, picks, frames: int, device: torch.device):
    """(mix, voice, acc) tensors (B, 1, 512, frames) for the picked (clip, start) pairs."""
    parts = [cache.patch(i, s, frames) for i, s in picks]
    arr = np.stack([np.stack([p[k] for p in parts]) for k in range(3)])[
        :, :, None
    ]  # (3, B, 1, 512, F)
    t = torch.from_numpy(arr)
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    return t[0], t[1], t[2]


# -------------------------------------------------------------------- utilities
@contextlib.contextmanager
def _torch_settings(device: torch.device, threads: int):
    """Thread count, determinism and cuDNN settings for the run; restored afterwards."""
    prev = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.set_num_threads(threads)
            if device.type == "cpu":
                torch.use_deterministic_algorithms(True)
            else:
                torch.backends.cudnn.benchmark = True
            yield
    finally:
        torch.set_num_threads(prev[0])
        torch.use_deterministic_algorithms(prev[1], warn_only=prev[2])
        torch.backends.cudnn.benchmark = prev[3]


def _all_finite(tensors) -> bool:
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all().item()) if flags else True


def _cpu_state_dict(model: torch.nn.Module) -> dict:
    return {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
        for k, v in model.state_dict().items()
    }


def precise_bn_state(
    model: torch.nn.Module,
    cache: SpectrogramCache,
    cfg: TrainConfig,
    step: int,
    device: torch.device,
    autocast,
    *,
    owned: bool = False,
) -> dict:
    """The model's state_dict with every BatchNorm's running statistics re-estimated.

    During training BatchNorm keeps exponential averages (momentum 0.1) of batch statistics;
    with batches of 4 patches and weights that still move (lr 1e-2), those averages lag and
    are noisy, and the evaluated model pays for it (at CPU scale: 6.98 -> 8.59 dB voice GNSDR
    for "Ours" after 1,200 steps).  Here a copy of the model sees ``cfg.precise_bn`` batches of
    ``cfg.batch`` patches drawn uniformly from the training cache, in training mode without
    gradients, and BatchNorm stores the plain average of their statistics ("precise BN",
    Wu & Johnson 2021).  The patches come from a generator seeded by (seed, step), and the
    trained model, optimizer and sampler are untouched, so the training run itself does not
    change and the result is as deterministic as training.  ``owned``: ``model`` is a
    throw-away copy (e.g. the averaged weights) that may be changed instead of copied again.
    """
    import copy

    is_norm = lambda m: isinstance(m, torch.nn.modules.batchnorm._BatchNorm)  # noqa: E731
    if not cfg.precise_bn or not any(is_norm(m) for m in model.modules()):
        return _cpu_state_dict(model)
    clone = model if owned else copy.deepcopy(model)
    norms = [m for m in clone.modules() if is_norm(m)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = the plain mean over the batches
    seed = int(np.random.SeedSequence([int(cfg.seed), int(step), 0x9B]).generate_state(1)[0])
    sampler = PatchSampler(cache.frames, cfg.frames, "uniform", seed)
    clone.train()
    with torch.no_grad():
        for _ in range(int(cfg.precise_bn)):
            mix, _voice, _acc = load_batch(cache, sampler.batch(cfg.batch), cfg.frames, device)
            with autocast:
                clone(mix.contiguous(memory_format=torch.channels_last))
    return _cpu_state_dict(clone)


class WeightAverage:
    """Exponential moving average of the trained weights, saved instead of the raw weights.

    With a constant lr of 1e-2 and batches of 4 patches the weights jitter from step to
    step, and the weights of whichever step happens to be saved are a noisy sample of
    where the run is (at CPU scale "Ours" gains ~1 dB voice GNSDR from averaging).  The
    average ``avg <- d_t avg + (1 - d_t) w`` after every optimizer step uses the warm-up
    decay ``d_t = min(d, (1 + t) / (10 + t))`` so that short runs are not dominated by
    the initial weights.  Only the parameters are averaged; BatchNorm statistics for the
    averaged weights come from precise_bn_state.  The optimizer never sees the average, so
    training itself is unchanged; the average is part of the checkpoint, so a resumed run
    ends with the same average as an uninterrupted one.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.params = [p.detach().float().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        torch._foreach_lerp_(self.params, [p.detach().float() for p in model.parameters()], 1.0 - d)
        self.updates += 1

    def averaged_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``model`` holding the averaged parameters (its buffers are the model's)."""
        import copy

        clone = copy.deepcopy(model)
        with torch.no_grad():
            for p, a in zip(clone.parameters(), self.params):
                p.copy_(a)
        return clone

    def state(self) -> dict:
        return {
            "decay": self.decay,
            "updates": self.updates,
            "params": [a.cpu() for a in self.params],
        }

    def load_state(self, state: dict, device: torch.device) -> None:
        if len(state["params"]) != len(self.params):
            raise ValueError("the checkpoint's weight average has a different number of tensors")
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.params = [a.to(device=device, dtype=torch.float32).clone() for a in state["params"]]


def snapshot_path(out_path: str | Path, step: int) -> Path:
    """``<stem>@<step><suffix>`` beside the model."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}@{step}{out_path.suffix}")


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Progress:
    """tqdm bar on a terminal, else log lines (every ``log_every`` steps or 60 s)."""

    def __init__(self, total: int, initial: int, tty: bool, log_every: int):
        self.total, self.initial, self.log_every = total, initial, log_every
        self.t0 = time.perf_counter()
        self.last_log = self.t0
        self.bar = None
        if tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit="step", desc="train", dynamic_ncols=True
            )

    def update(self, done: int, loss: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", refresh=False)
            return
        now = time.perf_counter()
        if done % self.log_every and done != self.total and now - self.last_log < 60:
            return
        self.last_log = now
        rate = (done - self.initial) / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "step %d/%d (%.1f%%) loss %.5g lr %.3g %.3g steps/s ETA %s",
            done,
            self.total,
            100 * done / self.total,
            loss,
            lr,
            rate,
            _fmt_duration(eta),
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _compare_configs(saved: dict, current: dict) -> tuple[list[str], list[str]]:
    """(differences that forbid resuming, differences that only break bit-identity)."""
    hard, soft = [], []
    for k in sorted(set(saved["arch"]) | set(current["arch"])):
        a, b = saved["arch"].get(k), current["arch"].get(k)
        if a != b:
            hard.append(f"arch.{k}: checkpoint {a!r}, now {b!r}")
    for k in TRAJECTORY_KEYS:
        a, b = saved["train"].get(k, getattr(TrainConfig, k, None)), current["train"].get(k)
        if a != b:
            hard.append(f"{k}: checkpoint {a!r}, now {b!r}")
    if saved["cache"] != current["cache"]:
        hard.append(f"cache content: checkpoint {saved['cache'][:12]}, now {current['cache'][:12]}")
    for k in EXECUTION_KEYS:
        a, b = saved["execution"].get(k), current["execution"].get(k)
        if a != b:
            soft.append(f"{k}: checkpoint {a!r}, now {b!r}")
    return hard, soft


def _resume_problem(
    ck: dict, current: dict, cfg: TrainConfig, workdir: Path
) -> tuple[str | None, list[str]]:
    """(why checkpoint ``ck`` cannot be resumed or None, execution differences)."""
    path = workdir / CHECKPOINT_NAME
    hard, soft = _compare_configs(ck, current)
    if hard:
        return (
            f"{path}: the checkpoint (step {ck['step']}) was written with a different configuration "
            f"({'; '.join(hard)})"
        ), soft
    if ck["step"] > cfg.iterations:
        return (
            f"{path}: the checkpoint is at step {ck['step']}, past --iterations {cfg.iterations}",
            soft,
        )
    missing = [
        s for s in cfg.snapshots if s < ck["step"] and not (workdir / f"snapshot@{s}.pt").exists()
    ]
    if missing:
        return (
            f"{path}: the checkpoint is at step {ck['step']} but no snapshot of step(s) {missing} "
            "was kept"
        ), soft
    return None, soft


# ---------------------------------------------------------------------- training
def train(
    cache_path: str | Path,
    out_path: str | Path,
    arch: ArchConfig,
    cfg: TrainConfig,
    *,
    workdir: str | Path | None = None,
    history_path: str | Path | None = None,
    info_path: str | Path | None = None,
    snapshot_dir: str | Path | None = None,
    restart_on_mismatch: bool = False,
    progress: bool | None = None,
) -> dict:
    """Train ``arch`` on the cache at ``cache_path``; write the model and return the run summary.

    ``workdir`` defaults to ``<out_path>.work``; ``history_path`` and ``info_path`` to
    ``<stem>.history.csv`` and ``<stem>.train.json`` beside ``out_path``.  Snapshots go
    beside the model as ``<stem>@<step><suffix>``, or to ``<snapshot_dir>/step<step>.pt``
    (the folder is created even when there are none).  ``restart_on_mismatch``: discard
    a checkpoint that cannot be resumed (with a warning) instead of refusing.  ``progress``:
    tqdm bar (True), log lines (False), or a bar when stderr is a terminal (None).
    """
    t_start = time.perf_counter()
    out_path = Path(out_path)
    workdir = Path(workdir) if workdir is not None else out_path.with_name(out_path.name + ".work")
    history_path = (
        Path(history_path)
        if history_path is not None
        else out_path.with_name(out_path.stem + ".history.csv")
    )
    info_path = (
        Path(info_path)
        if info_path is not None
        else out_path.with_name(out_path.stem + ".train.json")
    )
    if progress is None:
        progress = sys.stderr.isatty()

    if cfg.frames % arch.time_multiple:
        raise UserError(
            f"--frames {cfg.frames} is not a multiple of {arch.time_multiple} (2 ** poolings, "
            f"poolings={arch.poolings}); use e.g. --frames {max(1, round(cfg.frames / arch.time_multiple)) * arch.time_multiple}"
        )
    cache = SpectrogramCache(cache_path)
    sampler = PatchSampler(cache.frames, cfg.frames, cfg.sampling, cfg.seed)
    if len(sampler.skipped):
        names = [cache.clips[i] for i in sampler.skipped]
        log.warning(
            "%s: skipping %d clip(s) shorter than %d frames: %s%s",
            cache.path,
            len(names),
            cfg.frames,
            ", ".join(names[:5]),
            " ..." if len(names) > 5 else "",
        )
    if not len(sampler.eligible):
        raise UserError(
            f"{cache.path}: no clip is at least {cfg.frames} frames long (longest: "
            f"{int(cache.frames.max()) if len(cache) else 0}); lower --frames or use longer clips"
        )

    device = resolve_device(cfg.device, cfg.allow_cpu)
    amp = resolve_amp(cfg.amp, device)
    threads = int(cfg.threads) if cfg.threads is not None else default_threads()
    fingerprint = cache_fingerprint(cache)
    current = {
        "arch": arch.to_dict(),
        "train": cfg.to_dict(),
        "cache": fingerprint,
        "execution": {"device": device.type, "amp": amp, "threads": threads},
    }
    ckpt_path = workdir / CHECKPOINT_NAME

    with _torch_settings(device, threads):
        torch.manual_seed(cfg.seed)
        model = build_model(arch)
        n_params = count_parameters(model)
        model.to(device)
        model.to(
            memory_format=torch.channels_last
        )  # faster on GPUs and CPUs alike (1.3x on the CPU)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        average = WeightAverage(model, cfg.weight_average) if cfg.weight_average else None

        step = 0
        history: list[list[float]] = []
        acc_sum = np.zeros(arch.stacks + 1)
        acc_n = 0
        wall_before = loop_before = 0.0
        sessions = 1
        resumed_from = None

        # -------------------------------------------------------- resume or fresh
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in workdir.glob(".*.part*"):  # temporaries of a killed write
            with contextlib.suppress(OSError):
                stale.unlink()
        ck = None
        if ckpt_path.exists():
            try:
                ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
                if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError(f"not a {CHECKPOINT_FORMAT} checkpoint")
            except Exception as exc:
                problem, ck, soft = f"{ckpt_path}: unreadable checkpoint ({exc})", None, []
            else:
                problem, soft = _resume_problem(ck, current, cfg, workdir)
            if problem and not restart_on_mismatch:
                raise UserError(
                    f"{problem}; rerun with the original settings to resume it, or delete the work directory "
                    f"to start fresh: rm -r {workdir}"
                )
            if problem:
                log.warning("%s; discarding it and starting fresh (--restart-on-mismatch)", problem)
                ckpt_path.unlink()
                ck = None
        if ck is not None:
            if soft:
                log.warning(
                    "resuming with different execution settings (%s): the result will not be "
                    "bit-identical to an uninterrupted run",
                    "; ".join(soft),
                )
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sampler.load_state(ck["sampler"])
            if average is not None:
                average.load_state(ck["weight_average"], device)
            torch.set_rng_state(ck["torch_rng"])
            if device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ck["cuda_rng"])
            step = resumed_from = int(ck["step"])
            history = [list(r) for r in ck["history"]]
            acc_sum = np.asarray(ck["log_acc"]["sum"], dtype=np.float64)
            acc_n = int(ck["log_acc"]["n"])
            wall_before = float(ck["wall_seconds"])
            loop_before = float(ck["loop_seconds"])
            sessions = int(ck.get("sessions", 1)) + 1
            log.info(
                "resuming from %s at step %d of %d (session %d)",
                ckpt_path,
                step,
                cfg.iterations,
                sessions,
            )
            del ck
        else:
            for old in workdir.glob(
                "snapshot@*.pt"
            ):  # left by an earlier run that kept no checkpoint
                old.unlink()
            log.info(
                "training %s (%s parameters) on %s for %d steps: device %s, amp %s, %d thread(s), %s sampling "
                "of %d clips (%d cases)",
                arch.kind,
                f"{n_params:,}",
                cache.path,
                cfg.iterations,
                device.type,
                amp,
                threads,
                cfg.sampling,
                len(sampler.eligible),
                sampler.cases,
            )

        columns = (
            ["step", "loss"]
            + [f"loss_stack{i + 1}" for i in range(arch.stacks)]
            + ["lr", "seconds"]
        )
        last_ckpt = resumed_from
        t_session = time.perf_counter()
        loop_start = time.perf_counter()

        def wall_now() -> float:
            return wall_before + time.perf_counter() - t_session

        autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16)
            if amp == "bf16"
            else contextlib.nullcontext()
        )
        evaluated_state: dict[
            int, dict
        ] = {}  # step -> state_dict with precise BN (the last one only)

        def eval_state(done: int) -> dict:
            if done not in evaluated_state:
                evaluated_state.clear()
                if average is not None:
                    evaluated_state[done] = precise_bn_state(
                        average.averaged_model(model),
                        cache,
                        cfg,
                        done,
                        device,
                        autocast,
                        owned=True,
                    )
                else:
                    evaluated_state[done] = precise_bn_state(
                        model, cache, cfg, done, device, autocast
                    )
            return evaluated_state[done]

        def model_record(done: int, wall: float) -> dict:
            return {
                "format": MODEL_FORMAT,
                "arch": arch.to_dict(),
                "state_dict": eval_state(done),
                "train": {
                    **cfg.to_dict(),
                    "threads": threads,
                    "amp": amp,
                    "cache": str(cache.path),
                },
                "bn_statistics": (
                    f"precise: plain mean over {cfg.precise_bn} batches of {cfg.batch}"
                    if cfg.precise_bn
                    else "running averages of training (momentum 0.1)"
                ),
                "weights": (
                    f"exponential moving average, decay {cfg.weight_average:g} (warm-up min(d, (1+t)/(10+t)))"
                    if average is not None
                    else "the weights of the last step"
                ),
                "step": int(done),
                "wall_seconds": float(wall),
                "device": device.type,
                "parameters": int(n_params),
                "torch": str(torch.__version__),
            }

        def save_checkpoint(done: int) -> None:
            tensors = list(model.state_dict().values())
            tensors += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
            if not _all_finite(tensors):
                raise UserError(
                    f"the weights became non-finite after step {done} (lr {cfg.lr_at(done - 1):.3g}); not writing "
                    f"them: the last good checkpoint ({_ckpt_desc()}) is kept; lower --lr, check the cache for "
                    f"inf/nan, and delete {workdir} to restart"
                )
            ck = {
                "format": CHECKPOINT_FORMAT,
                "step": int(done),
                "arch": current["arch"],
                "train": current["train"],
                "cache": fingerprint,
                "execution": current["execution"],
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "sampler": sampler.state(),
                "weight_average": average.state() if average is not None else None,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                "history": history,
                "log_acc": {"sum": [float(x) for x in acc_sum], "n": int(acc_n)},
                "wall_seconds": wall_now(),
                "loop_seconds": loop_before + time.perf_counter() - loop_start,
                "sessions": sessions,
            }
            with atomic_path(ckpt_path) as tmp:
                torch.save(ck, tmp)

        def _ckpt_desc() -> str:
            return (
                f"step {last_ckpt} in {ckpt_path}"
                if last_ckpt
                else f"none was written yet; see {workdir}"
            )

        bar = _Progress(cfg.iterations, step, progress, cfg.log_every)
        try:
            while step < cfg.iterations:
                lr = cfg.lr_at(step)
                for g in opt.param_groups:
                    g["lr"] = lr
                mix, voice, acc = load_batch(cache, sampler.batch(cfg.batch), cfg.frames, device)
                mix = mix.contiguous(memory_format=torch.channels_last)
                with autocast:
                    preds = model(mix)
                terms = torch.stack(
                    [loss_terms(p.float(), mix, voice, acc, arch.target) for p in preds]
                )
                loss = terms.sum()
                values = (
                    torch.cat([loss.detach()[None], terms.detach()])
                    .cpu()
                    .numpy()
                    .astype(np.float64)
                )
                if not np.isfinite(values).all():
                    raise UserError(
                        f"the loss became non-finite ({values[0]}) at step {step + 1} of {cfg.iterations} "
                        f"(lr {lr:.3g}); stopped before updating the weights, the last good checkpoint "
                        f"({_ckpt_desc()}) is kept. Lower --lr or check {cache.path} for inf/nan values, then "
                        f"rerun (it resumes from that checkpoint) or delete {workdir} to restart"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if average is not None:
                    average.update(model)
                step += 1
                acc_sum += values
                acc_n += 1
                if step % cfg.log_every == 0 or step == cfg.iterations:
                    mean = acc_sum / acc_n
                    history.append([step, *(float(x) for x in mean), lr, round(wall_now(), 3)])
                    acc_sum[:] = 0
                    acc_n = 0
                if step in cfg.snapshots:
                    with atomic_path(workdir / f"snapshot@{step}.pt") as tmp:
                        torch.save(model_record(step, wall_now()), tmp)
                if cfg.checkpoint_every and (
                    step % cfg.checkpoint_every == 0 or step == cfg.iterations
                ):
                    save_checkpoint(step)
                    last_ckpt = step
                bar.update(step, float(values[0]), lr)
        finally:
            bar.close()
        loop_seconds = loop_before + time.perf_counter() - loop_start

        # ------------------------------------------------------------- outputs
        if not _all_finite(
            list(model.state_dict().values()) + (average.params if average is not None else [])
        ):
            raise UserError(
                f"the final weights (step {step}) are not finite; not writing {out_path}; lower --lr"
            )
        wall = wall_now()
        record = model_record(step, wall)
        with atomic_path(history_path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for row in history:
                w.writerow(
                    [
                        int(row[0]),
                        *(f"{x:.8g}" for x in row[1:-2]),
                        f"{row[-2]:.8g}",
                        f"{row[-1]:.3f}",
                    ]
                )
        snap_paths = {}
        if snapshot_dir is not None:
            Path(snapshot_dir).mkdir(parents=True, exist_ok=True)
        for s in cfg.snapshots:
            src = workdir / f"snapshot@{s}.pt"
            dst = (
                Path(snapshot_dir) / f"step{s}.pt"
                if snapshot_dir is not None
                else snapshot_path(out_path, s)
            )
            if s == step and not src.exists():
                with atomic_path(dst) as tmp:
                    torch.save(record, tmp)
            else:
                with atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)
            snap_paths[str(s)] = str(dst)
        with atomic_path(out_path) as tmp:
            torch.save(record, tmp)
        steps_run = step - (resumed_from or 0)
        info = {
            "model": str(out_path),
            "parameters": int(n_params),
            "steps": int(step),
            "wall_seconds": round(wall, 3),
            "loop_seconds": round(loop_seconds, 3),
            "device": device.type,
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "steps_per_second": (step / loop_seconds) if loop_seconds > 0 else None,
            "final_loss": float(history[-1][1]) if history else None,
            "final_loss_stacks": [float(x) for x in history[-1][2 : 2 + arch.stacks]]
            if history
            else None,
            "threads": threads,
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "python": platform.python_version(),
            "amp": amp,
            "deterministic": device.type == "cpu",
            "arch": arch.to_dict(),
            "train": cfg.to_dict(),
            "cache": {
                "path": str(cache.path),
                "clips": len(cache),
                "used_clips": int(len(sampler.eligible)),
                "skipped_clips": [cache.clips[i] for i in sampler.skipped],
                "cases": sampler.cases,
                "fingerprint": fingerprint,
                "bins": N_BINS,
            },
            "history": str(history_path),
            "snapshots": snap_paths,
            "workdir": str(workdir),
            "resumed_from": resumed_from,
            "sessions": sessions,
            "steps_this_session": int(steps_run),
            "session_seconds": round(time.perf_counter() - t_start, 3),
        }
        with atomic_path(info_path) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
    return info


# ---------------------------------------------------------------------------- CLI
def _int_list(text: str) -> tuple[int, ...]:
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    a, t = ArchConfig(), TrainConfig()
    p.add_argument(
        "--cache", required=True, help="training spectrogram cache (from `hourglass-sep cache`)"
    )
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    g = p.add_argument_group("architecture")
    g.add_argument("--kind", choices=KINDS + tuple(LEGACY_KINDS), default=a.kind)
    g.add_argument("--stacks", type=int, default=a.stacks)
    g.add_argument(
        "--channels", type=int, default=a.channels, help="first-level hourglass channels (F)"
    )
    g.add_argument("--growth", type=int, default=a.growth, help="channels added per pooling")
    g.add_argument("--stem", type=_int_list, default=",".join(map(str, a.stem)), help="stem widths")
    g.add_argument("--poolings", type=int, default=a.poolings)
    g.add_argument("--target", choices=list(TARGETS), default=a.target)
    g = p.add_argument_group("training")
    g.add_argument("--iterations", type=int, default=t.iterations)
    g.add_argument("--lr", type=float, default=t.lr, help="initial Adam learning rate")
    g.add_argument(
        "--lr-decay-every",
        type=int,
        default=t.lr_decay_every,
        help="multiply the lr by --lr-decay-factor every this many steps (0 = constant lr)",
    )
    g.add_argument("--lr-decay-factor", type=float, default=t.lr_decay_factor)
    g.add_argument(
        "--precise-bn",
        type=int,
        default=t.precise_bn,
        metavar="N",
        help="before saving the model and each snapshot, re-estimate the BatchNorm statistics as "
        "the plain mean over N batches of training patches (0 = keep the running averages, "
        "the seed's way)",
    )
    g.add_argument(
        "--weight-average",
        type=float,
        default=t.weight_average,
        metavar="D",
        help="save the exponential moving average of the weights (decay D, e.g. 0.99; needs "
        "--precise-bn) instead of the last step's weights (0 = off, the seed's way)",
    )
    g.add_argument("--batch", type=int, default=t.batch)
    g.add_argument(
        "--frames", type=int, default=t.frames, help="patch length (frames); 512 bins x frames"
    )
    g.add_argument(
        "--sampling",
        choices=SAMPLING,
        default=t.sampling,
        help="per_clip: Park's (a permutation of clips per epoch, random start); "
        "uniform: the seed's (uniform over all (clip, start) pairs)",
    )
    g.add_argument("--seed", type=int, default=t.seed)
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=t.checkpoint_every,
        help="write a resumable checkpoint to --workdir every N steps (0 = never)",
    )
    g.add_argument(
        "--snapshots",
        type=_int_list,
        default="",
        help="comma-separated steps at which to also save <stem>@<step>.pt beside the model",
    )
    g.add_argument(
        "--log-every",
        type=int,
        default=t.log_every,
        help="history.csv row every N steps (+ the last)",
    )
    g.add_argument(
        "--snapshot-dir",
        default=None,
        help="write the snapshots as DIR/step<step>.pt instead of <stem>@<step>.pt beside the model",
    )
    g.add_argument(
        "--restart-on-mismatch",
        action="store_true",
        help="discard a checkpoint in --workdir that cannot be resumed (different settings) and start "
        "fresh, instead of refusing",
    )
    g = p.add_argument_group("outputs and execution")
    g.add_argument("--workdir", default=None, help="checkpoint folder (default: <output>.work)")
    g.add_argument(
        "--history", default=None, help="loss history CSV (default: <output stem>.history.csv)"
    )
    g.add_argument(
        "--info", default=None, help="run summary JSON (default: <output stem>.train.json)"
    )
    g.add_argument("--device", choices=DEVICES, default=t.device)
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: OMP_NUM_THREADS, else all cores); keep it fixed for bit-identical CPU runs",
    )
    g.add_argument(
        "--amp",
        choices=AMPS,
        default=t.amp,
        help="auto: bf16 autocast where the GPU/CPU computes bf16 natively (AVX512-BF16, AMX), else fp32; off: fp32",
    )
    g.add_argument(
        "--allow-cpu",
        action="store_true",
        help="with --device cuda and no visible GPU, fall back to the CPU with a warning instead of failing",
    )
    g.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")


def run(args: argparse.Namespace) -> int:
    stem = args.stem if isinstance(args.stem, tuple) else _int_list(args.stem)
    snapshots = args.snapshots if isinstance(args.snapshots, tuple) else _int_list(args.snapshots)
    try:
        arch = ArchConfig(
            kind=args.kind,
            stacks=args.stacks,
            channels=args.channels,
            growth=args.growth,
            stem=stem,
            poolings=args.poolings,
            target=args.target,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cfg = TrainConfig(
        iterations=args.iterations,
        lr=args.lr,
        lr_decay_every=args.lr_decay_every,
        lr_decay_factor=args.lr_decay_factor,
        batch=args.batch,
        frames=args.frames,
        sampling=args.sampling,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        snapshots=snapshots,
        log_every=args.log_every,
        device=args.device,
        threads=args.threads,
        amp=args.amp,
        allow_cpu=args.allow_cpu,
        precise_bn=args.precise_bn,
        weight_average=args.weight_average,
    )
    info = train(
        args.cache,
        args.output,
        arch,
        cfg,
        workdir=args.workdir,
        history_path=args.history,
        info_path=args.info,
        snapshot_dir=args.snapshot_dir,
        restart_on_mismatch=args.restart_on_mismatch,
        progress=False if args.no_progress else None,
    )
    sps = info["steps_per_second"]
    print(
        f"{args.output}: {info['steps']} steps, final loss {info['final_loss']:.5g}, "
        f"{info['wall_seconds']:.1f} s on {info['device']}"
        + (f" ({sps:.3g} steps/s)" if sps else "")
    )
    return 0
