"""``hpgfast bench``: the benchmark claims, measured on this machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import (
    add_output,
    positive_float,
)
from ._exit import EXIT_INCOMPLETE, EXIT_OK, exit_codes_help
from ._output import dump_json


def run(args: argparse.Namespace) -> int:
    """``hpgfast bench``."""
    from .. import _bench

    progress = None if (args.quiet or args.json) else (
        lambda line: print(line, file=sys.stderr, flush=True)
    )
    rows, medians = _bench.run(budget=args.budget, progress=progress)
    missing = _bench.missing_peers(medians)
    if args.json:
        dump_json({
            "claims": [
                {"claim": r.ratio.claim, "measured": round(r.value, 3),
                 "target": r.ratio.target, "verdict": r.verdict, "judged": r.judged}
                for r in rows
            ],
            "medians_seconds": {f"{g}/{n}": v for (g, n), v in medians.items()},
            "peers_not_installed": missing,
        })
    else:
        print(_bench.format_table(rows))
        if missing:
            print(f"\nnot measured (not installed): {', '.join(missing)}; "
                  f"pip install {' '.join(missing)} to compare with them")
    # Only the claims a single run judges fairly decide the exit status.
    return EXIT_OK if all(r.met for r in rows if r.judged) else EXIT_INCOMPLETE


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``hpgfast bench`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "bench", help="the codec's benchmark claims, measured here",
        description="Time the codec's key cases, and the client's CPU per message, "
        "against their peers on this machine and compare with the claimed ratios. "
        "Peers whose package is not installed (yarl, requests) are named and left out. "
        "Only the claims a single run like this one meets by a wide margin decide the "
        "exit status; the others (met in interleaved runs, see docs/performance.md) "
        "are shown as information.",
        epilog=exit_codes_help("bench"), formatter_class=formatter,
    )
    p.add_argument("--budget", type=positive_float, default=2.0,
                   help="seconds per case, above 0 (default 2)")
    add_output(p)
    p.set_defaults(func=run)
