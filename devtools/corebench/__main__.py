"""``python -m devtools.corebench [ROUNDS]``: print the core's per-event cost per kernel
(the pure Python and the compiled one, alternating; medians) as JSON."""

from __future__ import annotations

import json
import sys

from devtools.corebench import compare

print(json.dumps(compare(int(sys.argv[1]) if len(sys.argv) > 1 else 3), indent=1))
