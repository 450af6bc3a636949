"""The authenticated REST API of the workflow layer; see ``app`` for how to serve it."""

from fhirbridge.api.app import create_app

__all__ = ["create_app"]
