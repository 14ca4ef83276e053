"""Initial schema: projects, keys, runs, series, points, point blocks, forecasts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("group_name", sa.String(256), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("total_steps", sa.BigInteger(), nullable=True),
        sa.Column("lr_schedule", JSON, nullable=True),
        sa.Column("params", sa.Double(), nullable=True),
        sa.Column("tokens_per_step", sa.Double(), nullable=True),
        sa.Column("tokens", sa.Double(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("should_stop", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", JSON, nullable=True),
    )
    op.create_index("ix_runs_project_id", "runs", ["project_id"])
    op.create_index("ix_runs_group_name", "runs", ["group_name"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "series",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("nonfinite_count", sa.BigInteger(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=True),
        sa.Column("first_value", sa.Double(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        sa.Column("forecast_requested_at", TS, nullable=True),
        sa.UniqueConstraint("run_id", "key"),
    )
    op.create_table(
        "points",
        sa.Column(
            "series_id",
            BIG_ID,
            primary_key=True,
        ),
        sa.Column("step", sa.BigInteger(), primary_key=True),
        # Nullable because SQLite turns NaN into NULL; Postgres stores NaN itself.
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("wall_time", sa.Double(), nullable=True),
    )
    op.create_table(
        "point_blocks",
        sa.Column(
            "series_id",
            BIG_ID,
            primary_key=True,
        ),
        sa.Column("level", sa.SmallInteger(), primary_key=True),
        sa.Column("block", sa.BigInteger(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        sa.Column("nonfinite_step", sa.BigInteger(), nullable=True),
        sa.Column("nonfinite_value", sa.Double(), nullable=True),
    )
    op.create_table(
        "forecasts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("prior", sa.String(512), nullable=True),
        sa.Column("fitted_upto_step", sa.BigInteger(), nullable=True),
        sa.Column("target_step", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.Double(), nullable=False),
        sa.Column("final_mean", sa.Double(), nullable=True),
        sa.Column("final_lower", sa.Double(), nullable=True),
        sa.Column("final_upper", sa.Double(), nullable=True),
        sa.Column("curve", JSON, nullable=False),
        sa.Column("p_underperform", sa.Double(), nullable=True),
        sa.Column("should_stop", sa.Boolean(), nullable=False),
        sa.Column("fitted_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "key"),
    )


def downgrade() -> None:
    for table in ("forecasts", "point_blocks", "points", "series", "runs", "api_keys", "projects"):
        op.drop_table(table)
