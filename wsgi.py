"""WSGI entry point: `gunicorn wsgi:app` (settings in gunicorn.conf.py)."""
from portal import create_app

app = create_app()
