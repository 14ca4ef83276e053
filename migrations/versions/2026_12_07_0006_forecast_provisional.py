"""A forecast says whether it is provisional: calibrated on the finished runs' replays at an
earlier progress step while its own step's are made (workers.tasks.forecast_series). Clients
and the dashboard mark it without reading the `prior` text; no stop is decided on it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("forecasts", sa.Column("provisional", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("provisional")
