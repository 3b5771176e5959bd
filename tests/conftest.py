"""Test-wide set-up: the Hypothesis profile of the tier, and the tier markers.

Every test under ``tests/unit`` is marked ``unit`` (the tier that starts no service); a
unit test that asks for a fixture that starts one fails at collection, so the tier stays
fast and its name stays true. See ``devtools/tiers.py`` for what each tier runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.profiles  # noqa: F401  (registers and loads the Hypothesis profile)

_UNIT = Path(__file__).parent / "unit"
_SERVICE_FIXTURES = {"stack", "cluster_stack", "secure_stack", "deploy", "cluster_deploy"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _UNIT in Path(item.path).parents:
            item.add_marker(pytest.mark.unit)
            services = _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
            if services:
                raise pytest.UsageError(
                    f"{item.nodeid} is a unit test but uses {sorted(services)}: "
                    "move it to tests/integration"
                )
