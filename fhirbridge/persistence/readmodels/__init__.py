"""Read models: queries shaped for one screen or one report, reached through ``Store``.

Repositories load and save whole records; a read model answers one question in as few
queries as possible (``store.month_minutes``: a month's minutes per patient, grouped in SQL).
Each lives in its own module; this package imports none of them, so importing one does not
pull in the others' queries.
"""
