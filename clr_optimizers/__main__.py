"""`python -m clr_optimizers`: the reference table check and schedule plot."""

import sys

from clr_optimizers._demo import main

if __name__ == "__main__":
    sys.exit(main())
