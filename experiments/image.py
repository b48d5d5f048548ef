"""``python -m experiments.image``: see :mod:`experiments.tasks.image`."""

import sys

from experiments.tasks.image import main

if __name__ == "__main__":
    sys.exit(main())
