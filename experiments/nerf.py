"""``python -m experiments.nerf``: see :mod:`experiments.tasks.nerf`."""

import sys

from experiments.tasks.nerf import main

if __name__ == "__main__":
    sys.exit(main())
