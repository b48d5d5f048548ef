"""``python -m experiments.occupancy``: see :mod:`experiments.tasks.occupancy`."""

import sys

from experiments.tasks.occupancy import main

if __name__ == "__main__":
    sys.exit(main())
