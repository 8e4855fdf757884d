"""The WSGI entry point: ``gunicorn web:app``."""

from config import settings_or_exit
from nearby import logs
from nearby.app import create_app

settings = settings_or_exit("web")
logs.configure(settings.log_level)
app = create_app(settings)
