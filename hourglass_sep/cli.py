"""The ``hourglass-sep`` command: one verb per pipeline step.

Each verb lives in the module that does the work; that module defines
``add_arguments(parser)`` and ``run(args) -> int``.  Modules are imported only
when their verb runs, so ``hourglass-sep synth`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hourglass_sep.errors import UserError

# verb -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch-mir1k": (
        "hourglass_sep.data.mir1k",
        "download (mirrors + md5) or import a local MIR-1K, extract safely, validate",
    ),
    "synth": ("hourglass_sep.data.synth", "write the built-in synthetic MIR-1K-format corpus"),
    "catalogue": (
        "hourglass_sep.data.catalogue",
        "clip table + train/test split of a MIR-1K-format folder",
    ),
    "cache": ("hourglass_sep.data.cache", "spectrogram cache of one split (one file)"),
    "model-info": (
        "hourglass_sep.plan.model_info",
        "parameters, GFLOP per second of audio, activation memory",
    ),
    "train": ("hourglass_sep.training.train", "train one network (checkpoints, resume)"),
    "separate": (
        "hourglass_sep.separation.separate_cli",
        "split songs (files or folders: wav/flac/ogg/mp3/aiff) into voice and accompaniment stems",
    ),
    "export-release": (
        "hourglass_sep.nets.release",
        "turn a trained model.pt into the shipped release.pt + release.json",
    ),
    "baseline": (
        "hourglass_sep.scoring.score",
        "mixture-as-estimate SDR per test clip (the NSDR baseline)",
    ),
    "references": (
        "hourglass_sep.scoring.reference_cache",
        "reference side of BSS Eval (factorised once per clip) for the cached backend",
    ),
    "score": ("hourglass_sep.scoring.score", "BSS Eval v3 scores of separated estimates"),
    "aggregate": ("hourglass_sep.results.aggregate", "length-weighted GNSDR/GSIR/GSAR per variant"),
    "subset-scores": (
        "hourglass_sep.results.aggregate",
        "a run's per-clip scores on a fixed stratified test subset (an evaluation variant)",
    ),
    "claims": (
        "hourglass_sep.claims.cli",
        "verdicts on the report's claims: effects, 95 % intervals, forest plot",
    ),
    "claims-plan": (
        "hourglass_sep.claims.cli",
        "per claim: verdict after Holm's adjustment, minimum detectable effect, seeds needed",
    ),
    "claims-look": (
        "hourglass_sep.claims.look_cli",
        "one look of a sequential design: the confirmatory claims so far, the seeds to add",
    ),
    "methods": (
        "hourglass_sep.claims.methods_table",
        "the Methods table: cost and GNSDR/GSIR/GSAR with 95 % intervals per method, "
        "fraction of the oracle",
    ),
    "workbook": ("hourglass_sep.results.workbook", "write result.xlsx"),
    "figures": ("hourglass_sep.results.figures", "write the PNG figures"),
    "report": ("hourglass_sep.results.report", "render the Markdown report"),
    "speed": (
        "hourglass_sep.results.speed",
        "time separation (ours vs the course report's scheme) and summarise job times",
    ),
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hourglass-sep",
        description="Singing-voice separation with stacked hourglass networks (MIR-1K benchmark).",
        formatter_class=_Formatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module, text) in COMMANDS.items():
        help_ = text.replace("%", "%%")  # argparse %-formats help, not descriptions
        p = sub.add_parser(name, help=help_, description=text, formatter_class=_Formatter)
        if name == verb:  # only the chosen verb's module is imported
            mod = importlib.import_module(module)
            adder = (
                getattr(mod, f"add_{name.replace('-', '_')}_arguments", None) or mod.add_arguments
            )
            adder(p)
            p.set_defaults(_module=mod, _verb=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is not None and verb not in COMMANDS:
        build_parser().error(f"unknown verb {verb!r}; choose one of: {', '.join(COMMANDS)}")
    parser = build_parser(verb)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "_verb", None):
        parser.print_help()
        return 2
    mod = args._module
    runner = getattr(mod, f"run_{args._verb.replace('-', '_')}", None) or mod.run
    try:
        return int(runner(args) or 0)
    except UserError as exc:
        print(f"hourglass-sep {args._verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hourglass-sep {args._verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
