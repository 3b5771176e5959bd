"""Every use of an upstream library's private names, one module per library.

``faust`` (faust-streaming), ``aiokafka`` and ``prometheus`` each open with what they rely
on, why no public interface serves, and the version pinned in ``pyproject.toml``. Nothing
else in ``stream/`` imports or touches a private name of faust, mode, aiokafka or
prometheus-client (``tests/unit/test_upstream_seams.py`` checks it); the pin tests beside
them (``tests/unit/test_upstream_*.py``) fail and name the change if an upgrade moves one.
"""

__all__: list[str] = []
