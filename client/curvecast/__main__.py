"""`python -m curvecast sync [--dir D]`: the client's only command (the server's `curvecast`
command offers the same `sync`)."""

import argparse
import sys

from curvecast import sync


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m curvecast")
    parser.add_argument("command", choices=["sync"])
    parser.add_argument("args", nargs=argparse.REMAINDER, help="see `sync --help`")
    args = parser.parse_args(argv)
    return sync.main(args.args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
