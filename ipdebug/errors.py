"""The exceptions ipdebug raises.

Every error is an :class:`IPDebugError`. Configuration errors are also
:class:`ValueError` so that ``except ValueError`` around a constructor works
as the documentation promises. Each carries the data a caller needs to build
its own message; ``str()`` is already a complete sentence for people.
"""

from __future__ import annotations


class IPDebugError(Exception):
    """Base class of every error raised by ipdebug."""


class ConfigError(IPDebugError, ValueError):
    """A setting has a value ipdebug cannot use.

    :param setting: the keyword argument or environment variable.
    :param value: the bad value, as given.
    :param reason: what is wrong and what is allowed.
    """

    def __init__(self, setting: str, value: object, reason: str) -> None:
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"{setting}: {value!r} {reason}")


class FlagError(IPDebugError):
    """The enable flag exists but must not be honoured (corrupt, unsafe
    permissions, not a regular file, ...). ipdebug treats this as *off*.

    :param location: the flag's path or URL.
    :param problem: what is wrong, and the fix where there is one.
    """

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"flag {location}: {problem}")


class FlagWriteError(IPDebugError):
    """The enable flag could not be written or removed; the previous flag,
    if any, is left as it was.
    """

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"cannot write flag {location}: {problem}")


class RelayError(IPDebugError):
    """A debugger request could not be relayed to the process of this host
    that holds what it asks for (:mod:`ipdebug.debugger.relay`), or that
    process's answer was unusable.

    :param pid: the process asked.
    :param problem: what went wrong, as a listing of the errors shows it
        (``did not answer within 2 s``).
    """

    def __init__(self, pid: int, problem: str) -> None:
        self.pid = pid
        self.problem = problem
        super().__init__(f"worker {pid} {problem}")


class OwnerGone(RelayError):
    """The process named by a debugger secret no longer listens: it exited,
    and what it held is gone with it.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(pid, "has exited")
