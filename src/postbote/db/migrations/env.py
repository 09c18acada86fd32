"""Alembic environment: migrations run on the engine handed over by postbote.db.migrate."""

from alembic import context

from postbote.db.schema import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
