"""The native engine: the exception story, safe representations, the
console, the POST protocol (no secrets in URLs), JSON for API clients, and
``auto`` falling back when Werkzeug's debugger is gone.
"""

from __future__ import annotations

import html
import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
import typing as t

import pytest
from webtest import TestApp
from werkzeug.test import EnvironBuilder

from ipdebug import ConfigError, IPDebugMiddleware
from ipdebug.debugger.engines import MAX_BODY
from ipdebug.debugger.engines.native import model, saferepr
from ipdebug.gate.crosssite import is_cross_site

from .conftest import (
    HOST,
    OPERATOR,
    SECRET_HEADER,
    STRANGER,
    Payload,
    client,
    open_window,
    secret_and_frame,
    unlock,
)
from .servers import ROOT

# Exception groups, notes and column positions are Python 3.11+ (the project
# supports 3.10, where the native engine shows the rest of the story).
needs_311 = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="exception groups need Python 3.11"
)


class RaisingRepr:
    def __repr__(self) -> str:
        raise ValueError("repr exploded")


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 5_000_000


class LoopingRepr:
    def __repr__(self) -> str:
        text = ""
        while True:
            text = text[-1000:] + "y"


def hidden_helper() -> None:
    __tracebackhide__ = True
    raise KeyError("from a hidden frame")


def story_app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> t.Iterable[bytes]:
    """Fails with the whole exception story."""
    path = environ["PATH_INFO"]
    if path == "/group":
        bad = RaisingRepr()  # noqa: F841
        huge = HugeRepr()  # noqa: F841
        errors: list[Exception] = []
        for n in range(3):
            try:
                raise ValueError(f"item {n} is bad")
            except ValueError as exc:
                exc.add_note(f"while checking item {n}")
                errors.append(exc)
        inner = ExceptionGroup("inner batch", [TypeError("nested type error")])  # noqa: F821
        raise ExceptionGroup("batch failed", [*errors, inner])  # noqa: F821
    if path == "/chain":
        try:
            try:
                {}["missing"]
            except KeyError:
                raise OSError("disk gone")  # noqa: B904 (the implicit context)
        except OSError as exc:
            raise RuntimeError("could not save") from exc
    if path == "/suppressed":
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            raise LookupError("clean") from None
    if path == "/hidden":
        hidden_helper()
    if path == "/column":
        numbers = [1, 2]
        return [bytes(numbers[0] + numbers[5])]
    if path == "/loop":
        slow = LoopingRepr()  # noqa: F841
        raise RuntimeError("a local loops in __repr__")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def native(
    make: t.Callable[..., IPDebugMiddleware],
) -> tuple[IPDebugMiddleware, TestApp, str]:
    middleware = make(story_app, engine="native")
    opened = open_window(middleware)
    return middleware, client(middleware), opened.pin


def page_of(app: TestApp, path: str) -> str:
    return t.cast(str, app.get(path, status=500, expect_errors=True).text)


def post(
    app: TestApp, cmd: str, secret: str, expect: int = 200, **fields: str
) -> t.Any:
    return app.post(
        f"/?__debugger__=yes&cmd={cmd}",
        fields,
        headers={SECRET_HEADER: secret},
        status=expect,
    )


def unlocked(app: TestApp, path: str, pin: str) -> tuple[str, str]:
    secret, frame = secret_and_frame(page_of(app, path))
    assert unlock(app, secret, pin, engine="native") == {
        "auth": True,
        "exhausted": False,
    }
    return secret, frame


def run(app: TestApp, secret: str, frame: str, code: str) -> str:
    return t.cast(str, post(app, "eval", secret, frm=frame, code=code).text)


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# The exception story


@needs_311
def test_exception_groups_nested_with_notes(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, _ = native
    page = page_of(app, "/group")
    assert "batch failed (4 sub-exceptions)" in page
    assert page.count('<details class="sub" open>') == 5  # 4 + the nested one
    for n in range(3):
        assert f"item {n} is bad" in page and f"while checking item {n}" in page
    assert "inner batch (1 sub-exception)" in page and "nested type error" in page
    # The plain-text traceback has the same structure, in Python's layout.
    plain = html.unescape(page.split('aria-label="Plain-text traceback">')[1])
    assert "ExceptionGroup: batch failed (4 sub-exceptions)" in plain
    assert "| | TypeError: nested type error" in plain
    assert "| while checking item 2" in plain


def test_chains_cause_and_context_in_order(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, _ = native
    page = page_of(app, "/chain")
    story = [
        text_of(m)
        for m in re.findall(r'<h2>.*?</h2>|<p class="relation">.*?</p>', page)
    ]
    assert story == [
        "KeyError: 'missing'",
        "During handling of the above exception, another exception occurred:",
        "OSError: disk gone",
        "The above exception was the direct cause of the following exception:",
        "RuntimeError: could not save",
    ]
    suppressed = re.findall(r"<h2>.*?</h2>", page_of(app, "/suppressed"))
    assert [text_of(h) for h in suppressed] == ["LookupError: clean"]


def test_tracebackhide_frames_are_left_out(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, _ = native
    page = page_of(app, "/hidden")
    assert "from a hidden frame" in page
    assert "in <code>hidden_helper</code>" not in page
    assert "1 frame(s) hidden by <code>__tracebackhide__</code>" in page


@needs_311
def test_column_range_of_the_failing_expression_is_marked(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, _ = native
    page = page_of(app, "/column")
    assert "<mark>numbers[5]</mark>" in page
    json_page = app.get(
        "/column",
        headers={"Accept": "application/json"},
        status=500,
        expect_errors=True,
    )
    frame = json_page.json["exception"]["chain"][0]["frames"][-1]
    position = frame["position"]
    line = frame["source"][
        [s["lineno"] for s in frame["source"]].index(frame["lineno"])
    ]
    assert line["line"][position["col"] : position["end_col"]] == "numbers[5]"


@needs_311
def test_model_bounds_chains_and_groups() -> None:
    error: BaseException = ValueError("0")
    for n in range(1, 100):
        try:
            raise ValueError(str(n)) from error
        except ValueError as exc:
            error = exc
    built = model.build(error)
    assert len(built.chain()) == model.MAX_CHAIN + 1
    group = ExceptionGroup("many", [ValueError(str(n)) for n in range(500)])  # noqa: F821
    built = model.build(group)
    assert len(built.children) == model.MAX_GROUP
    assert built.more_children == 500 - model.MAX_GROUP
    assert "and 400 more" in model.text(built)


# Safe representations


@needs_311
def test_locals_with_raising_huge_and_looping_reprs_do_not_break_the_page(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, pin = native
    locked = page_of(app, "/group")
    # Before the PIN: no locals (and no __repr__ of the app's objects run).
    assert (
        "RaisingRepr" not in locked and "shown once the console is unlocked" in locked
    )
    unlocked(app, "/group", pin)
    page = page_of(app, "/group")
    assert (
        "&lt;repr() of RaisingRepr object raised ValueError: repr exploded&gt;" in page
    )
    assert "(4998000 more characters)" in page
    assert len(page) < 200_000
    looping = page_of(app, "/loop")
    assert "&lt;repr() of LoopingRepr object raised ReprTimeout" in looping


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(RaisingRepr(), "raised ValueError: repr exploded", id="raises"),
        pytest.param(HugeRepr(), "more characters)", id="megabytes"),
        pytest.param(LoopingRepr(), "raised ReprTimeout", id="loops"),
        pytest.param(list(range(10_000)), "...]", id="long-list"),
        pytest.param([[[[[1]]]]], "[[[[...]]]]", id="deep"),
        pytest.param("z" * 100_000, "zzz...zzz", id="long-string"),
        pytest.param({"k": RaisingRepr()}, "{'k': <repr() of RaisingRepr", id="inside"),
    ],
)
def test_safe_repr(value: object, expected: str) -> None:
    text = saferepr.safe_repr(value)
    assert expected in text
    assert len(text) < saferepr.MAX_CHARS + 100


def test_safe_repr_restores_the_trace_function() -> None:
    before = sys.gettrace()
    saferepr.safe_repr(LoopingRepr())
    assert sys.gettrace() is before


# The console


def test_console_multiline_print_and_frame_locals(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(_with_locals, engine="native")
    pin = open_window(middleware).pin
    app = client(middleware)
    secret, frame = unlocked(app, "/", pin)
    answer = run(
        app,
        secret,
        frame,
        "total = 0\nfor n in range(4):\n    total += n\nprint('sum', total)\ntotal * factor",
    )
    assert '<pre class="printed">sum 6\n</pre>' in answer
    assert '<pre class="result">60</pre>' in answer
    assert "&gt;&gt;&gt; total = 0\n... for n in range(4):" in answer
    # Assignments persist; ``_`` is the last result; the frame's own local.
    assert '<pre class="result">60</pre>' in run(app, secret, frame, "_")
    assert '<pre class="result">6</pre>' in run(app, secret, frame, "total")
    assert "Payload" in run(app, secret, frame, "type(payload).__name__")
    # Errors come back as a traceback, and never end the worker.
    assert "NameError: name &#39;nope&#39; is not defined" in run(
        app, secret, frame, "nope"
    )
    assert "SyntaxError" in run(app, secret, frame, "def (")
    assert "SystemExit" in run(app, secret, frame, "raise SystemExit(3)")
    # Results are bounded like locals.
    bounded = run(app, secret, frame, "'q' * 1_000_000")
    assert "qqq...qqq" in bounded and len(bounded) < 10_000


def _with_locals(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> t.Iterable[bytes]:
    factor = 10  # noqa: F841
    payload = Payload()  # noqa: F841
    raise RuntimeError("fails with locals")


def test_standalone_console(make: t.Callable[..., IPDebugMiddleware]) -> None:
    middleware = make(engine="native", console_path="/console")
    pin = open_window(middleware).pin
    app = client(middleware)
    page = app.get("/console").text
    secret, frame = secret_and_frame(page)
    assert frame == "0"
    post(app, "pinauth", secret, pin=pin)
    assert "plain_app" in run(app, secret, "0", "app.__name__")


# No secrets in URLs


def test_pin_and_console_input_are_refused_in_the_query_string(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    middleware, app, pin = native
    secret, frame = secret_and_frame(page_of(app, "/column"))
    for query in [
        f"cmd=pinauth&pin={pin}&s={secret}",
        f"cmd=eval&frm={frame}&code=1%2B1&s={secret}",
    ]:
        refused = app.get(
            f"/?__debugger__=yes&{query}",
            headers={SECRET_HEADER: secret},
            status=405,
        )
        assert "POST body, never the URL" in refused.text
    # A refused PIN was never checked: it did not count as a failure.
    assert middleware.store.pin_failures(middleware.switch.current().id) == 0  # type: ignore[union-attr]
    # The secret travels in the header only: in the query string it is ignored.
    wrong = app.post(
        f"/?__debugger__=yes&cmd=pinauth&s={secret}", {"pin": pin}, status=403
    )
    assert "belongs to another window" in wrong.text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"Origin": "https://evil.example"}, "Origin", id="other-origin"),
        pytest.param({"Origin": "null"}, "Origin", id="null-origin"),
        pytest.param({"Origin": f"http://{HOST}.evil.example"}, "Origin", id="suffix"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site", id="fetch"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site", id="sibling"),
    ],
)
def test_cross_site_posts_are_refused(
    native: tuple[IPDebugMiddleware, TestApp, str],
    headers: dict[str, str],
    reason: str,
) -> None:
    """Refused by the rule both engines share (ipdebug.gate.crosssite): not gated
    in, so the app answers as without ipdebug and nothing is checked.
    """
    middleware, app, pin = native
    secret, _ = secret_and_frame(page_of(app, "/column"))
    refused = app.post(
        "/?__debugger__=yes&cmd=pinauth",
        {"pin": pin},
        headers={SECRET_HEADER: secret, **headers},
        expect_errors=True,
    )
    bare = TestApp(middleware.app).post(
        "/?__debugger__=yes&cmd=pinauth",
        {"pin": pin},
        headers={SECRET_HEADER: secret, **headers},
        expect_errors=True,
    )
    assert (refused.status, refused.body) == (bare.status, bare.body), reason
    assert "Set-Cookie" not in refused.headers
    assert middleware.store.pin_failures(middleware.switch.current().id) == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        pytest.param({"HTTP_HOST": HOST}, False, id="no-origin-curl"),
        pytest.param(
            {"HTTP_HOST": HOST, "HTTP_ORIGIN": f"http://{HOST}"}, False, id="same"
        ),
        pytest.param(
            {"HTTP_HOST": "App.Example", "HTTP_ORIGIN": "https://app.example"},
            False,
            id="case",
        ),
        pytest.param(
            {"HTTP_HOST": HOST, "HTTP_SEC_FETCH_SITE": "same-origin"}, False, id="sfs"
        ),
        pytest.param(
            {"HTTP_HOST": HOST, "HTTP_ORIGIN": "http://127.0.0.1:8001"},
            True,
            id="other-port",
        ),
        pytest.param({"HTTP_ORIGIN": f"http://{HOST}"}, True, id="no-host"),
        pytest.param(
            {"HTTP_HOST": "app.example", "HTTP_ORIGIN": "https://app.example:8443"},
            False,
            id="proxy-dropped-the-port",
        ),
        pytest.param(
            {"HTTP_HOST": "app.example", "HTTP_ORIGIN": "https://evil.example:8443"},
            True,
            id="proxy-dropped-the-port-other-host",
        ),
        pytest.param(
            {"HTTP_HOST": "[::1]", "HTTP_ORIGIN": "http://[::1]:8000"},
            False,
            id="ipv6-without-port",
        ),
        pytest.param(
            {"HTTP_HOST": "[::1]:8000", "HTTP_ORIGIN": "http://[::1]:8001"},
            True,
            id="ipv6-other-port",
        ),
        pytest.param(
            {"HTTP_HOST": HOST, "HTTP_ORIGIN": "http://[::1"}, True, id="garbage"
        ),
    ],
)
def test_cross_site_predicate(environ: dict[str, str], problem: bool) -> None:
    assert is_cross_site(environ) is problem


def test_bodies_are_bounded(native: tuple[IPDebugMiddleware, TestApp, str]) -> None:
    middleware, app, _ = native
    secret, frame = secret_and_frame(page_of(app, "/column"))
    big = app.post(
        "/?__debugger__=yes&cmd=eval",
        {"frm": frame, "code": "x" * (MAX_BODY + 1)},
        headers={SECRET_HEADER: secret},
        status=413,
    )
    assert "over 65536 bytes" in big.text
    # No Content-Length (a chunked body): refused before reading anything.
    environ = EnvironBuilder(
        "/",
        query_string="__debugger__=yes&cmd=eval",
        method="POST",
        headers={SECRET_HEADER: secret, "Host": HOST},
        environ_base={"REMOTE_ADDR": OPERATOR},
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = Unreadable()
    statuses: list[str] = []
    body = b"".join(middleware(environ, lambda s, h: statuses.append(s)))
    assert statuses == ["411 LENGTH REQUIRED"], body


class Unreadable:
    def read(self, *args: object) -> bytes:
        raise AssertionError("the body was read")


# JSON for API clients


def test_json_for_api_clients_and_the_page_behind_it(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    middleware, app, pin = native
    locked = app.get(
        "/chain", headers={"Accept": "application/json"}, status=500, expect_errors=True
    ).json
    # Before the PIN: the story without the locals (other people's data).
    assert locked["locals_shown"] is False
    assert locked["exception"]["chain"][-1]["frames"][-1]["locals"] is None
    unlocked(app, "/chain", pin)
    response = app.get(
        "/chain", headers={"Accept": "application/json"}, status=500, expect_errors=True
    )
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    doc = response.json
    chain = doc["exception"]["chain"]
    assert [(e["type"], e["relation"]) for e in chain] == [
        ("KeyError", None),
        ("OSError", "context"),
        ("RuntimeError", "cause"),
    ]
    frame = chain[-1]["frames"][-1]
    assert frame["function"] == "story_app" and frame["filename"].endswith(
        "test_native.py"
    )
    assert any("could not save" in s["line"] for s in frame["source"])
    assert "environ" in frame["locals"] and "start_response" in frame["locals"]
    # The HTML page of the same traceback, gated like the rest.
    url = doc["page_url"]
    assert url.startswith("/chain?__debugger__=yes&cmd=page&tb=")
    page = app.get(url)
    assert "could not save" in page.text and page.headers["Cache-Control"] == "no-store"
    with pytest.raises(RuntimeError, match="could not save"):
        # Not gated in: the app runs, as without ipdebug.
        client(middleware, addr=STRANGER).get(url)
    forged = re.sub(r"x[0-9a-f]+~", "x0123~", url)
    gone = app.get(forged, expect_errors=True)
    assert gone.status_int == 410 and "no longer held" in gone.text
    # A browser (and anything preferring HTML) gets the page.
    for accept in ["text/html,application/json;q=0.9", "*/*"]:
        assert (
            app.get(
                "/chain", headers={"Accept": accept}, status=500, expect_errors=True
            ).content_type
            == "text/html"
        )


def test_werkzeug_engine_answers_html_to_json_clients(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(engine="werkzeug")
    open_window(middleware)
    response = client(middleware).get(
        "/fail", headers={"Accept": "application/json"}, status=500, expect_errors=True
    )
    assert response.content_type == "text/html"


# Reading without JavaScript, keyboard, plain text


def test_page_reads_without_javascript(
    native: tuple[IPDebugMiddleware, TestApp, str],
) -> None:
    _, app, _ = native
    page = page_of(app, "/chain")
    assert "http" not in page.split("<main")[0].replace(
        "http-equiv", ""
    )  # no CDN, nothing external
    assert '<details id="plain" class="plain"><summary>Plain-text traceback' in page
    assert "<noscript>" in page
    # The only script is the engine's own, served by ipdebug, and a Content
    # Security Policy forbids any other (defence in depth against XSS).
    assert page.count("<script") == 1
    assert "default-src 'none'; script-src 'self';" in page
    assert 'src="?__debugger__=yes&amp;cmd=resource&amp;f=native.js"' in page
    # Clickable things are buttons (keyboard operable), enabled by the script.
    assert 'button type="button" class="open-console"' in page


# The engine setting


def test_engine_setting_is_validated_at_construction(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    with pytest.raises(ConfigError, match=r"engine: 'Werkzeug' must be one of"):
        make(engine="Werkzeug")
    with pytest.raises(ConfigError, match=r"IPDEBUG_ENGINE: 'fast' must be one of"):
        make(environ={"IPDEBUG_ENGINE": "fast"})
    assert make(environ={"IPDEBUG_ENGINE": "native"}).debugger.engine.name == "native"


def test_auto_says_which_engine_and_why(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    assert make().debugger.engine.name == "werkzeug"
    infos = [r.getMessage() for r in records.records if r.levelno == logging.INFO]
    assert infos == [
        "ipdebug uses Werkzeug's debugger engine: werkzeug.debug is importable "
        "and passed the contract check"
    ]


HIDDEN_WERKZEUG_DEBUG = textwrap.dedent(
    """
    import importlib.abc, json, logging, re, sys

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "werkzeug.debug" or name.startswith("werkzeug.debug."):
                raise ImportError(f"{name} is hidden by the test")
            return None

    sys.meta_path.insert(0, Hide())
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    import ipdebug
    from webtest import TestApp
    from ipdebug.errors import ConfigError

    def app(environ, start_response):
        answer = 6 * 7
        raise RuntimeError("no werkzeug.debug here")

    flag = sys.argv[1]
    middleware = ipdebug.IPDebugMiddleware(app, flag=flag, allow=["127.0.0.1"], environ={})
    try:
        ipdebug.IPDebugMiddleware(app, flag=flag, allow=["127.0.0.1"], engine="werkzeug", environ={})
        explicit = "accepted"
    except ConfigError as exc:
        explicit = str(exc)
    opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
    middleware.switch.poll_now()
    browser = TestApp(middleware, extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1"})
    page = browser.get("/", status=500, expect_errors=True).text
    secret = re.search(r'data-secret="([^"]+)"', page).group(1)
    frame = re.findall(r'<li class="frame" id="frame-(\\d+)"', page)[-1]
    headers = {"X-IPDebug-Secret": secret}
    auth = browser.post("/?__debugger__=yes&cmd=pinauth", {"pin": opened.pin}, headers=headers).json
    answer = browser.post("/?__debugger__=yes&cmd=eval", {"frm": frame, "code": "answer"}, headers=headers).text
    print(json.dumps({
        "engine": middleware.debugger.engine.name,
        "werkzeug.debug": "werkzeug.debug" in sys.modules,
        "explicit": explicit,
        "auth": auth,
        "answer": answer,
    }))
    """
)


def test_auto_picks_native_when_werkzeug_debug_is_gone(flag: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", HIDDEN_WERKZEUG_DEBUG, flag],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert any(
        line.startswith(
            "ipdebug uses its native debugger engine: werkzeug.debug is not importable"
        )
        for line in lines
    ), lines
    outcome = json.loads(lines[-1])
    assert outcome["engine"] == "native"
    assert outcome["werkzeug.debug"] is False
    assert outcome["explicit"].startswith("engine: 'werkzeug' cannot be used")
    assert outcome["auth"] == {"auth": True, "exhausted": False}
    assert '<pre class="result">42</pre>' in outcome["answer"]


def test_the_console_leaves_other_threads_print_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a console command, ``print`` in the app's other threads still
    behaves as with the real stream: a logging shim whose ``write`` returns
    None, or no stream at all.
    """
    from ipdebug.debugger.engines.native import console as native_console

    class Shim:
        def __init__(self) -> None:
            self.text: list[str] = []

        def write(self, text: str) -> None:
            self.text.append(text)

    for stream in [Shim(), None]:
        monkeypatch.setattr(sys, "stdout", stream)
        assert "printed" in native_console.run("print('printed')", {}, {})
        thread_errors: list[BaseException] = []

        def app_thread(thread_errors: list[BaseException] = thread_errors) -> None:
            try:
                print("from the app", flush=True)
            except BaseException as exc:
                thread_errors.append(exc)

        worker = threading.Thread(target=app_thread)
        worker.start()
        worker.join()
        assert thread_errors == []
        if stream is not None:
            assert "from the app" in "".join(stream.text)


def test_non_ascii_digits_are_refused_not_raised() -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: a Content-Length
    or frame id of such digits is refused (411 / no frame), never an error
    in ipdebug.
    """
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from ipdebug.debugger.engines.native import wire

    environ = EnvironBuilder(
        query_string="__debugger__=yes&cmd=pinauth", method="POST", data=b"pin=1"
    ).get_environ()
    environ["CONTENT_LENGTH"] = "²"
    assert wire.read_command(Request(environ)).refusal == (
        411,
        "a POST to the debugger needs a Content-Length",
    )
    environ = EnvironBuilder(
        query_string="__debugger__=yes&cmd=eval",
        method="POST",
        data="frm=²&code=1".encode(),
    ).get_environ()
    assert wire.read_command(Request(environ)).frame is None
