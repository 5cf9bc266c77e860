"""Documentation generated from ipdebug's own code, so that it cannot drift.

``.. ipdebug-doctor-checks::`` lists every check of ``ipdebug doctor`` from
its registry (:data:`ipdebug.doctor.CHECKS`): one ``doctor-check`` entry per
id, grouped by default severity, with the message and the fix as the
command prints them (values shown as *placeholders*). Link to one with
``{check}`IPD027``` (MyST) or
``:check:`IPD027``` (reStructuredText). Both directives are
reStructuredText: in a MyST page, use them inside ``{eval-rst}``.

``.. ipdebug-environment::`` is the table of ``IPDEBUG_*`` variables: the
settings the middleware and the command line read from the environment,
which are exactly the variables ``ipdebug doctor`` knows (IPD007).
"""

from __future__ import annotations

import inspect
import re
import typing as t

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx

SEVERITIES = (
    ("critical", "Critical", "``ipdebug doctor`` exits 1 when it finds one of these."),
    ("warning", "Warnings", ""),
    ("info", "Information", ""),
)

# Inline markup characters of reStructuredText, escaped in plain text.
_SPECIAL = re.compile(r"([\\*`_|<>\[\]])")
_CODE = re.compile(r"`([^`]+)`")
_PLACEHOLDER = re.compile(r"\{(\w+)(?:![rsa])?\}")


def _plain(text: str) -> str:
    """``text`` as reStructuredText, placeholders in italics."""
    out = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        out.append(_SPECIAL.sub(r"\\\1", text[last : match.start()]))
        out.append(rf"\ *{match.group(1)}*\ ")
        last = match.end()
    out.append(_SPECIAL.sub(r"\\\1", text[last:]))
    return "".join(out)


def rst_text(text: str) -> str:
    """A message or fix template of the registry as one line of
    reStructuredText: backquoted spans as literals, ``{value}`` as *value*.
    """
    out = []
    last = 0
    for match in _CODE.finditer(text):
        out.append(_plain(text[last : match.start()]))
        out.append(rf"\ ``{match.group(1)}``\ ")
        last = match.end()
    out.append(_plain(text[last:]))
    return "".join(out)


def checks_rst(checks: t.Mapping[str, tuple[str, str, str]]) -> list[str]:
    lines: list[str] = []
    for severity, title, intro in SEVERITIES:
        ids = sorted(i for i, (s, _, _) in checks.items() if s == severity)
        if not ids:
            continue
        lines += [title, "-" * len(title), ""]
        if intro:
            lines += [intro, ""]
        for check in ids:
            _, message, fix = checks[check]
            lines += [
                f".. doctor-check:: {check}",
                "",
                f"   {rst_text(message)}",
                "",
                f"   **Fix:** {rst_text(fix)}",
                "",
            ]
    return lines


def doctor_checks_rst() -> list[str]:
    """The ``ipdebug-doctor-checks`` directive's text."""
    from ipdebug.doctor import CHECKS

    return checks_rst(CHECKS)


def environment_rst() -> list[str]:
    """The ``ipdebug-environment`` directive's text: every keyword argument
    of the middleware and its variable, where it has one.
    """
    from ipdebug import IPDebugMiddleware
    from ipdebug.doctor.environment import known_variables

    variables = set(known_variables())
    parameters = inspect.signature(IPDebugMiddleware).parameters
    arguments = [
        name
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "environ"
    ]
    unmatched = variables - {f"IPDEBUG_{a.upper()}" for a in arguments}
    if unmatched:
        raise ValueError(f"{sorted(unmatched)} name no IPDebugMiddleware argument")
    rows = []
    for argument in arguments:
        variable = f"IPDEBUG_{argument.upper()}"
        shown = f"``{variable}``" if variable in variables else "(none)"
        rows += [f"   * - ``{argument}``", f"     - {shown}"]
    return [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - keyword argument",
        "     - environment variable",
        *rows,
        "",
    ]


def setup(app: Sphinx) -> dict[str, t.Any]:
    # Sphinx is imported here only: the tests import the generators above
    # where the docs extra is not installed.
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    def directive(generate: t.Callable[[], list[str]]) -> type[SphinxDirective]:
        class Generated(SphinxDirective):
            has_content = False

            def run(self) -> list[nodes.Node]:
                container = nodes.section()
                container.document = self.state.document
                content = StringList(generate(), source="<generated from ipdebug>")
                nested_parse_with_titles(self.state, content, container)
                return container.children

        return Generated

    app.add_object_type(
        "doctor-check",
        "check",
        objname="doctor check",
        indextemplate="pair: %s; doctor check",
    )
    app.add_directive("ipdebug-doctor-checks", directive(doctor_checks_rst))
    app.add_directive("ipdebug-environment", directive(environment_rst))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
