"""Sessions that end, lockouts that cannot be raced, saves that cannot overwrite each other:
- `users.session_version`: part of every session cookie; logout and a password change raise it, which ends every
  session of the account;
- `login_counters`: failed logins per user name and per network address, counted by one atomic UPDATE;
- `reviews.version`, `rereviews.version`: raised by every save; a save names the version it edited, so a stale
  form cannot overwrite a newer save (optimistic locking).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "login_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    for table in ("reviews", "rereviews"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    for table in ("rereviews", "reviews"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    op.drop_table("login_counters")
    with op.batch_alter_table("users") as users:
        users.drop_column("session_version")
