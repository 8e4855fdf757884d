"""The WSGI entry point: ``gunicorn web:app``."""

from config import get_settings
from nearby import logs
from nearby.app import create_app

settings = get_settings()
logs.configure(settings.log_level)
app = create_app(settings)
