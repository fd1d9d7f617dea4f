"""WSGI entry point for serving pages and the API with gunicorn's sync workers in production
(websockets go to the ASGI servers; see README "Scaling out")."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings")
application = get_wsgi_application()
