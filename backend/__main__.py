"""`python -m backend` is the `curvecast` command (used where the script is not on PATH)."""

from backend.cli import main

main()
