"""Try ipdebug in one command: a Flask app on http://127.0.0.1:5000 with a
window open for 127.0.0.1, using a flag in a temporary directory.

    python examples/demo.py [--port 5000]

Visit the printed URL, click the console icon of a frame, type the PIN.
Every other address would see the app's own error page.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

from werkzeug.serving import run_simple


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="ipdebug-demo-")
    try:
        serve(state, args.port)
    finally:
        # The flag, the audit trail and the relay sockets go with the demo.
        shutil.rmtree(state, ignore_errors=True)


def command() -> str:
    """How to run ``ipdebug`` from another shell: this venv's own script,
    which works without activating the venv.
    """
    script = os.path.join(os.path.dirname(sys.executable), "ipdebug")
    if not os.path.exists(script):
        return f"{sys.executable} -m ipdebug"
    return script


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the demo as Ctrl-C does


def serve(state: str, preferred_port: int) -> None:
    signal.signal(signal.SIGTERM, stop)
    flag = os.path.join(state, "flag.json")
    os.environ.update(IPDEBUG_FLAG=flag, IPDEBUG_ALLOW="127.0.0.1")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    from flask_app import app

    import ipdebug

    # Show ipdebug's audit trail (window opened, pages served, PIN attempts,
    # console commands) on this terminal.
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    port = free_port(preferred_port)
    opened = ipdebug.enable("15m", allow=["127.0.0.1"], reason="demo")
    print(
        f"""
ipdebug demo
  failing page:  http://127.0.0.1:{port}/checkout
  PIN:           {opened.pin}
  window until:  {opened.until:%H:%M:%S} UTC (15 minutes)

In another shell:  IPDEBUG_FLAG={flag} {command()} status
                   IPDEBUG_FLAG={flag} {command()} disable   (the page becomes the app's own)
Stop with Ctrl-C (removes {state}).
""",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() cleans up
        run_simple("127.0.0.1", port, app, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
