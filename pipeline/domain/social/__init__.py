"""The social aggregates of seed 001: chirps (short posts) and follow relationships.

Each module holds one aggregate's commands, events, state, ``decide``/``evolve`` and its
:class:`~pipeline.domain.handling.AggregateSpec`; all pure. That a chirp's author and
both sides of a follow exist and are active is checked where the acting user is
authenticated (the API, against the users read model): see ``api/routes/social.py``.
"""
