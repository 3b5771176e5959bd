"""``python -m devtools.corebench``: print the core's per-event cost as JSON."""

from __future__ import annotations

import json

from devtools.corebench import run

print(json.dumps(run()))
