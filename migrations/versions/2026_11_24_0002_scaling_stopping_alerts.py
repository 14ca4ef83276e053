"""Scaling fits, stop policies, alert rules, run events and alerts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _project_fk() -> sa.Column:
    return sa.Column("project_id", sa.Integer(),
                     sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def _run_fk() -> sa.Column:
    return sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "scaling_fits",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("law", sa.String(32), nullable=False),
        sa.Column("selector", JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("fitted_at", TS, nullable=True),
    )
    op.create_index("ix_scaling_fits_project_id", "scaling_fits", ["project_id"])
    op.create_table(
        "stop_policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        _project_fk(),
        sa.Column("group_name", sa.String(256), nullable=True),
        sa.Column("metric", sa.String(256), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("reference", JSON, nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("min_progress", sa.Double(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_stop_policies_project_id", "stop_policies", ["project_id"])
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        _project_fk(),
        sa.Column("events", JSON, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_alert_rules_project_id", "alert_rules", ["project_id"])
    op.create_table(
        "run_events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "event"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"),
                  nullable=False),
        _run_fk(),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("fired_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
    )
    op.create_index("ix_alerts_project_id", "alerts", ["project_id"])


def downgrade() -> None:
    for table in ("alerts", "run_events", "alert_rules", "stop_policies", "scaling_fits"):
        op.drop_table(table)
