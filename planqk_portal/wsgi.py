"""WSGI entry point (served in production by ``python -m planqk_portal.server``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planqk_portal.settings")
application = get_wsgi_application()
