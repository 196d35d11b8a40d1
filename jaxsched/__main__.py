"""The ``jaxsched`` command (also ``python -m jaxsched``), on argparse subcommands.

``jaxsched --version`` prints the version; ``jaxsched plot SPEC [SPEC ...] --steps N --out lr.png`` plots
schedules given as constructor calls (see :mod:`jaxsched.plot`).
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    from . import __version__
    from . import plot as _plot

    top = argparse.ArgumentParser(
        prog="jaxsched", description="PyTorch's LR schedulers as pure, jittable JAX schedules.",
        epilog="run 'jaxsched COMMAND --help' for the options of a command")
    top.add_argument("--version", action="version", version=f"jaxsched {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("plot", help="plot the LR (and the cycled momentum) of schedules given as constructor calls",
                       description=_plot._DESCRIPTION, epilog=_plot._EPILOG)
    _plot.add_arguments(p)
    p.set_defaults(run=lambda args: _plot.run(args, p))
    return top


def main(argv=None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
