"""A provisional forecast records the step since which the series' forecasts have all been
provisional: the step where its replays began to run behind its batches. Past LEAN_STEPS
progress steps from there, the next forecast is made in full (workers.forecast.trajectory's
provisional_since), so a run that logs faster than its replays are made still gets a final
forecast, and with it its stop decision. The step replaces 0006's flag, which it implies
(a forecast is provisional where it has one); a provisional forecast stored before takes its
own step.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("forecasts", sa.Column("provisional_since_step", sa.BigInteger(),
                                         nullable=True))
    op.execute("UPDATE forecasts SET provisional_since_step = fitted_upto_step "
               "WHERE provisional")
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("provisional")


def downgrade() -> None:
    op.add_column("forecasts", sa.Column("provisional", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.execute("UPDATE forecasts SET provisional = (provisional_since_step IS NOT NULL)")
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_column("provisional_since_step")
