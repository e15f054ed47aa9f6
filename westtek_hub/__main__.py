"""Allow ``python -m westtek_hub`` (how hub_config starts the managed service)."""

from westtek_hub.service import main

main()
