"""What ``ipdebug doctor`` prints: the findings as text for people, or as
JSON (``--json``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .findings import CRITICAL, INFO, WARNING, Finding


def report_json(
    findings: Sequence[Finding], *, app: str | None, flag: str
) -> dict[str, object]:
    """``{"findings": [...], "critical": n, "warnings": n, "info": n,
    "app": ..., "flag": ...}``.
    """
    return {
        "findings": [f.to_json() for f in findings],
        "critical": sum(f.severity == CRITICAL for f in findings),
        "warnings": sum(f.severity == WARNING for f in findings),
        "info": sum(f.severity == INFO for f in findings),
        "app": app,
        "flag": flag,
    }


def report_text(findings: Sequence[Finding], *, app: str | None, flag: str) -> str:
    """One block per finding (``CRITICAL IPD001 message``, then ``  fix:
    ...``) and a summary line naming what was checked.
    """
    lines: list[str] = []
    for f in findings:
        lines += [f"{f.severity.upper()} {f.id} {f.message}", f"  fix: {f.fix}"]
    checked = f"flag {flag}; " + (
        f"app {app}" if app else "app not checked: give APP_IMPORT_PATH, e.g. wsgi:app"
    )
    if not findings:
        return f"ipdebug doctor: no problems found ({checked})"
    counts = report_json(findings, app=app, flag=flag)
    lines.append(
        f"ipdebug doctor: {counts['critical']} critical, {counts['warnings']} "
        f"warning(s), {counts['info']} info ({checked})"
    )
    return "\n".join(lines)
