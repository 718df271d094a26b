"""``lgvsc`` command line.

Every user error prints one line on stderr and exits with code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from ..link.registry import UnknownComponentError
from .errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"lgvsc: error: {message}", file=sys.stderr)
        sys.exit(2)


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lgvsc", description="Link-level simulator for generative video "
                                          "semantic communication.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"lgvsc {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run or resume a scenario")
    r.add_argument("file")
    r.add_argument("--out", help="results folder (default results/<name>)")
    r.add_argument("--executor", help="local | ray (overrides the scenario)")
    r.add_argument("--workers", type=_positive, help="parallel workers (overrides the scenario)")
    r.add_argument("--fresh", action="store_true", help="discard stored results first")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    v = sub.add_parser("validate", help="check a scenario file")
    v.add_argument("file")
    sub.add_parser("list", help="list registered components and what runs on this machine")
    pl = sub.add_parser("plot", help="rewrite summary.csv and plots of a results folder")
    pl.add_argument("results_dir")
    rp = sub.add_parser("report", help="rewrite report.html of a results folder from the store")
    rp.add_argument("results_dir")
    me = sub.add_parser("media", help="make the missing saved frames / videos of a video "
                                      "results folder (its units run again, seeded)")
    me.add_argument("results_dir")
    me.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    c = sub.add_parser("compare", help="paired comparison of two schemes of a video results folder")
    c.add_argument("results_dir")
    c.add_argument("a", help="scheme name")
    c.add_argument("b", help="scheme name")
    c.add_argument("--metric", help="metric (default: the scenario's first)")
    k = sub.add_parser("keyframes", help="select keyframes of a video (SKIM / SKEM)")
    k.add_argument("source", help="builtin:NAME | synthetic:PRESET | a video file")
    k.add_argument("--selector", choices=["skim", "skem"], default="skem")
    k.add_argument("--scorer", default="classical", help="scorer for skem (see lgvsc list)")
    k.add_argument("--scorer-path", help="local model folder for the vlm scorer")
    k.add_argument("--scorer-mode", choices=["direct", "paper"], default="direct")
    k.add_argument("--threshold", default="0.35", help="eta_th, or 'auto' with --target-keyframes")
    k.add_argument("--target-keyframes", type=_positive, help="keyframe count for --threshold auto")
    k.add_argument("--segments", type=_positive, default=4, help="skim: number of segments")
    k.add_argument("--focus", default=None, help="semantic focus text")
    k.add_argument("--stride", type=_positive, default=1)
    k.add_argument("--min-len", type=_positive, default=1)
    k.add_argument("--max-len", type=_positive, default=None)
    k.add_argument("--frames", type=_positive, help="number of frames (default: all)")
    k.add_argument("--size", type=_positive, nargs=2, metavar=("H", "W"))
    k.add_argument("--json", action="store_true", help="one JSON object on stdout")
    d = sub.add_parser("doctor", help="what local model folders are, their limits and memory "
                                      "(no weights loaded); --gpu: run every real-tier path on "
                                      "tiny models built in code")
    d.add_argument("paths", nargs="*", help="model folders or checkpoint files")
    d.add_argument("--gpu", action="store_true",
                   help="build tiny models and run the real tier end to end (CUDA in bfloat16 "
                        "when available, else CPU in float32)")
    d.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="device of the --gpu check (default: cuda when available)")
    return p


def _cmd_run(a) -> None:
    from .runner import run
    from .scenario import load_scenario

    from .report import run_table

    sc = load_scenario(a.file)
    with _named(a.file, sc):
        out = run(sc, a.out, a.executor, a.workers, a.fresh, progress=not a.no_progress)
    print(run_table(out, sc))


@contextmanager
def _named(file: str, sc):
    """Preflight errors name the scenario file they are about, and never echo the
    value of a ``${NAME}`` field."""
    from .preflight import PreflightError

    try:
        yield
    except PreflightError as e:
        raise UserError(f"{file}: {sc.hide_expanded(str(e))}") from None


def _cmd_validate(a) -> None:
    from .preflight import preflight
    from .runner import scenario_warnings
    from .scenario import load_scenario

    sc = load_scenario(a.file)
    with _named(a.file, sc):
        lines = preflight(sc)
    for line in scenario_warnings(sc) + lines:
        print(f"lgvsc: warning: {sc.hide_expanded(line)}", file=sys.stderr)
    print(f"{a.file}: ok ({sc.kind} scenario {sc.name!r}, {sc.unit_count()} units)")


def _cmd_list(a) -> None:
    from .catalog import catalog

    print(catalog())


def _cmd_compare(a) -> None:
    from .report import compare

    print(compare(Path(a.results_dir), a.a, a.b, a.metric))


def _cmd_plot(a) -> None:
    from .runner import finalize

    out = Path(a.results_dir)
    paths = finalize(out)
    print(f"wrote {len(paths)} files under {out}")


def _cmd_report(a) -> None:
    from .html_report import rewrite_report

    print(rewrite_report(Path(a.results_dir)))


def _cmd_media(a) -> None:
    from .runner import make_media

    out = Path(a.results_dir)
    written = make_media(out, progress=not a.no_progress)
    print(f"wrote {len(written)} media files under {out / 'media'}; outputs rewritten")


def _cmd_keyframes(a) -> None:
    from .keyframes_cli import keyframes

    keyframes(a)


def _cmd_doctor(a) -> int:
    if not a.paths and not a.gpu:
        raise UserError("doctor: give model folders / checkpoint files, or --gpu")
    rc = 0
    if a.paths:
        from .doctor import doctor

        rc = doctor(a.paths)
    if a.gpu:
        from .gpu_check import main as gpu_check

        rc = max(rc, gpu_check(["--device", a.device]))
    return rc


COMMANDS = {"run": _cmd_run, "validate": _cmd_validate, "list": _cmd_list, "plot": _cmd_plot,
            "media": _cmd_media, "compare": _cmd_compare, "keyframes": _cmd_keyframes,
            "doctor": _cmd_doctor, "report": _cmd_report}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = COMMANDS[args.cmd](args)
    except (UserError, UnknownComponentError) as e:
        print(f"lgvsc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lgvsc: interrupted; finished units are stored, rerun to resume", file=sys.stderr)
        return 130
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
