"""``python -m devtools COMMAND``: the development commands (stack, simulate, demo, bench)."""

from __future__ import annotations

from devtools.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
