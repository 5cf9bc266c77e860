"""A window: what ``ipdebug enable`` writes, and how it is encoded.

A *window* is written by ``ipdebug enable`` and read by every process that
runs the middleware. It says until when the debugger may be served, for which
addresses, why, by whom, and holds the hash of its one-time PIN. Where it is
kept is a store's business (:mod:`ipdebug.stores`).
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..gate import Networks
from ..pin import PinHash

#: The format version written into every flag.
FORMAT = 1

#: How far in the future a flag's ``created`` may be (clock skew between the
#: operator's shell and the server) before the flag is refused.
CLOCK_SKEW = 60.0

_ID_RE = re.compile(r"[0-9a-f]{16,64}", re.ASCII)
#: The external debuggers a window may ask for (``None``: the browser's).
ATTACH_KINDS = (None, "pdb", "debugpy")
_MAX_REASON = 500


@dataclass(frozen=True)
class Window:
    """One debugging window, as written by ``ipdebug enable``.

    Times are wall-clock epoch seconds (UTC): the flag is written by another
    process, possibly on another host, so a monotonic clock cannot be shared.
    """

    id: str
    created: float
    until: float
    allow: tuple[str, ...]
    reason: str
    by: str
    pin: PinHash = field(repr=False)
    networks: Networks | None = field(default=None, compare=False, repr=False)
    #: ``"pdb"`` or ``"debugpy"``: an external debugger for this window
    #: (``ipdebug enable --attach``), or ``None``.
    attach: str | None = None
    #: Capture the unhandled errors of clients that are not gated in
    #: (``ipdebug enable --capture``). Flags written before this field
    #: existed do not capture.
    capture: bool = False

    @classmethod
    def new(
        cls,
        *,
        now: float,
        duration: float,
        allow: tuple[str, ...],
        reason: str,
        by: str,
        pin_hash: PinHash,
        attach: str | None = None,
        capture: bool = False,
    ) -> Window:
        if attach not in ATTACH_KINDS:
            raise ConfigError("--attach", attach, "must be pdb or debugpy")
        if not isinstance(capture, bool):
            raise ConfigError("capture", capture, "must be True or False")
        return cls(
            id=secrets.token_hex(16),
            created=now,
            until=now + duration,
            allow=allow,
            reason=reason,
            by=by,
            pin=pin_hash,
            networks=Networks(allow, setting="--allow") if allow else None,
            attach=attach,
            capture=capture,
        )

    def expires(self, max_window: float) -> float:
        """When this window ends for a deployment whose ceiling is
        ``max_window``: a flag is never honoured longer than that after it
        was written, whatever it says.
        """
        return min(self.until, self.created + max_window)

    def to_json(self) -> str:
        return json.dumps(
            {
                "ipdebug": FORMAT,
                "id": self.id,
                "created": self.created,
                "until": self.until,
                "allow": list(self.allow),
                "reason": self.reason,
                "by": self.by,
                "pin": self.pin.to_json(),
                "attach": self.attach,
                "capture": self.capture,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, now: float) -> Window:
        """Parse and validate a flag.

        :raises ValueError: describing the first problem found.
        """
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"is not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError("is not valid JSON (nested too deeply)") from None
        if not isinstance(data, dict):
            raise ValueError("is not a JSON object")
        if type(data.get("ipdebug")) is not int or data.get("ipdebug") != FORMAT:
            raise ValueError(f"has format {data.get('ipdebug')!r}, expected {FORMAT}")
        window_id = data.get("id")
        if not isinstance(window_id, str) or not _ID_RE.fullmatch(window_id):
            raise ValueError("has no valid 'id'")
        created = _number(data, "created")
        until = _number(data, "until")
        if until <= created:
            raise ValueError("has 'until' before 'created'")
        if created > now + CLOCK_SKEW:
            raise ValueError(
                "was created in the future (check the clocks, then enable again)"
            )
        allow = data.get("allow")
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise ValueError("has an 'allow' that is not a list of strings")
        try:
            networks = Networks(allow, setting="allow") if allow else None
        except ConfigError as exc:
            raise ValueError(f"has a bad 'allow' entry {exc.value!r}") from None
        reason = data.get("reason", "")
        by = data.get("by", "")
        # Printable text only, as `ipdebug enable` writes it: no control
        # characters for the logs, no lone surrogates that JSON escapes can
        # smuggle in (they do not survive a round trip).
        if not _is_text(reason):
            raise ValueError("has a bad 'reason'")
        if not _is_text(by):
            raise ValueError("has a bad 'by'")
        pin_hash = PinHash.from_json(data.get("pin"))
        attach = data.get("attach")
        if attach not in ATTACH_KINDS:
            raise ValueError(f"has an unknown 'attach' {attach!r}")
        capture = data.get("capture", False)
        if not isinstance(capture, bool):
            raise ValueError(f"has a 'capture' that is not true or false: {capture!r}")
        return cls(
            id=window_id,
            created=created,
            until=until,
            allow=tuple(allow),
            reason=reason,
            by=by,
            pin=pin_hash,
            networks=networks,
            attach=attach,
            capture=capture,
        )


def _is_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_REASON and value.isprintable()


def _number(data: dict[str, object], key: str) -> float:
    value = data.get(key)
    try:
        number = float(value) if type(value) in (int, float) else math.nan  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"has no valid {key!r}")
    return number
