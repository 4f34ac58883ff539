"""The web service: a FastAPI app (REST API and a web page) over one catalogue.

Needs the ``serve`` extra (``pip install 'lookalike[serve]'``). Build the app with :func:`create_app`;
``lookalike serve CATALOG`` runs it with uvicorn.
"""

from lookalike.service.app import create_app
from lookalike.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
