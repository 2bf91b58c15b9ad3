"""Templates compiled ahead: by web workers at start and by RQ workers before they fork."""

from __future__ import annotations

from flask import Flask


def compile_templates(app: Flask, prefixes: tuple[str, ...] = ()) -> int:
    """Compile the app's templates now (those under ``prefixes``, or every one); return how many.

    Jinja compiles a template the first time something renders it. A process that will
    serve many (a web worker, an RQ worker before it forks) does them all once at start,
    so the first patients after a deploy do not wait for it.
    """
    env = app.jinja_env
    names = env.list_templates(filter_func=lambda n: not prefixes or n.startswith(prefixes))
    for name in names:
        env.get_template(name)
    return len(names)
