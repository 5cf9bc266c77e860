"""The Werkzeug debugger internals ipdebug relies on (ipdebug/internals.py).

They are not public API. If a Werkzeug release changes one, these tests fail
with a message naming it; fix ipdebug/internals.py and the pinned range in
pyproject.toml together.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import pkgutil
import re
import sys

import werkzeug
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from werkzeug.debug import _ConsoleFrame
from werkzeug.debug.tbtools import (
    DebugFrameSummary,
    DebugTraceback,
    render_console_html,
)


def failing() -> None:
    answer = 42
    raise ValueError(f"answer {answer}")


def caught() -> ValueError:
    try:
        failing()
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


#: The Werkzeug releases the suite has passed against (the nox sessions run
#: both ends); pyproject.toml states the same range.
TESTED = SpecifierSet(">=2.3.8,<3.2")
WERKZEUG = Version(importlib.metadata.version("werkzeug"))


def test_werkzeug_is_inside_the_tested_range() -> None:
    assert WERKZEUG in TESTED, f"Werkzeug {WERKZEUG} is outside the tested range"


def test_the_pin_states_the_tested_range() -> None:
    # Read from the installed package's metadata, so that it holds for the
    # wheel as much as for the source tree.
    requirements = [
        Requirement(r) for r in importlib.metadata.requires("ipdebug") or []
    ]
    (werkzeug_pin,) = [r for r in requirements if r.name.lower() == "werkzeug"]
    assert werkzeug_pin.specifier == TESTED
    assert not werkzeug_pin.marker and not werkzeug_pin.extras


def test_debug_traceback_frames_and_page() -> None:
    tb = DebugTraceback(caught(), skip=1)
    frames = tb.all_frames
    assert frames and all(isinstance(f, DebugFrameSummary) for f in frames)
    assert frames[-1].name == "failing"
    assert "42" in frames[-1].eval("answer")
    html = tb.render_debugger_html(evalex=True, secret="123xabc", evalex_trusted=False)
    assert 'SECRET = "123xabc"' in html
    assert "EVALEX = true" in html and "EVALEX_TRUSTED = false" in html
    ids = [int(i) for i in re.findall(r'id="frame-(\d+)"', html)]
    assert ids == [id(f) for f in frames], (
        "frame ids in the page are no longer id(frame)"
    )
    assert "ValueError: answer 42" in tb.render_traceback_text()


def test_console_frame_and_page() -> None:
    frame = _ConsoleFrame({"app": "the app"})
    assert frame.id == 0
    assert "the app" in frame.eval("app")
    html = render_console_html(secret="123xabc", evalex_trusted=True)
    assert "CONSOLE_MODE = true" in html and 'SECRET = "123xabc"' in html


#: How the page's JavaScript builds each request ipdebug answers. The
#: parameters are the same in every tested release; only the way the URL is
#: written changed: Werkzeug 3.0 added ``makeDebugURL``, which also sends the
#: secret with resource requests (ipdebug ignores it there).
if Version("3.0") <= WERKZEUG:
    PROTOCOL = [
        'params.set("s", SECRET)',
        "return `?__debugger__=yes&${params}`",
        'makeDebugURL({cmd: "pinauth", pin: this.pin.value})',
        'makeDebugURL({cmd: "printpin"})',
        'makeDebugURL({cmd: "resource", f: "console.png"})',
        "makeDebugURL({cmd: command.value, frm: frameID})",
    ]
else:  # 2.3.x
    PROTOCOL = [
        "?__debugger__=yes&cmd=pinauth&pin=${pin}&s=${encodedSecret}",
        "?__debugger__=yes&cmd=printpin&s=${encodedSecret}",
        '"?__debugger__=yes&cmd=resource&f=console.png"',
        '__debugger__: "yes",\n      cmd: cmd,\n      frm: frameID,\n      s: SECRET,',
    ]


def test_resources_and_the_javascript_protocol() -> None:
    js = pkgutil.get_data("werkzeug.debug", "shared/debugger.js")
    assert js is not None
    text = js.decode()
    # ipdebug answers exactly these requests of the page's JavaScript.
    for fragment in [*PROTOCOL, "({auth, exhausted})"]:
        assert fragment in text, f"Werkzeug {WERKZEUG}: {fragment}"
    for name in ["style.css", "console.png", "less.png", "more.png"]:
        assert pkgutil.get_data("werkzeug.debug", f"shared/{name}"), name


def test_flask_preserves_contexts_through_the_werkzeug_key() -> None:
    import flask.app

    source = inspect.getsource(flask.app.Flask.wsgi_app)
    assert "werkzeug.debug.preserve_context" in source
    assert sys.modules["werkzeug"] is werkzeug


def test_the_pin_prompt_hint_ipdebug_replaces() -> None:
    # ipdebug/internals.py replaces this sentence of the PIN prompt (the
    # PIN comes from `ipdebug enable`, never from the server's output).
    from ipdebug import internals

    html = DebugTraceback(caught(), skip=1).render_debugger_html(
        evalex=True, secret="123xabc", evalex_trusted=False
    )
    console = render_console_html(secret="123xabc", evalex_trusted=False)
    for page in (html, console):
        assert internals._PIN_HINT.search(page), (
            "Werkzeug's PIN prompt text changed: update _PIN_HINT in ipdebug/internals.py"
        )
        replaced = internals.with_banner(page, "")
        assert internals.PIN_HINT in replaced
        assert "standard output" not in replaced


def test_frames_keep_their_console_namespaces() -> None:
    # ipdebug/internals.py offers names (Flask's request, ...) by adding
    # them to a frame's local_ns, which its console evaluates in.
    frame = DebugTraceback(caught(), skip=1).all_frames[-1]
    assert frame.local_ns is not frame.global_ns
    frame.local_ns["offered"] = 7
    assert "7" in frame.eval("offered * 1")
    assert "offered" not in globals()


def test_the_start_up_contract_check_passes() -> None:
    """What ``engine="auto"`` checks before choosing Werkzeug's engine."""
    from ipdebug.debugger.engines import werkzeug_problem
    from ipdebug.debugger.engines.werkzeug import contract_problem

    assert contract_problem() is None
    assert werkzeug_problem() is None
