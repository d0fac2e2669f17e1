"""The ``gxnor`` command line: one module per command group (train, serve, worker, tokens, runs, sweeps,
datasets, export, infer).

Bad input exits with code 2 and one line naming the problem.
"""

from __future__ import annotations

import argparse
import sys

from gxnor_cli import datasets, export, infer, runs, serve, sweeps, tokens, train, worker
from gxnor_cli.common import EXIT_USAGE, Parser

__all__ = ["EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gxnor", description="GXNOR Lab: gated XNOR networks, trained without hidden weights.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    # the order `gxnor --help` lists them in
    for group in (train, serve, worker, runs, sweeps, tokens, datasets, export, infer):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
