"""``python -m experiments.video``: see :mod:`experiments.tasks.video`."""

import sys

from experiments.tasks.video import main

if __name__ == "__main__":
    sys.exit(main())
