"""The ``jaxsched`` command (also ``python -m jaxsched``): ``jaxsched plot SPEC [SPEC ...] --steps N --out lr.png``."""

from __future__ import annotations

import sys

_USAGE = """usage: jaxsched plot SPEC [SPEC ...] [--steps N] [--out FILE] [--steps-per-epoch N] [--x64]

commands:
  plot    plot the LR (and the cycled momentum) of schedules given as constructor calls, e.g.
          jaxsched plot 'OneCycleLR(max_lr=0.1, total_steps=100)' 'CosineAnnealingLR(0.1, T_max=50)' --steps 100 --out lr.png
"""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "plot":
        from .plot import main as plot_main

        return plot_main(rest)
    sys.stderr.write(f"jaxsched: error: unknown command {command!r} (known: plot)\n" + _USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
