"""`python -m backend` is the `curvecast` command (used where the script is not on PATH)."""

from backend.cli import main

if __name__ == "__main__":  # not when the embedded server's fitting process is spawned
    main()
