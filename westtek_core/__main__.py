"""Allow ``python -m westtek_core``."""

import sys

from westtek_core.cli import main

sys.exit(main())
