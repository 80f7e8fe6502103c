"""
WSGI config for loyalty_site project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

application = get_wsgi_application()

# In front of Django: single events of the plain kind are answered without Django's request
# handling (journeys/fastpath.py); every other request goes to Django.
from journeys.fastpath import EventFastPath  # noqa: E402  (needs the apps loaded)

application = EventFastPath(application)
