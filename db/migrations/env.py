"""Alembic environment of kyso's schema (``kyso db upgrade`` runs it, as does ``Kyso.open``).

kyso calls Alembic programmatically with an open connection in
``config.attributes["connection"]`` (:func:`kyso.db.create_schema`), inside the transaction
that holds the migration lock. Run by hand (``alembic -c db/alembic.ini upgrade head``),
it opens the database named by ``KYSO_DATABASE_URL`` or the kyso configuration.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from kyso.db import metadata


def _url() -> str:
    from kyso.config import load_config

    return load_config().db_url


def run_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
