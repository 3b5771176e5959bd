"""``python -m devtools.docs [--check]``: write (or check) the generated reference pages."""

from __future__ import annotations

import argparse
import sys

from devtools.docs import stale_pages, write_pages

__all__: list[str] = []


def main() -> int:
    """Write the pages, or with ``--check`` report the stale ones and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m devtools.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args()
    if args.check:
        stale = stale_pages()
        for path in stale:
            print(f"{path} is stale: run python -m devtools.docs", file=sys.stderr)
        return 1 if stale else 0
    for path in write_pages():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
