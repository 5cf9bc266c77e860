"""The native engine's page and JSON, from :mod:`.model`.

The page is complete HTML: it reads with JavaScript disabled (every part is
plain markup; locals and the plain-text traceback are ``<details>``, which
open with a click or the keyboard). The JavaScript (``static/native.js``)
only adds the PIN prompt and the consoles. Everything shown is escaped.
"""

from __future__ import annotations

import json
import typing as t

from markupsafe import escape

from .model import RELATIONS, ExceptionModel, FrameModel, text

_RESOURCE = "?__debugger__=yes&amp;cmd=resource&amp;f="
#: Defence in depth: everything shown is escaped, and even so no script but
#: the engine's own file runs and nothing is fetched from elsewhere (inline
#: styles: the shared banner has them).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'"
)
#: Where the banner goes (the first element of the page's body).
BANNER_MARKER = "<!-- ipdebug:banner -->"


def page(
    model: ExceptionModel,
    *,
    evalex: bool,
    secret: str,
    evalex_trusted: bool,
    plain: str | None = None,
) -> str:
    """The debugger page of ``model`` (``plain``: its text, if known)."""
    out: list[str] = []
    _head(out, model.summary, secret, evalex, evalex_trusted)
    out.append(
        f'<header><h1 class="exc-type">{escape(model.type_name)}</h1>'
        f'<p class="exc-message">{escape(model.message)}</p>'
        '<p class="jump"><a href="#plain">Plain-text traceback</a> '
        "(copy it into a ticket)</p></header>"
    )
    if evalex:
        _pin_form(out, evalex_trusted)
    # Locals are other people's data too (captured errors): shown, like the
    # console, only once the window's PIN unlocked this browser.
    _exception(out, model, evalex, {}, show_locals=evalex_trusted)
    out.append(
        '<details id="plain" class="plain"><summary>Plain-text traceback</summary>'
        '<button type="button" class="copy" disabled>Copy to clipboard</button>'
        f'<textarea readonly rows="20" aria-label="Plain-text traceback">{escape(text(model) if plain is None else plain)}</textarea>'
        "</details>"
    )
    _foot(out)
    return "".join(out)


def console_page(*, secret: str, evalex_trusted: bool) -> str:
    """The standalone console (frame 0)."""
    out: list[str] = []
    _head(out, "Console", secret, True, evalex_trusted)
    out.append(
        '<header><h1>Console</h1><p class="exc-message">Python in this server '
        "process; <code>app</code> is the WSGI application.</p></header>"
    )
    _pin_form(out, evalex_trusted)
    out.append(
        '<section class="frame standalone" id="frame-0" data-frame="0">'
        '<button type="button" class="open-console" data-frame="0" disabled>'
        "Open the console</button></section>"
    )
    _foot(out)
    return "".join(out)


def _head(out: list[str], title: str, secret: str, evalex: bool, trusted: bool) -> None:
    out.append(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{escape(title)} // ipdebug</title>"
        f'<link rel="stylesheet" href="{_RESOURCE}native.css"></head><body>'
        f"{BANNER_MARKER}"
        f'<main class="ipdebug" data-engine="native" data-secret="{escape(secret)}" '
        f'data-evalex="{str(evalex).lower()}" data-trusted="{str(trusted).lower()}">'
    )
    if evalex:
        out.append(
            '<noscript><p class="note">The console and the PIN prompt need '
            "JavaScript; the traceback reads without it.</p></noscript>"
        )


def _foot(out: list[str]) -> None:
    out.append(f'</main><script src="{_RESOURCE}native.js"></script></body></html>')


def _pin_form(out: list[str], trusted: bool) -> None:
    hidden = " hidden" if trusted else ""
    out.append(
        f'<form class="pin"{hidden} aria-label="Unlock the console">'
        '<label for="ipdebug-pin">PIN printed by <code>ipdebug enable</code> '
        "(unlocks the consoles):</label> "
        '<input id="ipdebug-pin" name="pin" autocomplete="off" spellcheck="false" '
        'inputmode="numeric" size="14" disabled> '
        '<button type="submit" disabled>Unlock</button> '
        '<span class="pin-status" role="status" aria-live="polite"></span></form>'
    )


def _exception(
    out: list[str],
    model: ExceptionModel,
    evalex: bool,
    blocks: _Blocks,
    *,
    show_locals: bool,
) -> None:
    out.append('<div class="chain">')
    for index, exc in enumerate(model.chain()):
        if index:
            out.append(f'<p class="relation">{escape(RELATIONS[exc.relation])}</p>')
        out.append(
            f'<section class="exception{" group" if exc.is_group else ""}">'
            f'<h2><span class="exc-type">{escape(exc.type_name)}</span>'
            f"{': ' if exc.message else ''}"
            f'<span class="exc-message">{escape(exc.message)}</span></h2>'
        )
        if exc.notes:
            out.append('<ul class="notes" aria-label="Notes">')
            out.extend(f"<li>{escape(note)}</li>" for note in exc.notes)
            out.append("</ul>")
        if exc.hidden:
            out.append(
                f'<p class="hidden-frames">{exc.hidden} frame(s) hidden by '
                "<code>__tracebackhide__</code></p>"
            )
        if exc.frames:
            out.append('<ol class="frames">')
            last = exc.frames[-1]
            for frame in exc.frames:
                _frame(out, frame, evalex, frame is last, blocks, show_locals)
            out.append("</ol>")
        if exc.elided:
            out.append(f'<p class="hidden-frames">{exc.elided} frames left out</p>')
        if exc.children or exc.more_children:
            count = len(exc.children) + exc.more_children
            out.append(
                f'<div class="children"><p class="group-count">{count} '
                "sub-exception(s):</p><ol>"
            )
            for child in exc.children:
                out.append(
                    f'<li><details class="sub" open><summary>{escape(child.summary)}'
                    "</summary>"
                )
                _exception(out, child, evalex, blocks, show_locals=show_locals)
                out.append("</details></li>")
            out.append("</ol>")
            if exc.more_children:
                out.append(f"<p>and {exc.more_children} more (not shown)</p>")
            out.append("</div>")
        out.append("</section>")
    out.append("</div>")


def _frame(
    out: list[str],
    frame: FrameModel,
    evalex: bool,
    last: bool,
    blocks: _Blocks,
    show_locals: bool,
) -> None:
    out.append(f'<li class="frame" id="frame-{frame.id}" data-frame="{frame.id}">')
    # A group's members repeat the same frames: each frame's heading and
    # source, and each locals table, is rendered once per page.
    key = (frame.filename, frame.lineno, frame.name, frame.positions)
    block = blocks.get(key)
    if block is None:
        block = blocks[key] = (
            f'<h3 class="where">File <code>{escape(frame.filename)}</code>, line '
            f"{frame.lineno}, in <code>{escape(frame.name)}</code></h3>"
            f"{_source(frame)}"
        )
    out.append(block)
    if show_locals:
        table = frame.memo.get("html")
        if table is None:
            table = frame.memo["html"] = _locals(frame)
        if table:
            out.append(f'<details class="locals"{" open" if last else ""}>{table}')
    elif frame.locals and last:
        out.append(
            '<p class="locals-locked">Local variables are shown once the '
            "console is unlocked with the PIN.</p>"
        )
    if evalex:
        out.append(
            f'<button type="button" class="open-console" data-frame="{frame.id}" '
            "disabled>Console in this frame</button>"
        )
    out.append("</li>")


_Blocks = dict[tuple[str, int, str, t.Any], str]


def _source(frame: FrameModel) -> str:
    if not frame.source:
        return ""
    out = ['<pre class="source">']
    for number, line in frame.source:
        if number == frame.lineno:
            out.append(
                f'<span class="line current" aria-current="true">'
                f'<span class="lineno">{number}</span>{_marked(line, frame)}</span>\n'
            )
        else:
            out.append(
                f'<span class="line"><span class="lineno">{number}</span>'
                f"{escape(line)}</span>\n"
            )
    out.append("</pre>")
    return "".join(out)


def _locals(frame: FrameModel) -> str:
    """The locals, as the inside of a ``<details>``; ``""`` for none."""
    reprs, more = frame.local_reprs()
    if not reprs:
        return ""
    out = [f"<summary>Locals ({len(reprs) + more})</summary><table>"]
    out.extend(
        f'<tr><th scope="row">{escape(name)}</th><td><pre>{escape(value)}</pre></td></tr>'
        for name, value in reprs
    )
    out.append("</table>")
    if more:
        out.append(f"<p>and {more} more (use the console)</p>")
    out.append("</details>")
    return "".join(out)


def _marked(line: str, frame: FrameModel) -> str:
    """The failing line with its failing expression in ``<mark>``."""
    pos = frame.positions
    if pos is None or pos[0] != frame.lineno or pos[1] != frame.lineno:
        return str(escape(line))
    # co_positions counts UTF-8 bytes.
    raw = line.encode("utf-8")
    start = len(raw[: pos[2]].decode("utf-8", "replace"))
    end = len(raw[: pos[3]].decode("utf-8", "replace"))
    if not 0 <= start < end <= len(line):
        return str(escape(line))
    return (
        f"{escape(line[:start])}<mark>{escape(line[start:end])}</mark>"
        f"{escape(line[end:])}"
    )


def as_json(model: ExceptionModel, page_url: str, *, show_locals: bool) -> str:
    """The traceback for API clients; locals (``null`` until then) once
    the window's PIN unlocked the client, as on the page.
    """
    return json.dumps(
        {
            "engine": "native",
            "page_url": page_url,
            "locals_shown": show_locals,
            "exception": _exc_json(model, show_locals),
        },
        ensure_ascii=False,
    )


def _exc_json(model: ExceptionModel, show_locals: bool) -> dict[str, t.Any]:
    return {
        "chain": [
            {
                "type": exc.type_name,
                "message": exc.message,
                "notes": exc.notes,
                "relation": exc.relation or None,
                "hidden_frames": exc.hidden,
                "elided_frames": exc.elided,
                "frames": [_frame_json(f, show_locals) for f in exc.frames],
                "exceptions": [_exc_json(c, show_locals) for c in exc.children]
                if exc.is_group
                else None,
                "more_exceptions": exc.more_children,
            }
            for exc in model.chain()
        ]
    }


def _frame_json(frame: FrameModel, show_locals: bool) -> dict[str, t.Any]:
    reprs, more = frame.local_reprs() if show_locals else ([], 0)
    pos = frame.positions
    return {
        "id": frame.id,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "function": frame.name,
        "module": frame.module,
        "position": None
        if pos is None
        else {"lineno": pos[0], "end_lineno": pos[1], "col": pos[2], "end_col": pos[3]},
        "source": [{"lineno": n, "line": line} for n, line in frame.source],
        "locals": dict(reprs) if show_locals else None,
        "more_locals": more,
    }
