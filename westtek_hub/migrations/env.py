"""Alembic environment: migrations run on the connection the service hands over."""

from alembic import context

from westtek_hub.models import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    """Run on ``config.attributes["connection"]`` (set by westtek_hub.db.upgrade)."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
