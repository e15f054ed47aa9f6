"""Allow ``python -m westtek_core.cli`` (what tests and scripts run as a subprocess)."""

import sys

from westtek_core.cli import main

sys.exit(main())
