"""Seconds per training step (default batch 4 x 512x64, L1 over the stacks, Adam) per setting.

    python benchmarks/bench_train_step.py --channels 12 --growth 12 --stem 12,24,24
    python benchmarks/bench_train_step.py --variant parks \\
        --config config.yaml --config configs/cpu.yaml
    python benchmarks/bench_train_step.py --device cuda --channels 64 --growth 64 \\
        --stem 64,128,128 --settings fp32,bf16+cl,bf16+cl+compile --seconds 5 --json bench.json

A setting is ``fp32`` or ``bf16`` (autocast), optionally ``+cl`` (channels_last model and input)
and ``+compile`` (``torch.compile`` of the network; its first step includes the compilation and
is reported separately).  ``bf16+cl`` is what ``hourglass-sep train`` does where bf16 is native
(a CUDA GPU, a CPU with AVX512-BF16/AMX).  Random data: a step's speed does not depend on the
values.  On CUDA every step ends with a synchronisation (training reads the loss back every
step too) and cuDNN autotuning is on, as in training.  One line per setting; ``--json``
rewrites the file after each setting, so a run killed during a slow compile keeps the others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from hourglass_sep.nets.model import build_model, loss_terms
from hourglass_sep.nets.settings import ArchConfig

DEFAULT_SETTINGS = "fp32,fp32+cl,bf16+cl"


def parse_setting(setting: str) -> tuple[bool, bool, bool]:
    """``(bf16, channels_last, compile)`` of a setting name such as ``bf16+cl+compile``."""
    parts = setting.strip().split("+")
    extras = set(parts[1:])
    if parts[0] not in ("fp32", "bf16") or not extras <= {"cl", "compile"}:
        raise ValueError(
            f"setting {setting!r}: expected fp32|bf16 followed by optional +cl and +compile"
        )
    return parts[0] == "bf16", "cl" in extras, "compile" in extras


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    arch: ArchConfig,
    setting: str,
    steps: int,
    warmup: int,
    batch: int = 4,
    frames: int = 64,
    device: str | torch.device = "cpu",
    max_seconds: float | None = None,
) -> dict:
    """Time ``warmup`` + up to ``steps`` training steps (fewer when ``max_seconds`` runs out,
    never fewer than 2 timed); returns the per-step figures of the timed ones."""
    bf16, cl, compiled = parse_setting(setting)
    device = torch.device(device)
    torch.manual_seed(0)
    model = build_model(arch).to(device).train()
    mix = torch.rand(batch, 1, 512, frames, device=device)
    voice = torch.rand_like(mix) * mix
    acc = mix - voice
    if cl:
        model = model.to(memory_format=torch.channels_last)
        mix = mix.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    net = torch.compile(model) if compiled else model
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    prev_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"
    times: list[float] = []
    try:
        t_start = time.perf_counter()
        while len(times) < warmup + steps:
            t0 = time.perf_counter()
            with amp:
                preds = net(mix)
            loss = torch.stack(
                [loss_terms(p.float(), mix, voice, acc, arch.target) for p in preds]
            ).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            times.append(time.perf_counter() - t0)
            timed = len(times) - warmup
            if (
                max_seconds is not None
                and timed >= 2
                and time.perf_counter() - t_start > max_seconds
            ):
                break
    finally:
        torch.backends.cudnn.benchmark = prev_benchmark
    timed = times[warmup:] or times[-1:]
    median = statistics.median(timed)
    return {
        "setting": setting,
        "device": str(device),
        "first_step_s": times[0],
        "warmup": warmup,
        "timed_steps": len(timed),
        "min_s": min(timed),
        "median_s": median,
        "steps_per_s": 1.0 / median,
    }


def seconds_per_step(
    arch: ArchConfig, setting: str, steps: int, warmup: int, batch: int, frames: int
) -> float:
    """Fastest of ``steps`` timed CPU steps after ``warmup`` (this script's original figure)."""
    return time_steps(arch, setting, steps, warmup, batch, frames)["min_s"]


def _arch(args) -> ArchConfig:
    if args.variant:
        from hourglass_sep.plan.model_info import arch_from_config

        return arch_from_config(args.config, args.variant)
    return ArchConfig(
        kind=args.kind,
        stacks=args.stacks,
        channels=args.channels,
        growth=args.growth,
        stem=tuple(int(s) for s in args.stem.split(",")),
        poolings=args.poolings,
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--variant", help="take the architecture of this variant from --config (scale applied)"
    )
    ap.add_argument(
        "--config", action="append", default=[], help="workflow config YAML(s), merged in order"
    )
    ap.add_argument("--kind", default="hourglass")
    ap.add_argument("--stacks", type=int, default=4)
    ap.add_argument("--channels", type=int, default=12)
    ap.add_argument("--growth", type=int, default=12)
    ap.add_argument("--stem", default="12,24,24")
    ap.add_argument("--poolings", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per setting (at most)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--seconds", type=float, default=None, help="stop timing a setting after this long"
    )
    ap.add_argument("--batch", type=int, default=4, help="patches per step")
    ap.add_argument("--frames", type=int, default=64, help="patch length (frames)")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS)
    ap.add_argument("--json", help="write the figures here (rewritten after each setting)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    arch = _arch(args)
    settings = [s for s in args.settings.split(",") if s]
    for s in settings:
        parse_setting(s)  # a typo fails before any timing
    print(
        f"{arch}  batch {args.batch} x 512x{args.frames}  device={args.device}  "
        f"threads={args.threads}  torch {torch.__version__}"
    )
    results = []
    for setting in settings:
        r = time_steps(
            arch,
            setting,
            args.steps,
            args.warmup,
            args.batch,
            args.frames,
            args.device,
            args.seconds,
        )
        results.append(r)
        print(
            f"{setting:>16}: {r['median_s']:.4f} s/step median, {r['min_s']:.4f} min "
            f"({r['steps_per_s']:.2f} steps/s; {r['timed_steps']} timed, first step "
            f"{r['first_step_s']:.2f} s)",
            flush=True,
        )
        if args.json:
            Path(args.json).write_text(
                json.dumps({"arch": arch.to_dict(), "results": results}, indent=2) + "\n"
            )


if __name__ == "__main__":
    main()
