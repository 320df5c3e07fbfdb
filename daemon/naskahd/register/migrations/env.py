"""Alembic environment: runs on the connection naskahd hands over (never from an ini URL)."""

from alembic import context

from naskahd.register.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
)
with context.begin_transaction():
    context.run_migrations()
