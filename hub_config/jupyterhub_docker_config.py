"""JupyterHub configuration for the demo with the docker backend (`make demo-docker`).

The demo of jupyterhub_config.py, with each researcher's server in a container of the
notebook image `make images` builds: their own home volume (`westtek-home-<user>`), their
lab's store mounted at the same path (no other lab's), and their latest snapshot restored
before JupyterLab opens, so what they pip-installed survives the container. Containers use
the host's network (servers on loopback ports), as the demo's hub and service do.
"""

import json
from pathlib import Path

c = get_config()  # noqa: F821 (injected by JupyterHub)
load_subconfig(str(Path(__file__).with_name("jupyterhub_config.py")))  # noqa: F821

IMAGES = json.loads((Path(__file__).parents[1] / "images" / "images.json").read_text())

c.WestTekSpawner.backend = "docker"
c.DockerSpawner.image = f"{IMAGES['images']['notebook']}:{IMAGES['tag']}"
c.DockerSpawner.pull_policy = "never"  # built here by `make images`, in no registry
c.DockerSpawner.network_name = "host"
c.DockerSpawner.host_ip = "127.0.0.1"
# a container's server starts after its restore: the image is local, no pull to wait for
c.Spawner.start_timeout = 300
