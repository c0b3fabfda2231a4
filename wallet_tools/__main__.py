"""`python -m wallet_tools COMMAND`: see wallet_tools.cli for the commands."""

import sys

from wallet_tools.cli import main

sys.exit(main())
