"""``python -m experiments.audio``: see :mod:`experiments.tasks.audio`."""

import sys

from experiments.tasks.audio import main

if __name__ == "__main__":
    sys.exit(main())
