"""``python -m pytest_multiarch COMMAND``: tools that run outside pytest (``doctor``, ``verify``).

The plugin's error messages point here, so this entry point must work on a machine where the
Docker setup is broken; each command reports problems itself instead of raising.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_multiarch import doctor, verify


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_multiarch",
        description="pytest-multiarch command line tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    doctor.add_parser(commands)
    verify.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``; a missing or unknown command prints usage and exits 2 (argparse's convention)."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
