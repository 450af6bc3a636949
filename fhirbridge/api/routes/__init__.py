"""Endpoints, one module per resource: parse, check access, call a service, answer a schema."""
