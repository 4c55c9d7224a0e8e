"""`python -m stream COMMAND`: the entry point of every Aurora Features command."""

import sys

from stream.cli import main

if __name__ == "__main__":
    sys.exit(main())
