"""``python -m devtools.bench``: the same as ``engagement bench``."""

from __future__ import annotations

import argparse

from devtools.bench.cli import add_arguments, run

__all__: list[str] = []

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
