"""Train one stacked hourglass network on a spectrogram cache (checkpoints, exact resume).

The settings (their defaults and help) are the fields of :class:`TrainConfig` and
:class:`ArchConfig` in :mod:`hourglass_sep.nets.settings`; the CLI options are made from them.
The run itself is a :class:`Trainer`: resume or start, steps, checkpoints, finish.

``hourglass-sep train --cache train.npz -o model.pt [arch flags] [train flags]``

What one step does (Park et al. / the report):
    draw ``batch`` patches of 512 x ``frames`` (freq x frames) from the cache,
    forward the network, loss = sum over stacks of ``model.loss_terms`` (L1),
    Adam (default betas) at lr = lr0 * factor ** (step // every).

Sampling (``--sampling``):
    per_clip  Park's: a random permutation of the (long enough) clips per epoch; each
              patch takes the next clip of it and a random start in [0, T - frames].
    uniform   the report's change: uniform over all (clip, start) pairs, start in [0, T - frames].
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hourglass_sep.data.audio import atomic_path
from hourglass_sep.data.cache import SpectrogramCache
from hourglass_sep.data.features import N_BINS
from hourglass_sep.errors import UserError
from hourglass_sep.nets.hardware import default_threads, resolve_device
from hourglass_sep.nets.inference import CHECKPOINT_FORMAT, MODEL_FORMAT
from hourglass_sep.nets.model import build_model, count_parameters, loss_terms
from hourglass_sep.nets.settings import (
    AMP_PRECISIONS,
    LEGACY_KINDS,
    SAMPLING,
    ArchConfig,
    TrainConfig,
    add_setting_arguments,
    from_namespace,
    resume_keys,
)

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"

# TrainConfig keys that change the training trajectory: they must match to resume.
TRAJECTORY_KEYS = resume_keys(TrainConfig, "match")
# Resolved execution settings: a change is allowed on resume, with a warning.
EXECUTION_KEYS = resume_keys(TrainConfig, "warn")


def resolve_amp(requested: str, device: torch.device) -> str:
    """The autocast, ``off`` or ``bf16``, for the precision ``requested`` (``auto|fp32|bf16``;
    the old ``--amp`` value ``off`` is ``fp32``) on ``device``.

    ``auto`` is bf16 autocast where the hardware computes bfloat16 natively (a CUDA GPU with
    bf16, a CPU with AVX512-BF16 or AMX) and fp32 elsewhere; the choice is recorded in
    train.json.  On the 2-core development CPU it makes a CPU-scale training step 2.2x faster.
    """
    from hourglass_sep.nets.hardware import bf16_support

    if requested in ("off", "fp32"):
        return "off"
    ok, native, where = bf16_support(device)
    if requested == "bf16":
        if not ok:
            raise UserError(
                f"--precision bf16: {where} does not support bfloat16; use --precision fp32"
            )
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
        """The next ``n`` (clip, start) pairs."""
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
        """Everything needed to continue the same sequence of patches (JSON-safe)."""
        return {
            "bit_generator": json.dumps(self.rng.bit_generator.state),  # 128-bit ints: keep as text
            "perm": [int(x) for x in self.perm],
            "pos": int(self.pos),
            "epoch": int(self.epoch),
        }

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state`."""
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
    """True when every floating-point tensor holds only finite values (one sync)."""
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all().item()) if flags else True


def _cpu_state_dict(model: torch.nn.Module) -> dict:
    """A contiguous CPU copy of the model's state_dict (what a model file stores)."""
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
    # BatchNorm in training mode, everything else (dropout: the U-Net's) as at inference: the
    # statistics are those of the evaluated network, and no random draw moves the training RNG
    clone.eval()
    for m in norms:
        m.train()
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
        """Fold in the weights after one optimizer step."""
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
        """The average for the checkpoint (CPU tensors)."""
        return {
            "decay": self.decay,
            "updates": self.updates,
            "params": [a.cpu() for a in self.params],
        }

    def load_state(self, state: dict, device: torch.device) -> None:
        """Continue from :meth:`state` on ``device``."""
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
    """``h:mm:ss`` for an ETA; ``?`` when unknown."""
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
        """One step done: move the bar, or log when a line is due."""
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
        """Close the bar (log lines need nothing)."""
        if self.bar is not None:
            self.bar.close()


def _compare_configs(saved: dict, current: dict) -> tuple[list[str], list[str]]:
    """(differences that forbid resuming, differences that only break bit-identity)."""
    hard, soft = [], []
    # a checkpoint written before --amp became --precision records its autocast as "amp"
    execution = dict(saved["execution"])
    if "precision" not in execution and execution.get("amp") in AMP_PRECISIONS:
        execution["precision"] = AMP_PRECISIONS[execution["amp"]]
    # a checkpoint written before a rename holds the old name of its kind
    kind = saved["arch"].get("kind")
    saved_arch = {**saved["arch"], "kind": LEGACY_KINDS.get(kind, kind)}
    for k in sorted(set(saved_arch) | set(current["arch"])):
        a, b = saved_arch.get(k), current["arch"].get(k)
        if a != b:
            hard.append(f"arch.{k}: checkpoint {a!r}, now {b!r}")
    for k in TRAJECTORY_KEYS:
        a, b = saved["train"].get(k, getattr(TrainConfig, k, None)), current["train"].get(k)
        if a != b:
            hard.append(f"{k}: checkpoint {a!r}, now {b!r}")
    if saved["cache"] != current["cache"]:
        hard.append(f"cache content: checkpoint {saved['cache'][:12]}, now {current['cache'][:12]}")
    for k in EXECUTION_KEYS:
        a, b = execution.get(k), current["execution"].get(k)
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
            f"{path}: the checkpoint (step {ck['step']}) was written with a different "
            f"configuration ({'; '.join(hard)})"
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
@dataclass(frozen=True)
class RunPaths:
    """Where one run writes: the model, its work directory (checkpoint), history, summary."""

    out: Path
    workdir: Path
    history: Path
    info: Path
    snapshot_dir: Path | None

    @classmethod
    def of(cls, out_path, workdir=None, history_path=None, info_path=None, snapshot_dir=None):
        """The paths of ``train()``'s arguments, defaults filled in beside ``out_path``."""
        out = Path(out_path)
        return cls(
            out=out,
            workdir=Path(workdir) if workdir is not None else out.with_name(out.name + ".work"),
            history=Path(history_path)
            if history_path is not None
            else out.with_name(out.stem + ".history.csv"),
            info=Path(info_path)
            if info_path is not None
            else out.with_name(out.stem + ".train.json"),
            snapshot_dir=Path(snapshot_dir) if snapshot_dir is not None else None,
        )

    @property
    def checkpoint(self) -> Path:
        """The one checkpoint file of the run."""
        return self.workdir / CHECKPOINT_NAME

    def snapshot(self, step: int) -> Path:
        """Where the snapshot of ``step`` is delivered."""
        if self.snapshot_dir is not None:
            return self.snapshot_dir / f"step{step}.pt"
        return snapshot_path(self.out, step)


def open_training_cache(
    cache_path: str | Path, arch: ArchConfig, cfg: TrainConfig
) -> tuple[SpectrogramCache, PatchSampler]:
    """The cache and its patch sampler; clear errors before any model is built."""
    if cfg.frames % arch.time_multiple:
        near = max(1, round(cfg.frames / arch.time_multiple)) * arch.time_multiple
        raise UserError(
            f"--frames {cfg.frames} is not a multiple of {arch.time_multiple} (2 ** poolings, "
            f"poolings={arch.poolings}); use e.g. --frames {near}"
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
    return cache, sampler


class Trainer:
    """One training run: the model, optimizer, sampler and bookkeeping of a session.

    ``train()`` drives it: :meth:`resume_or_start`, :meth:`run` (one :meth:`step` after the
    other, with history rows, snapshots and checkpoints), :meth:`finish`.  Build it inside
    ``_torch_settings``: the model's initial weights come from the torch generator seeded
    here with ``cfg.seed``.
    """

    def __init__(self, cache, sampler, arch, cfg, paths: RunPaths, device, amp, threads):
        """Seed torch, build the model and optimizer; a fresh run's state at step 0."""
        self.cache, self.sampler, self.arch, self.cfg, self.paths = cache, sampler, arch, cfg, paths
        self.device, self.amp, self.threads = device, amp, threads
        self.precision = AMP_PRECISIONS[amp]  # the resolved precision: fp32 or bf16
        self.fingerprint = cache_fingerprint(cache)
        self.current = {
            "arch": arch.to_dict(),
            "train": cfg.to_dict(),
            "cache": self.fingerprint,
            "execution": {"device": device.type, "precision": self.precision, "threads": threads},
        }
        torch.manual_seed(cfg.seed)
        self.model = build_model(arch)
        self.n_params = count_parameters(self.model)
        self.model.to(device)
        # faster on GPUs and CPUs alike (1.3x on the CPU)
        self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.average = WeightAverage(self.model, cfg.weight_average) if cfg.weight_average else None
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16)
            if amp == "bf16"
            else contextlib.nullcontext()
        )
        self.step_done = 0
        self.history: list[list[float]] = []
        self.acc_sum = np.zeros(arch.stacks + 1)
        self.acc_n = 0
        self.wall_before = self.loop_before = 0.0
        self.sessions = 1
        self.resumed_from: int | None = None
        self.last_ckpt: int | None = None
        self._evaluated: dict[int, dict] = {}  # step -> saved state_dict (the last one only)
        self.t_session = self.loop_start = time.perf_counter()

    # ------------------------------------------------------------ resume or start
    def resume_or_start(self, restart_on_mismatch: bool) -> None:
        """Continue from the work directory's checkpoint when it fits this run, else start."""
        workdir = self.paths.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in workdir.glob(".*.part*"):  # temporaries of a killed write
            with contextlib.suppress(OSError):
                stale.unlink()
        ck, soft = self._usable_checkpoint(restart_on_mismatch)
        if ck is not None:
            self._restore(ck, soft)
        else:
            for old in workdir.glob("snapshot@*.pt"):  # left by an earlier run without checkpoint
                old.unlink()
            self._log_start()
        self.last_ckpt = self.resumed_from
        self.t_session = self.loop_start = time.perf_counter()

    def _usable_checkpoint(self, restart_on_mismatch: bool) -> tuple[dict | None, list[str]]:
        """(the checkpoint to resume or None, execution differences to warn about)."""
        path = self.paths.checkpoint
        if not path.exists():
            return None, []
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"not a {CHECKPOINT_FORMAT} checkpoint")
        except Exception as exc:
            problem, ck, soft = f"{path}: unreadable checkpoint ({exc})", None, []
        else:
            problem, soft = _resume_problem(ck, self.current, self.cfg, self.paths.workdir)
        if problem and not restart_on_mismatch:
            raise UserError(
                f"{problem}; rerun with the original settings to resume it, or delete the work "
                f"directory to start fresh: rm -r {self.paths.workdir}"
            )
        if problem:
            log.warning("%s; discarding it and starting fresh (--restart-on-mismatch)", problem)
            path.unlink()
            return None, []
        return ck, soft

    def _restore(self, ck: dict, soft: list[str]) -> None:
        """Load every state of checkpoint ``ck`` (weights, optimizer, RNGs, bookkeeping)."""
        if soft:
            log.warning(
                "resuming with different execution settings (%s): the result will not be "
                "bit-identical to an uninterrupted run",
                "; ".join(soft),
            )
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sampler.load_state(ck["sampler"])
        if self.average is not None:
            self.average.load_state(ck["weight_average"], self.device)
        torch.set_rng_state(ck["torch_rng"])
        if self.device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"])
        self.step_done = self.resumed_from = int(ck["step"])
        self.history = [list(r) for r in ck["history"]]
        self.acc_sum = np.asarray(ck["log_acc"]["sum"], dtype=np.float64)
        self.acc_n = int(ck["log_acc"]["n"])
        self.wall_before = float(ck["wall_seconds"])
        self.loop_before = float(ck["loop_seconds"])
        self.sessions = int(ck.get("sessions", 1)) + 1
        log.info(
            "resuming from %s at step %d of %d (session %d)",
            self.paths.checkpoint,
            self.step_done,
            self.cfg.iterations,
            self.sessions,
        )

    def _log_start(self) -> None:
        """One line that says what is trained, where and how."""
        log.info(
            "training %s (%s parameters) on %s for %d steps: device %s, precision %s, "
            "%d thread(s), %s sampling of %d clips (%d cases)",
            self.arch.kind,
            f"{self.n_params:,}",
            self.cache.path,
            self.cfg.iterations,
            self.device.type,
            self.precision,
            self.threads,
            self.cfg.sampling,
            len(self.sampler.eligible),
            self.sampler.cases,
        )

    # ------------------------------------------------------------ the loop
    def wall_now(self) -> float:
        """Training wall time over every session so far."""
        return self.wall_before + time.perf_counter() - self.t_session

    def loop_seconds(self) -> float:
        """Time spent in the step loop over every session so far."""
        return self.loop_before + time.perf_counter() - self.loop_start

    def run(self, progress: bool) -> None:
        """Steps up to ``cfg.iterations``, each followed by its bookkeeping."""
        bar = _Progress(self.cfg.iterations, self.step_done, progress, self.cfg.log_every)
        try:
            while self.step_done < self.cfg.iterations:
                loss, lr = self.step()
                self._after_step(lr)
                bar.update(self.step_done, loss, lr)
        finally:
            bar.close()
        self.loop_before, self.loop_start = self.loop_seconds(), time.perf_counter()

    def step(self) -> tuple[float, float]:
        """One optimizer step; (its loss, its lr).  A non-finite loss stops before the update."""
        cfg, step = self.cfg, self.step_done
        lr = cfg.lr_at(step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        mix, voice, acc = load_batch(
            self.cache, self.sampler.batch(cfg.batch), cfg.frames, self.device
        )
        mix = mix.contiguous(memory_format=torch.channels_last)
        with self.autocast:
            preds = self.model(mix)
        terms = torch.stack(
            [loss_terms(p.float(), mix, voice, acc, self.arch.target) for p in preds]
        )
        loss = terms.sum()
        values = torch.cat([loss.detach()[None], terms.detach()]).cpu().numpy().astype(np.float64)
        if not np.isfinite(values).all():
            raise UserError(
                f"the loss became non-finite ({values[0]}) at step {step + 1} of "
                f"{cfg.iterations} (lr {lr:.3g}); stopped before updating the weights, the last "
                f"good checkpoint ({self._ckpt_desc()}) is kept. Lower --lr or check "
                f"{self.cache.path} for inf/nan values, then rerun (it resumes from that "
                f"checkpoint) or delete {self.paths.workdir} to restart"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        if self.average is not None:
            self.average.update(self.model)
        self.step_done += 1
        self.acc_sum += values
        self.acc_n += 1
        return float(values[0]), lr

    def _after_step(self, lr: float) -> None:
        """The history row, snapshot and checkpoint that fall on the step just done."""
        cfg, done = self.cfg, self.step_done
        if done % cfg.log_every == 0 or done == cfg.iterations:
            mean = self.acc_sum / self.acc_n
            self.history.append([done, *(float(x) for x in mean), lr, round(self.wall_now(), 3)])
            self.acc_sum[:] = 0
            self.acc_n = 0
        if done in cfg.snapshots:
            with atomic_path(self.paths.workdir / f"snapshot@{done}.pt") as tmp:
                torch.save(self.model_record(done, self.wall_now()), tmp)
        if cfg.checkpoint_every and (done % cfg.checkpoint_every == 0 or done == cfg.iterations):
            self.save_checkpoint()
            self.last_ckpt = done

    # ------------------------------------------------------------ what is saved
    def _ckpt_desc(self) -> str:
        """The last good checkpoint, for error messages."""
        if self.last_ckpt:
            return f"step {self.last_ckpt} in {self.paths.checkpoint}"
        return f"none was written yet; see {self.paths.workdir}"

    def save_checkpoint(self) -> None:
        """The complete state, written atomically; refused when a weight is not finite."""
        done, model, opt = self.step_done, self.model, self.opt
        tensors = list(model.state_dict().values())
        tensors += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
        if not _all_finite(tensors):
            raise UserError(
                f"the weights became non-finite after step {done} (lr "
                f"{self.cfg.lr_at(done - 1):.3g}); not writing them: the last good checkpoint "
                f"({self._ckpt_desc()}) is kept; lower --lr, check the cache for inf/nan, and "
                f"delete {self.paths.workdir} to restart"
            )
        ck = {
            "format": CHECKPOINT_FORMAT,
            "step": int(done),
            "arch": self.current["arch"],
            "train": self.current["train"],
            "cache": self.fingerprint,
            "execution": self.current["execution"],
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "sampler": self.sampler.state(),
            "weight_average": self.average.state() if self.average is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            "history": self.history,
            "log_acc": {"sum": [float(x) for x in self.acc_sum], "n": int(self.acc_n)},
            "wall_seconds": self.wall_now(),
            "loop_seconds": self.loop_seconds(),
            "sessions": self.sessions,
        }
        with atomic_path(self.paths.checkpoint) as tmp:
            torch.save(ck, tmp)

    def eval_state(self, done: int) -> dict:
        """The state_dict saved for step ``done``: averaged weights and precise BatchNorm
        statistics when asked for; computed once per step."""
        if done not in self._evaluated:
            self._evaluated.clear()
            args = (self.cache, self.cfg, done, self.device, self.autocast)
            if self.average is not None:
                model = self.average.averaged_model(self.model)
                self._evaluated[done] = precise_bn_state(model, *args, owned=True)
            else:
                self._evaluated[done] = precise_bn_state(self.model, *args)
        return self._evaluated[done]

    def model_record(self, done: int, wall: float) -> dict:
        """The ``hourglass-sep-model/1`` record of step ``done`` (model file, snapshots)."""
        cfg = self.cfg
        return {
            "format": MODEL_FORMAT,
            "arch": self.arch.to_dict(),
            "state_dict": self.eval_state(done),
            "train": {
                **cfg.to_dict(),
                "threads": self.threads,
                "precision": self.precision,
                "amp": self.amp,  # the autocast (off = fp32), as records before --precision
                "cache": str(self.cache.path),
            },
            "bn_statistics": (
                f"precise: plain mean over {cfg.precise_bn} batches of {cfg.batch}"
                if cfg.precise_bn
                else "running averages of training (momentum 0.1)"
            ),
            "weights": (
                f"exponential moving average, decay {cfg.weight_average:g} "
                "(warm-up min(d, (1+t)/(10+t)))"
                if self.average is not None
                else "the weights of the last step"
            ),
            "step": int(done),
            "wall_seconds": float(wall),
            "device": self.device.type,
            "parameters": int(self.n_params),
            "torch": str(torch.__version__),
        }

    # ------------------------------------------------------------ outputs
    def finish(self, t_start: float) -> dict:
        """Write the model, snapshots, history and run summary; return the summary."""
        params = self.average.params if self.average is not None else []
        if not _all_finite(list(self.model.state_dict().values()) + params):
            raise UserError(
                f"the final weights (step {self.step_done}) are not finite; not writing "
                f"{self.paths.out}; lower --lr"
            )
        wall = self.wall_now()
        record = self.model_record(self.step_done, wall)
        self._write_history()
        snapshots = self._deliver_snapshots(record)
        with atomic_path(self.paths.out) as tmp:
            torch.save(record, tmp)
        info = self.summary(wall, snapshots, t_start)
        with atomic_path(self.paths.info) as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n")
        return info

    def _write_history(self) -> None:
        """history.csv: step, loss, loss per stack, lr, seconds."""
        stacks = [f"loss_stack{i + 1}" for i in range(self.arch.stacks)]
        with atomic_path(self.paths.history) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "loss", *stacks, "lr", "seconds"])
            for row in self.history:
                losses = (f"{x:.8g}" for x in row[1:-2])
                w.writerow([int(row[0]), *losses, f"{row[-2]:.8g}", f"{row[-1]:.3f}"])

    def _deliver_snapshots(self, record: dict) -> dict[str, str]:
        """Copy the work directory's snapshots to their destinations; {step: path}."""
        if self.paths.snapshot_dir is not None:
            self.paths.snapshot_dir.mkdir(parents=True, exist_ok=True)
        out = {}
        for s in self.cfg.snapshots:
            src, dst = self.paths.workdir / f"snapshot@{s}.pt", self.paths.snapshot(s)
            with atomic_path(dst) as tmp:
                if s == self.step_done and not src.exists():
                    torch.save(record, tmp)
                else:
                    shutil.copyfile(src, tmp)
            out[str(s)] = str(dst)
        return out

    def summary(self, wall: float, snapshots: dict, t_start: float) -> dict:
        """The run summary written to train.json."""
        step, loop, device, last = self.step_done, self.loop_before, self.device, None
        if self.history:
            last = self.history[-1]
        return {
            "model": str(self.paths.out),
            "parameters": int(self.n_params),
            "steps": int(step),
            "wall_seconds": round(wall, 3),
            "loop_seconds": round(loop, 3),
            "device": device.type,
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "steps_per_second": (step / loop) if loop > 0 else None,
            "final_loss": float(last[1]) if last else None,
            "final_loss_stacks": [float(x) for x in last[2 : 2 + self.arch.stacks]]
            if last
            else None,
            "threads": self.threads,
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "python": platform.python_version(),
            "precision": self.precision,
            "amp": self.amp,  # the autocast (off = fp32), as records before --precision
            "deterministic": device.type == "cpu",
            "arch": self.arch.to_dict(),
            "train": self.cfg.to_dict(),
            "cache": self._cache_summary(),
            "history": str(self.paths.history),
            "snapshots": snapshots,
            "workdir": str(self.paths.workdir),
            "resumed_from": self.resumed_from,
            "sessions": self.sessions,
            "steps_this_session": int(step - (self.resumed_from or 0)),
            "session_seconds": round(time.perf_counter() - t_start, 3),
        }

    def _cache_summary(self) -> dict:
        """The cache part of train.json: which clips were used, and the content digest."""
        cache, sampler = self.cache, self.sampler
        return {
            "path": str(cache.path),
            "clips": len(cache),
            "used_clips": int(len(sampler.eligible)),
            "skipped_clips": [cache.clips[i] for i in sampler.skipped],
            "cases": sampler.cases,
            "fingerprint": self.fingerprint,
            "bins": N_BINS,
        }


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
    paths = RunPaths.of(out_path, workdir, history_path, info_path, snapshot_dir)
    if progress is None:
        progress = sys.stderr.isatty()
    cache, sampler = open_training_cache(cache_path, arch, cfg)
    device = resolve_device(cfg.device, cfg.allow_cpu)
    amp = resolve_amp(cfg.precision, device)
    threads = int(cfg.threads) if cfg.threads is not None else default_threads()
    with _torch_settings(device, threads):
        trainer = Trainer(cache, sampler, arch, cfg, paths, device, amp, threads)
        trainer.resume_or_start(restart_on_mismatch)
        trainer.run(progress)
        return trainer.finish(t_start)


# ---------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``hourglass-sep train``: one per setting field, plus the paths."""
    p.add_argument(
        "--cache", required=True, help="training spectrogram cache (from `hourglass-sep cache`)"
    )
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    add_setting_arguments(p.add_argument_group("architecture"), ArchConfig)
    add_setting_arguments(p.add_argument_group("training"), TrainConfig, execution=False)
    g = p.add_argument_group("outputs and execution")
    add_setting_arguments(g, TrainConfig, execution=True)
    g.add_argument(
        "--amp",
        choices=tuple(AMP_PRECISIONS),
        default=None,
        help="deprecated: use --precision (--amp off is --precision fp32)",
    )
    g.add_argument(
        "--snapshot-dir",
        default=None,
        help="write the snapshots as DIR/step<step>.pt instead of <stem>@<step>.pt beside the "
        "model",
    )
    g.add_argument(
        "--restart-on-mismatch",
        action="store_true",
        help="discard a checkpoint in --workdir that cannot be resumed (different settings) and "
        "start fresh, instead of refusing",
    )
    g.add_argument("--workdir", default=None, help="checkpoint folder (default: <output>.work)")
    g.add_argument(
        "--history", default=None, help="loss history CSV (default: <output stem>.history.csv)"
    )
    g.add_argument(
        "--info", default=None, help="run summary JSON (default: <output stem>.train.json)"
    )
    g.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")


def run(args: argparse.Namespace) -> int:
    """``hourglass-sep train``: the settings from the options, then :func:`train`."""
    try:
        arch = from_namespace(ArchConfig, args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.amp is not None:
        precision = AMP_PRECISIONS[args.amp]
        log.warning("--amp is deprecated: use --precision %s", precision)
        if args.precision not in ("auto", precision):
            raise UserError(f"--amp {args.amp} and --precision {args.precision}: give --precision")
        args.precision = precision
    cfg = from_namespace(TrainConfig, args)
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
