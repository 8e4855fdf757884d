"""Gunicorn settings of the web app: ``gunicorn -c gunicorn.conf.py web:app``.

Gunicorn reads this file itself, so it takes its few knobs straight from the
environment rather than from ``config.py``:

    GUNICORN_BIND        address to listen on; default 127.0.0.1:$PORT
    PORT                 port of that default address; default 8000
    WEB_CONCURRENCY      worker processes; default 2
    GUNICORN_TIMEOUT     seconds a worker may stay silent before it is
                         replaced; default 30
    GUNICORN_ACCESS_LOG  file of the access log, "-" for standard output;
                         default none

The container image sets GUNICORN_BIND to 0.0.0.0:8000; everywhere else the
server listens on loopback only. Errors go to standard error unless the
command line names a file (``make demo`` sends them to var/log/gunicorn.log).
"""

import os

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10

# Gunicorn's control socket sits at one path per user by default, so two
# servers of the same user would contend for it; nothing here uses it.
control_socket_disable = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
