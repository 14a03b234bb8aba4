"""Size and cost of a network: parameters, GFLOP per second of audio, activation memory.

How each figure is obtained (``model_info``):

* **parameters** — ``sum(p.numel())`` over the network's parameters (BatchNorm's
  affine weights included, running statistics not), as the report's result.xlsx.
* **GFLOP per second of audio** — a forward hook on every ``Conv2d`` adds
  ``out.numel() * in_channels/groups * kh * kw`` multiply-accumulates (MACs) (transposed
  convolutions, dense layers and LSTMs likewise: the U-Net and Open-Unmix) while a
  (1, 1, 512, T) input runs through the network.  The network is fully
  convolutional, so MACs are linear in T; one second of audio is
  ``8000 / 256 = 31.25`` frames, and FLOP = 2 x MAC (one multiply + one add).
  Only convolutions are counted (BatchNorm, ReLU, pooling, upsampling and adds are
  below 0.5 % of the work).  The pass runs on the ``meta`` device: shapes only, no
  arithmetic, so even the 42.8 M-parameter network is sized in milliseconds.
* **peak activation memory** — for one 512 x 64 window (batch 1, fp32, inference):
  a ``TorchDispatchMode`` sees every tensor that every aten operation returns;
  each new tensor that owns its storage (not a view, not an in-place or ``out=``
  result) adds its bytes to a running total, and a ``weakref.finalize`` on it
  subtracts them when the tensor is freed.  The maximum of that total over the
  forward pass, plus the input, is the peak.  This is the memory of live
  activations only (weights are reported separately as ``weights_bytes``; allocator
  slack and oneDNN scratch buffers are not included).  It runs on the meta device too:
  what is counted is the tensors' nominal sizes under eager PyTorch's freeing order.
"""

from __future__ import annotations

import argparse
import json
import weakref
from dataclasses import fields
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from hourglass_sep.data.features import HOP, N_BINS, SR
from hourglass_sep.errors import UserError
from hourglass_sep.nets.model import build_model, count_parameters
from hourglass_sep.nets.settings import ArchConfig, add_setting_arguments, from_namespace

FRAMES_PER_SECOND = SR / HOP  # 31.25


def _meta_model(arch: ArchConfig) -> nn.Module:
    with torch.device("meta"):
        model = build_model(arch)
    return model.eval()


def _layer_macs(mod: nn.Module, inp, out) -> int:
    """Multiply-accumulates of one call of a weighted layer (0 for any other module)."""
    if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
        kh, kw = mod.kernel_size
        # a conv: each output value sums C_in/g x kh x kw products; a transposed conv: each
        # input value is spread over C_out/g x kh x kw outputs
        if isinstance(mod, nn.Conv2d):
            return out.numel() * (mod.in_channels // mod.groups) * kh * kw
        return inp[0].numel() * (mod.out_channels // mod.groups) * kh * kw
    if isinstance(mod, nn.Linear):
        return out.numel() * mod.in_features
    if isinstance(mod, nn.LSTM):  # 4 gates, input and recurrent products, every direction
        steps = inp[0].numel() // inp[0].shape[-1]  # sequence x batch
        dirs = 2 if mod.bidirectional else 1
        h, total, width = mod.hidden_size, 0, mod.input_size
        for _ in range(mod.num_layers):
            total += steps * dirs * 4 * h * (width + h)
            width = h * dirs
        return total
    return 0


WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.LSTM)


def conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every weighted layer (convolutions, transposed convolutions,
    dense layers, LSTMs) in one forward pass of ``x``."""
    total = 0

    def hook(mod: nn.Module, inp, out):
        nonlocal total
        total += _layer_macs(mod, inp, out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, WEIGHTED)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return int(total)


class LiveTensorTracker(TorchDispatchMode):
    """Track the bytes of live tensors created by aten ops (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, n: int) -> None:
        self.live -= n

    def add(self, t: torch.Tensor) -> None:
        n = t.numel() * t.element_size()
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(t, self._free, n)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        schema = func._schema
        if schema.is_mutable or any(r.alias_info is not None for r in schema.returns):
            return out  # in-place, out= or view: no new storage
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and not t._is_view():
                self.add(t)
        return out


def peak_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of live tensors during ``model(x)`` in inference mode (input included)."""
    tracker = LiveTensorTracker()
    with torch.inference_mode():
        tracker.live = tracker.peak = x.numel() * x.element_size()
        with tracker:
            out = model(x)
        del out
    return int(tracker.peak)


def model_info(arch: ArchConfig | dict, window_frames: int = 64) -> dict:
    """Parameters, conv GFLOP per second of audio and activation memory of ``arch``.

    Returns a dict: ``parameters``, ``weights_bytes`` (fp32), ``macs_per_frame``,
    ``gflop_per_second`` (of audio, forward pass), ``gflop_per_window`` (512 x
    ``window_frames``), ``peak_activation_bytes`` / ``peak_activation_mib`` (one
    512 x ``window_frames`` window, batch 1, fp32), ``window_frames``, ``arch``.
    """
    if isinstance(arch, dict):
        arch = ArchConfig.from_dict(arch)
    mult = arch.time_multiple
    if window_frames % mult:
        raise UserError(
            f"window of {window_frames} frames: must be a multiple of {mult} (2 ** poolings)"
        )
    model = _meta_model(arch)
    params = count_parameters(model)
    x = torch.empty(1, 1, N_BINS, window_frames, device="meta")
    macs = conv_macs(model, x)
    peak = peak_activation_bytes(model, x)
    per_frame = macs / window_frames
    return {
        "arch": arch.to_dict(),
        "parameters": int(params),
        "weights_bytes": int(params * 4),
        "macs_per_frame": per_frame,
        "gflop_per_second": 2 * per_frame * FRAMES_PER_SECOND / 1e9,
        "gflop_per_window": 2 * macs / 1e9,
        "window_frames": int(window_frames),
        "peak_activation_bytes": peak,
        "peak_activation_mib": peak / 2**20,
    }


# ------------------------------------------------------------------- CLI
ARCH_FLAGS = tuple(f.name for f in fields(ArchConfig))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Architecture options (made from ArchConfig's fields) or a model / config to read."""
    g = p.add_argument_group("architecture (defaults: the report's 'Ours')")
    add_setting_arguments(g, ArchConfig, show_defaults=False)
    p.add_argument("--model", help="read the architecture from a model.pt instead")
    p.add_argument("--variant", help="read the architecture of this variant from --config")
    p.add_argument(
        "--config",
        action="append",
        default=None,
        help="workflow config YAML (variants: {NAME: {arch: {...}}}); repeat to merge presets "
        "in order",
    )
    p.add_argument(
        "--paper-scale",
        action="store_true",
        help="with --variant: ignore the config's scale: section (default: apply it, as the "
        "workflow does)",
    )
    p.add_argument(
        "--frames", type=int, default=64, help="window length (frames) for the activation memory"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def arch_from_config(paths: list[str], variant: str, paper_scale: bool = False) -> ArchConfig:
    """The architecture of ``variant`` in the (merged) workflow config files.

    Reads ``variants: {NAME: {arch: {...}}}``; ``arch`` keys are ``ArchConfig``
    fields, missing ones take ArchConfig's defaults.  Unless ``paper_scale``, the
    config's ``scale:`` (width divisor, stem) is applied as the workflow does.
    """
    import yaml

    config: dict = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise UserError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise UserError(
                f"{path}: expected a mapping at the top level, got {type(data).__name__}"
            )
        config = _deep_merge(config, data)
    where = " + ".join(map(str, paths))
    variants = config.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise UserError(
            f"{where}: no `variants:` mapping; expected variants: {{NAME: {{arch: {{...}}}}}}"
        )
    if variant not in variants:
        raise UserError(f"{where}: no variant {variant!r}; known: {', '.join(sorted(variants))}")
    spec = variants[variant] or {}
    if not isinstance(spec.get("arch"), dict):
        raise UserError(
            f"{where}: variant {variant!r} has no `arch:` mapping (keys: {', '.join(ARCH_FLAGS)}); "
            "add one, or give the architecture with --stacks/--channels/... flags"
        )
    from hourglass_sep.plan.experiments import (
        resolve_arch,  # pure Python: the same rules as the workflow
    )

    scale = {} if paper_scale else config.get("scale") or {}
    try:
        return resolve_arch(variant, spec, scale)
    except ValueError as exc:  # experiments.ConfigError names the key
        raise UserError(f"{where}: {exc}") from None


def arch_from_args(args: argparse.Namespace) -> ArchConfig:
    given = [f for f in ARCH_FLAGS if getattr(args, f, None) is not None]
    sources = [s for s in ("model", "variant") if getattr(args, s, None)]
    if len(sources) > 1 or (sources and given):
        raise UserError(
            "give the architecture one way: flags (--stacks ...), --model M.pt, or "
            "--variant NAME --config C.yaml"
        )
    if args.model:
        from hourglass_sep.nets.inference import read_model_file

        return read_model_file(args.model)[0]
    if args.variant:
        if not args.config:
            raise UserError("--variant needs --config config.yaml")
        return arch_from_config(args.config, args.variant, args.paper_scale)
    if args.config:
        raise UserError("--config needs --variant NAME")
    try:
        return from_namespace(ArchConfig, args, given_only=True)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def format_info(info: dict) -> str:
    a, window = info["arch"], f"512x{info['window_frames']} window"
    return "\n".join(
        [
            f"architecture   {a['kind']}: {a['stacks']} stacks, F={a['channels']}, "
            f"+{a['growth']}/pooling, stem {','.join(map(str, a['stem']))}, "
            f"{a['poolings']} poolings, target {a['target']}",
            f"parameters     {info['parameters']:,} ({info['weights_bytes'] / 2**20:.1f} MiB fp32)",
            f"compute        {info['gflop_per_second']:.2f} GFLOP per second of audio "
            f"({info['gflop_per_window']:.2f} GFLOP per {window}; MACs x 2)",
            f"activations    {info['peak_activation_mib']:.1f} MiB peak for one {window} "
            "(batch 1, fp32, inference)",
        ]
    )


def run(args: argparse.Namespace) -> int:
    arch = arch_from_args(args)
    info = model_info(arch, window_frames=args.frames)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
