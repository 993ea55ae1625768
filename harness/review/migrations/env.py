"""Alembic's environment for the review database: migrations run on the connection that `store.migrate` passes
in `config.attributes["connection"]`, inside its transaction."""

from alembic import context

from harness.review.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
