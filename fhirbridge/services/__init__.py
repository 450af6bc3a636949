"""Use cases: domain + mappings + storage + sync, with the session and clients passed in."""
