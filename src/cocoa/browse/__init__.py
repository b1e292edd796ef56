"""Read models for looking at what jobs produced: households, voters, parcels.

Plain SQLAlchemy Core queries on :mod:`cocoa.db.tables`, shared by the API
(``/api/v1/households``, ``/api/v1/voters``, ``/api/v1/map``, job results)
and the web pages. Nothing here writes.
"""
