"""The rules that flagged each dialog as rows of their own, so the queue filters by flag in SQL; an index on
the audit trail for the login lockout.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    flags = op.create_table(
        "dialog_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dialog_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["dialog_id"], ["dialogs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dialog_id", "rule"),
    )
    op.create_index("ix_dialog_flags_rule", "dialog_flags", ["rule"])
    op.create_index("ix_audit_action_at", "audit", ["action", "at"])
    # Backfill from the flags each dialog already carries ([{rule, reason}], one entry per reason).
    dialogs = sa.table("dialogs", sa.column("id", sa.Integer()), sa.column("flags", sa.JSON()))
    rows = [
        {"dialog_id": dialog_id, "rule": rule}
        for dialog_id, stored in op.get_bind().execute(sa.select(dialogs.c.id, dialogs.c.flags))
        for rule in sorted({flag["rule"] for flag in stored or []})
    ]
    if rows:
        op.bulk_insert(flags, rows)


def downgrade() -> None:
    op.drop_index("ix_audit_action_at", table_name="audit")
    op.drop_index("ix_dialog_flags_rule", table_name="dialog_flags")
    op.drop_table("dialog_flags")
