"""Alembic environment: runs on the connection dataferry hands over, or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import dataferry.db.models  # noqa: F401  (registers every table)
from dataferry.db.base import Base
from dataferry.db.engine import make_engine

target_metadata = Base.metadata


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
