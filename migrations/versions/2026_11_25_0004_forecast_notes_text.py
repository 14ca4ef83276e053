"""A forecast's reason and prior notes are text: a note naming its references, their
calibration and a blend outgrew 512 characters, and the insert failed (the forecast was lost).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("forecasts") as batch:
        batch.alter_column("reason", type_=sa.Text(), existing_type=sa.String(512),
                           existing_nullable=False)
        batch.alter_column("prior", type_=sa.Text(), existing_type=sa.String(512),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("forecasts") as batch:
        batch.alter_column("reason", type_=sa.String(512), existing_type=sa.Text(),
                           existing_nullable=False)
        batch.alter_column("prior", type_=sa.String(512), existing_type=sa.Text(),
                           existing_nullable=True)
