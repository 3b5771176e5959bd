"""Which implementation of the per-event kernel runs: the compiled one or the pure Python.

The compiled kernel is the extension module ``engagement_kernel`` (the Rust crate in
``kernel/``, built by ``make install``). Each of its functions matches a pure-Python
function of this package exactly (``tests/unit/test_kernel_differential.py`` holds them
equal); the Python ones stay the readable reference and the fallback.

``ENGAGEMENT_KERNEL`` chooses (``stream.config.settings``): ``auto`` (the default) takes the
compiled kernel when it is built and the Python otherwise, ``rust`` requires the compiled
one (start-up fails naming the problem when it is not built), ``python`` never loads it.
The worker calls ``use`` once at start-up; ``active`` is the kernel in force (``auto``
until then).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from stream.core.decode import DecodeLimits, Ignored, Rejection, decode_event
from stream.errors import EngagementError

if TYPE_CHECKING:
    from stream.core.customer import CustomerState
    from stream.core.events import Event
    from stream.core.model import ScoringModel

__all__ = [
    "KERNEL_CHOICES",
    "MODULE",
    "Decoder",
    "FastDecode",
    "Kernel",
    "KernelChoice",
    "KernelName",
    "KernelUnavailableError",
    "active",
    "fast_decoder",
    "load",
    "running_warmer",
    "use",
]

KernelChoice = Literal["auto", "rust", "python"]
KernelName = Literal["rust", "python"]
KERNEL_CHOICES: tuple[KernelChoice, ...] = get_args(KernelChoice)
#: the compiled kernel's module name
MODULE = "engagement_kernel"


class KernelUnavailableError(EngagementError):
    """``ENGAGEMENT_KERNEL=rust`` while the compiled kernel is not built or does not load."""


@dataclass(frozen=True, slots=True)
class Kernel:
    """The kernel in force: its name, the compiled module (None: the pure Python) and why
    this one was taken."""

    name: KernelName
    native: ModuleType | None
    reason: str


def load(choice: str = "auto") -> Kernel:
    """The kernel ``choice`` asks for (``auto``, ``rust`` or ``python``)."""
    if choice not in KERNEL_CHOICES:
        raise KernelUnavailableError(
            f"ENGAGEMENT_KERNEL: {choice!r} is not one of {', '.join(KERNEL_CHOICES)}"
        )
    if choice == "python":
        return Kernel("python", None, "ENGAGEMENT_KERNEL=python")
    try:
        native = importlib.import_module(MODULE)
    except ImportError as error:
        if choice == "rust":
            raise KernelUnavailableError(
                f"ENGAGEMENT_KERNEL=rust, but the compiled kernel ({MODULE}) does not load: "
                f"{error}; build it with `make install` (needs Rust's cargo), or set "
                "ENGAGEMENT_KERNEL=auto or python"
            ) from error
        return Kernel("python", None, f"auto: the compiled kernel is not built ({error})")
    return Kernel("rust", native, f"{choice}: {MODULE} from {native.__file__}")


_active: Kernel | None = None


def use(choice: str) -> Kernel:
    """Load the kernel ``choice`` asks for and make it the one in force."""
    global _active  # noqa: PLW0603 (one process-wide choice, made once at start-up)
    _active = load(choice)
    return _active


def active() -> Kernel:
    """The kernel in force (``auto`` when ``use`` has not been called)."""
    global _active  # noqa: PLW0603
    if _active is None:
        _active = load("auto")
    return _active


class FastDecode(Protocol):
    """The compiled fast path of ``decode_event`` for one model and one set of limits."""

    def decode(
        self,
        raw: bytes,
        key: bytes | None,
        topic_role: str,
        now_ms: int,
        fallback_id: str,
        replay: bool = False,
    ) -> Event | None:
        """The Event ``decode_event`` returns for a plain valid native message, or None
        (then ``decode_event`` decides, as without the kernel)."""
        ...


def fast_decoder(
    model: ScoringModel, limits: DecodeLimits, loaded: Kernel | None = None
) -> FastDecode | None:
    """The compiled fast decoder of a kernel (default: the one in force); None: Python."""
    native = (loaded or active()).native
    if native is None:
        return None
    decoder: FastDecode = native.FastDecoder(model, limits)
    return decoder


class Decoder:
    """``decode_event`` for one model and one set of limits, through the compiled fast path
    when the kernel in force has one: the same results (the differential test holds them
    equal), the Python deciding every message the fast path declines."""

    __slots__ = ("fast", "limits", "model", "replay")

    def __init__(
        self,
        model: ScoringModel,
        limits: DecodeLimits | None = None,
        *,
        replay: bool = False,
        loaded: Kernel | None = None,
    ) -> None:
        self.model = model
        self.limits = limits or DecodeLimits()
        self.replay = replay
        self.fast = fast_decoder(model, self.limits, loaded)

    def __call__(
        self, raw: bytes, key: bytes | None, topic_role: str, now_ms: int, fallback_id: str
    ) -> Event | Rejection | Ignored:
        if self.fast is not None:
            event = self.fast.decode(raw, key, topic_role, now_ms, fallback_id, self.replay)
            if event is not None:
                return event
        # the Python fast path only when the compiled one did not already decline
        return decode_event(raw, key=key, topic_role=topic_role, model=self.model,
                            now_ms=now_ms, fallback_id=fallback_id, limits=self.limits,
                            replay=self.replay, fast=self.fast is None)  # fmt: skip


def running_warmer(
    model: ScoringModel, loaded: Kernel | None = None
) -> Callable[[CustomerState], None] | None:
    """With the compiled kernel, a function that gives a state just read from the store its
    running window totals (``window.Running.build``, compiled), so that ``advance`` need not
    build them; None with the pure Python (``advance`` builds them as it always has)."""
    native = (loaded or active()).native
    if native is None:
        return None
    from stream.core.window import returning_gap  # noqa: PLC0415 (only with the kernel)

    gap = returning_gap(model)
    build = native.running_build

    def warm(state: CustomerState) -> None:
        state.running = build(model, state.buckets, state.prior_active, gap)

    return warm
