"""The debugger: what a gated-in request gets.

The middleware (:mod:`ipdebug.middleware`, :mod:`ipdebug.asgi`) decides who
is gated in; everything served to them is here:

- :mod:`~ipdebug.debugger.dispatch`: :class:`~ipdebug.debugger.dispatch.Debugger`,
  which runs the app for a gated-in request, serves the debugger page for its
  error, and routes the page's requests (resources, PIN, console commands);
- :mod:`~ipdebug.debugger.engines`: what draws the page and runs the console
  (Werkzeug's, through :mod:`ipdebug.internals`, or ipdebug's native one);
- :mod:`~ipdebug.debugger.sessions`: the tracebacks and frames held per
  window, bounded;
- :mod:`~ipdebug.debugger.pinguard`: the window's one-time PIN and its
  lockout;
- :mod:`~ipdebug.debugger.held`: a response held until its first bytes, so
  an error can still become the debugger page;
- :mod:`~ipdebug.debugger.banner`: the banner on every page;
- :mod:`~ipdebug.debugger.relay`: console requests reach the worker that
  holds the traceback;
- :mod:`~ipdebug.debugger.errorpages`: the errors captured from other
  clients (``ipdebug enable --capture``).

Nothing is imported here, so that :mod:`ipdebug.config` can use the engines'
settings without loading Werkzeug.
"""
