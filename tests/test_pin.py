from __future__ import annotations

import re

import pytest

from ipdebug.pin import PinHash, cookie_is_valid, make_cookie, new_pin


def test_new_pins_look_like_werkzeugs_and_differ() -> None:
    pins = {new_pin() for _ in range(50)}
    assert len(pins) == 50
    assert all(re.fullmatch(r"\d{3}-\d{3}-\d{3}", p) for p in pins)


def test_hash_verifies_only_the_pin() -> None:
    pin = "123-456-789"
    hashed = PinHash.create(pin)
    assert hashed.verify("123-456-789")
    assert hashed.verify(" 123456789 ")  # typed without dashes, as Werkzeug allows
    assert not hashed.verify("123-456-788")
    assert not hashed.verify("")
    assert not hashed.verify("abc")
    assert pin not in repr(hashed.to_json())
    assert "123456789" not in repr(hashed.to_json())


def test_hash_round_trips_through_json() -> None:
    hashed = PinHash.create("111-222-333")
    again = PinHash.from_json(hashed.to_json())
    assert again == hashed
    assert again.verify("111222333")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"alg": "sha1"}, "not an scrypt hash", id="alg"),
        pytest.param({"n": 2**30}, "out of range", id="huge-n"),
        pytest.param({"n": 1000}, "out of range", id="n-not-power-of-two"),
        pytest.param({"r": "8"}, "non-integer", id="string-param"),
        pytest.param({"salt": "!!"}, "bad salt", id="salt"),
        pytest.param({"hash": "AAAA"}, "bad salt or hash", id="short-hash"),
    ],
)
def test_from_json_rejects(change: dict[str, object], message: str) -> None:
    data = PinHash.create("111-222-333").to_json()
    data.update(change)
    with pytest.raises(ValueError, match=message):
        PinHash.from_json(data)


def test_cookie_is_bound_to_its_window_and_pin() -> None:
    hashed = PinHash.create("111-222-333")
    cookie = make_cookie(hashed, "a" * 32, now=1000.0)
    assert cookie_is_valid(cookie, hashed, "a" * 32, created=990.0, now=1010.0)
    assert not cookie_is_valid(
        cookie, hashed, "b" * 32, created=990.0, now=1010.0
    )  # another window
    assert not cookie_is_valid(
        cookie, PinHash.create("111-222-333"), "a" * 32, created=990.0, now=1010.0
    )  # new PIN hash
    assert not cookie_is_valid(
        cookie, hashed, "a" * 32, created=2000.0, now=2010.0
    )  # issued before the window
    stamp, mac = cookie.split(".")
    assert not cookie_is_valid(
        f"{int(stamp) + 1}.{mac}", hashed, "a" * 32, created=990.0, now=1010.0
    )
    for junk in [
        "",
        "x",
        "1000.",
        ".abc",
        "1000|" + mac,
        None,
        "1000.\u00e9",
        f"{stamp}.{mac[:-1]}\u00e9",
    ]:
        assert not cookie_is_valid(junk, hashed, "a" * 32, created=990.0, now=1010.0)
