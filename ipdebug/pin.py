"""The one-time PIN of a window and the cookie that remembers it.

``ipdebug enable`` draws a fresh 9-digit PIN from :mod:`secrets` and stores
only a salted scrypt hash of it in the flag. Werkzeug's own PIN is derived
from machine facts (CVE-2019-14806 showed how guessable that can be) and its
cookie is an unsalted SHA-1 of the PIN valid for a week; ipdebug replaces
both:

- the cookie is an HMAC over the window id and a timestamp, keyed by a value
  derived from the PIN hash, so any worker that can read the flag can check
  it and no cookie outlives its window;
- failed attempts are counted per window across all workers by the flag store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

#: Failed PIN attempts after which a window's console locks for everyone.
MAX_PIN_FAILURES = 10

# scrypt cost: about 40 ms and 16 MiB per check on a 2020s server core, which
# makes an offline guess of a leaked flag slow and online guessing pointless
# next to the lockout.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def new_pin() -> str:
    """A fresh PIN in Werkzeug's format, ``123-456-789``."""
    digits = f"{secrets.randbelow(10**9):09d}"
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def normalise_pin(entered: str) -> str:
    """What the person typed, without spaces and dashes (as Werkzeug does)."""
    return "".join(entered.split()).replace("-", "")


@dataclass(frozen=True)
class PinHash:
    """A salted scrypt hash of a PIN, as stored in the flag."""

    salt: bytes
    digest: bytes
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P

    @classmethod
    def create(cls, pin: str) -> PinHash:
        salt = secrets.token_bytes(16)
        return cls(
            salt=salt,
            digest=_scrypt(normalise_pin(pin), salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P),
        )

    def verify(self, entered: str) -> bool:
        """Constant-time check of a PIN as typed by a person."""
        candidate = normalise_pin(entered)
        if not candidate.isdigit() or len(candidate) > 32:
            return False
        return hmac.compare_digest(
            _scrypt(candidate, self.salt, self.n, self.r, self.p), self.digest
        )

    def to_json(self) -> dict[str, object]:
        return {
            "alg": "scrypt",
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "salt": _b64(self.salt),
            "hash": _b64(self.digest),
        }

    @classmethod
    def from_json(cls, data: object) -> PinHash:
        """:raises ValueError: describing the first bad field."""
        if not isinstance(data, dict) or data.get("alg") != "scrypt":
            raise ValueError("'pin' is not an scrypt hash")
        n, r, p = (data.get(k) for k in ("n", "r", "p"))
        if not (type(n) is int and type(r) is int and type(p) is int):
            raise ValueError("'pin' has non-integer scrypt parameters")
        # Bounds keep a forged flag from making each check cost seconds.
        if not (
            2**10 <= n <= 2**17 and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 4
        ):
            raise ValueError("'pin' has scrypt parameters out of range")
        salt = _unb64(data.get("salt"))
        digest = _unb64(data.get("hash"))
        if salt is None or len(salt) < 16 or digest is None or len(digest) != 32:
            raise ValueError("'pin' has a bad salt or hash")
        return cls(salt=salt, digest=digest, n=n, r=r, p=p)

    def cookie_key(self) -> bytes:
        """The key that signs this window's PIN cookies."""
        return hashlib.sha256(b"ipdebug pin cookie\0" + self.digest).digest()


def make_cookie(pin_hash: PinHash, window_id: str, now: float) -> str:
    """The cookie value a browser gets for entering the PIN of ``window_id``."""
    stamp = str(int(now))
    return f"{stamp}.{_mac(pin_hash, window_id, stamp)}"


def cookie_is_valid(
    value: str | None, pin_hash: PinHash, window_id: str, created: float, now: float
) -> bool:
    """Whether ``value`` was issued for this window (not an earlier one)."""
    if not value or len(value) > 100:
        return False
    stamp, _, mac = value.partition(".")
    if not stamp.isdigit() or not stamp.isascii():
        return False
    # Issued inside the window (a minute of clock skew between workers).
    if not created - 60 <= int(stamp) <= now + 60:
        return False
    # Bytes: compare_digest refuses non-ASCII str, and the cookie is the
    # client's.
    return hmac.compare_digest(
        mac.encode("utf-8", "replace"), _mac(pin_hash, window_id, stamp).encode()
    )


def _mac(pin_hash: PinHash, window_id: str, stamp: str) -> str:
    message = f"{window_id}.{stamp}".encode()
    return hmac.new(pin_hash.cookie_key(), message, hashlib.sha256).hexdigest()


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 2**20
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) > 200:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None
