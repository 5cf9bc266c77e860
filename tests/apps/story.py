"""An app whose failure has the whole exception story, for the native
engine's browser test: a nested exception group with notes, and locals
whose representation is fine, raises, or is huge.
"""

from __future__ import annotations

import os
import typing as t


class RaisingRepr:
    def __repr__(self) -> str:
        raise ValueError("repr exploded")


def check(item: str) -> None:
    raise ValueError(f"{item} is out of stock")


def app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    if environ["PATH_INFO"] == "/group":
        worker_pid = os.getpid()  # noqa: F841
        basket = {"apples": 3, "pears": 0}  # noqa: F841
        bad = RaisingRepr()  # noqa: F841
        errors: list[Exception] = []
        for item in ["apples", "pears"]:
            try:
                check(item)
            except ValueError as exc:
                exc.add_note(f"while checking {item}")
                errors.append(exc)
        nested = ExceptionGroup("payment", [TimeoutError("bank slow")])  # noqa: F821
        raise ExceptionGroup("checkout failed", [*errors, nested])  # noqa: F821
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
