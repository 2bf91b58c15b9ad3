"""The WSGI entry point: ``gunicorn wsgi:app``."""

from portal import create_app
from portal.cli import ensure_engines
from portal.templating import compile_templates

# Under `make run` the launcher has exported DATABASE_URL/REDIS_URL already; run on
# its own, this attaches to (or starts) the embedded engines of this checkout.
ensure_engines()
app = create_app()
compile_templates(app)  # each worker, before its first request (docs/performance.md)
