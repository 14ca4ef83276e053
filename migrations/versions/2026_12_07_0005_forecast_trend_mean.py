"""A forecast keeps the curve's level at its target beside final_mean, which may include the
batch noise forecast for that one step (runs of a sweep that share their batches): a finished
run is a stop's reference by its level.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("forecasts", sa.Column("trend_mean", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("trend_mean")
