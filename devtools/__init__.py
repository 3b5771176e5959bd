"""Development tooling for engagement-stream: the local stack, the simulator, the demo and the
benchmark. Not part of the service: the worker image holds ``stream`` only.

Installed into the development virtualenv by ``make install`` (a ``.pth`` entry for the
checkout), where ``engagement`` also offers these tools as subcommands.
"""

__all__: list[str] = []
