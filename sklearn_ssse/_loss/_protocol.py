"""The loss protocol (see :mod:`sklearn_ssse._loss`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Loss(Protocol):
    """What the estimators ask of a per-sample loss (see the module documentation)."""

    name: str
    coupled: bool
    third_derivative_bound: float | None

    def loss(self, raw, y): ...

    def gradient(self, raw, y): ...
