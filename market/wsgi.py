"""WSGI entry point for serving pages and the API with granian's WSGI workers in production
(``Procfile``; websockets go to the ASGI servers; see README "Scaling out")."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings")
application = get_wsgi_application()
