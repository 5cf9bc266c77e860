"""Fuzz the flag parser (:meth:`ipdebug.stores.window.Window.from_json`) and the PIN
cookie check (:func:`ipdebug.pin.cookie_is_valid`).

Run it alone with ``python fuzz/fuzz_flag.py -max_total_time=60 [CORPUS]``
(any libFuzzer flag works), or all harnesses with ``python fuzz/run.py``.

Each input is used twice:

- as the flag file itself, bytes and text (the seeds are real flags, so
  libFuzzer's mutations of them are corrupt flags);
- as the choices of a :class:`atheris.FuzzedDataProvider` that edits a valid
  flag field by field (wrong types, huge or non-finite numbers, bad base64,
  missing keys, deeply nested arrays), which reaches the checks behind a
  well-formed JSON object.

``from_json`` may raise ``ValueError`` (``PinHash.from_json`` raises it for
the ``pin`` object) and nothing else; a window it accepts is valid and
survives ``to_json``. ``cookie_is_valid`` never raises, returns a ``bool``,
accepts the window's own cookie and refuses another window's.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import sys

import atheris

with atheris.instrument_imports(include=["ipdebug"]):
    from ipdebug.pin import PinHash, cookie_is_valid, make_cookie
    from ipdebug.stores.window import CLOCK_SKEW, Window

#: The time at which flags are read: inside the window of the seeds.
NOW = 1_700_000_300.0

BASE_WINDOW = Window(
    id="0123456789abcdef0123456789abcdef",
    created=1_700_000_000.0,
    until=1_700_000_900.0,
    allow=("203.0.113.7", "2001:db8::/32"),
    reason="INC-42",
    by="app@host",
    pin=PinHash(salt=bytes(range(16)), digest=bytes(range(32))),
)
BASE_FLAG: dict[str, object] = json.loads(BASE_WINDOW.to_json())

_FIELDS = ("ipdebug", "id", "created", "until", "allow", "reason", "by", "pin")
_PIN_FIELDS = ("alg", "n", "r", "p", "salt", "hash")
_DEEP = "\0deep\0"
_DEEP_RE = re.compile(
    re.escape(json.dumps(_DEEP)[:-1]) + r"(\d+)" + re.escape(json.dumps(_DEEP)[1:])
)


def _value(fdp: atheris.FuzzedDataProvider) -> object:
    """One JSON value, biased towards what the validators look at."""
    kind = fdp.ConsumeIntInRange(0, 13)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(4)
    if kind == 3:  # beyond what a float holds
        return (-1) ** fdp.ConsumeIntInRange(0, 1) * 10 ** fdp.ConsumeIntInRange(
            300, 400
        )
    if kind == 4:  # NaN and infinities too (json writes them, and reads them)
        return fdp.ConsumeFloat()
    if kind == 5:
        return NOW + fdp.ConsumeFloatInRange(-1e6, 1e6)
    if kind == 6:
        return fdp.ConsumeUnicode(80)
    if kind == 7:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)).hex()
    if kind == 8:
        return base64.b64encode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))).decode()
    if kind == 9:
        return [fdp.ConsumeUnicode(40) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if kind == 10:
        return 2 ** fdp.ConsumeIntInRange(0, 20)
    if kind == 11:
        return {fdp.ConsumeUnicode(8): fdp.ConsumeUnicode(8)}
    if kind == 12:  # json.dumps cannot nest deeper than the stack: see _nest
        return f"{_DEEP}{fdp.ConsumeIntInRange(1, 5000)}{_DEEP}"
    return [_value(fdp)] if fdp.remaining_bytes() else []


def _nest(text: str) -> str:
    """Replace each deep-nesting placeholder by that many nested arrays."""
    return _DEEP_RE.sub(lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)


def mutated_flag(fdp: atheris.FuzzedDataProvider) -> dict[str, object]:
    """A valid flag with a few fields replaced or removed."""
    flag = copy.deepcopy(BASE_FLAG)
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        pin = flag.get("pin")
        if isinstance(pin, dict) and fdp.ConsumeBool():
            target, key = pin, fdp.PickValueInList([*_PIN_FIELDS, "x"])
        else:
            target, key = flag, fdp.PickValueInList([*_FIELDS, "x"])
        if fdp.ConsumeIntInRange(0, 4) == 0:
            target.pop(key, None)
        else:
            target[key] = _value(fdp)
    return flag


def check_window(window: Window, now: float) -> None:
    """What every window ``from_json`` returns must satisfy."""
    what = f"from_json gave {window!r}"
    if type(window) is not Window or type(window.pin) is not PinHash:
        raise AssertionError(what)
    for t in (window.created, window.until):
        if type(t) is not float or not math.isfinite(t):
            raise AssertionError(f"{what} with a bad time {t!r}")
    if not window.created < window.until or window.created > now + CLOCK_SKEW:
        raise AssertionError(f"{what}: created/until out of order")
    if not all(type(a) is str for a in window.allow):
        raise AssertionError(f"{what} with a bad allow {window.allow!r}")
    if len(window.networks or ()) != len(window.allow):
        raise AssertionError(f"{what} with networks {window.networks!r}")
    if len(window.pin.salt) < 16 or len(window.pin.digest) != 32:
        raise AssertionError(f"{what} with a bad PIN hash")
    again = Window.from_json(window.to_json(), now=now)
    if again != window:
        raise AssertionError(f"{what}, which reads back as {again!r}")


def parse_flag(text: str | bytes) -> Window | None:
    try:
        window = Window.from_json(text, now=NOW)
    except ValueError:
        return None
    check_window(window, NOW)
    return window


def check_cookies(fdp: atheris.FuzzedDataProvider, window: Window) -> None:
    def valid(value: str | None) -> bool:
        result = cookie_is_valid(value, window.pin, window.id, window.created, NOW)
        if type(result) is not bool:
            raise AssertionError(f"cookie_is_valid({value!r}) is {result!r}")
        return result

    if fdp.ConsumeBool():
        value = fdp.ConsumeUnicode(120)
    else:  # a time stamp inside the window, then anything
        stamp = int(window.created) + fdp.ConsumeIntInRange(-120, 1200)
        value = f"{stamp}.{fdp.ConsumeUnicode(80)}"
    valid(value)
    valid(None)
    own = make_cookie(window.pin, window.id, NOW)
    if not valid(own):
        raise AssertionError(f"the window's own cookie {own!r} is refused")
    other = make_cookie(window.pin, "f" * 32, NOW)
    if window.id != "f" * 32 and valid(other):
        raise AssertionError(f"another window's cookie {other!r} is accepted")


def TestOneInput(data: bytes) -> None:
    parse_flag(data)
    parse_flag(data.decode("utf-8", "surrogateescape"))
    fdp = atheris.FuzzedDataProvider(data)
    flag = mutated_flag(fdp)
    text = _nest(json.dumps(flag))
    window = parse_flag(text.encode() if fdp.ConsumeBool() else text)
    check_cookies(fdp, window or BASE_WINDOW)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
