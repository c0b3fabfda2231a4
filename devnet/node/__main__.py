"""`python -m devnet.node`: run the dev node (same options as `python -m devnet node`)."""

import sys

from devnet.node.server import main

sys.exit(main())
