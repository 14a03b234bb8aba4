"""Seconds per training step (batch 4 x 512x64, L1 over the stacks, Adam) in three settings.

    python benchmarks/bench_train_step.py --channels 12 --growth 12 --stem 12,24,24
    python benchmarks/bench_train_step.py --variant parks --config config.yaml --config configs/cpu.yaml

Prints one line per setting: fp32 (NCHW), fp32 + channels_last, bf16 autocast + channels_last
(the last is what `hourglass-sep train --amp auto` uses on a CPU with native bf16).  Random data:
the speed of a step does not depend on the values.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from hourglass_sep.model import ArchConfig, build_model, loss_terms


def seconds_per_step(
    arch: ArchConfig, setting: str, steps: int, warmup: int, batch: int, frames: int
) -> float:
    torch.manual_seed(0)
    model = build_model(arch).train()
    mix = torch.rand(batch, 1, 512, frames)
    voice = torch.rand_like(mix) * mix
    acc = mix - voice
    if setting != "fp32":
        model = model.to(memory_format=torch.channels_last)
        mix = mix.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if setting == "bf16+cl"
        else contextlib.nullcontext()
    )
    times = []
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        with amp:
            preds = model(mix)
        loss = torch.stack(
            [loss_terms(p.float(), mix, voice, acc, arch.target) for p in preds]
        ).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return min(times[warmup:])


def main() -> None:
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
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--settings", default="fp32,fp32+cl,bf16+cl")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.variant:
        from hourglass_sep.model_info import arch_from_config

        arch = arch_from_config(args.config, args.variant)
    else:
        arch = ArchConfig(
            kind=args.kind,
            stacks=args.stacks,
            channels=args.channels,
            growth=args.growth,
            stem=tuple(int(s) for s in args.stem.split(",")),
            poolings=args.poolings,
        )
    print(f"{arch}  threads={args.threads}  torch {torch.__version__}")
    for setting in args.settings.split(","):
        s = seconds_per_step(arch, setting, args.steps, args.warmup, batch=4, frames=64)
        print(f"{setting:>8}: {s:.3f} s/step  ({1 / s:.2f} steps/s)", flush=True)


if __name__ == "__main__":
    main()
