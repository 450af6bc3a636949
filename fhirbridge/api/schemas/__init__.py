"""Request and response bodies: ``XCreate`` to create, ``XUpdate`` to change, ``XRead`` out."""
