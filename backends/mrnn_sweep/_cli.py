"""The ``mrnn`` command: ``mrnn sweep FILE`` runs a sweep, ``mrnn results FOLDER`` reads one."""

from __future__ import annotations

import argparse
import sys

from mrnn_core.errors import MRNNConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrnn", description="mrnn experiments on Ray Tune")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="run a sweep file (TOML or JSON) on Ray Tune")
    sweep.add_argument("file", help="the sweep file")
    sweep.add_argument("--address", default=None,
                       help="an existing Ray cluster ('auto', 'head:6379', 'ray://head:10001'); "
                            "default: RAY_ADDRESS if set, else a local Ray in this process")
    sweep.add_argument("--storage", default=None,
                       help="folder (or s3:// / gs:// URI) for the sweep's results; default ./sweeps")
    sweep.add_argument("--name", default=None, help="overrides the sweep file's name")
    sweep.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray")
    sweep.add_argument("--num-gpus", type=int, default=None, help="GPUs of the local Ray")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep in the same folder")
    sweep.add_argument("--no-plots", action="store_true", help="skip the figures")
    sweep.add_argument("--check", action="store_true",
                       help="only check the sweep file and print the search space")
    sweep.add_argument("-v", "--verbose", type=int, default=1, help="Tune's output: 0, 1 or 2")
    results = commands.add_parser("results", help="print a finished sweep's table and best trial")
    results.add_argument("folder", help="the sweep's folder, <storage>/<name>")
    return parser


def main(argv=None) -> int:
    """Entry point of ``mrnn`` and ``python -m mrnn_sweep``; returns the exit status."""
    args = _parser().parse_args(argv)
    from . import load_sweep, open_sweep, run_sweep

    try:
        if args.command == "sweep" and args.check:
            sweep = load_sweep(args.file, name=args.name)
            print(f"sweep {sweep.name!r}: backend {sweep.backend}, {sweep.num_samples} sample(s)")
            for path, domain in sweep.search.items():
                print(f"  {path}: {domain.kind} {list(domain.values)}")
            return 0
        if args.command == "sweep":
            results = run_sweep(args.file, storage_path=args.storage, name=args.name,
                                address=args.address, num_cpus=args.num_cpus,
                                num_gpus=args.num_gpus, resume=args.resume,
                                verbose=args.verbose, plots=not args.no_plots)
            if results is None:
                print("results were written to the remote storage; re-open them from a local copy")
                return 0
        else:
            results = open_sweep(args.folder)
    except MRNNConfigError as err:
        print(f"mrnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    _print(results)
    return 0


def _print(results) -> None:
    rows = results.table()
    columns = ["trial", "status", *results.swept, "final_loss", "best_loss", "steps", "wall_time_s"]
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    print(f"table: {results.path}/results.csv")
    try:
        best = results.best()
    except MRNNConfigError:
        return
    print(f"best: {best.trial} {best.values} final_loss={best.final_loss:.4g} "
          f"checkpoint={best.checkpoint}")


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
