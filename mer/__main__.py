"""`python -m mer ...`: the same front door as the `mer` console script."""

import sys

from mer.commands.cli import main

sys.exit(main())
