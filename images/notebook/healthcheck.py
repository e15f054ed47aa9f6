"""The notebook image's health check: the server answers its API at the URL JupyterHub gave it.

During the pre-start restore the restore's status page answers on the same address, so a
server restoring a large environment is healthy too.
"""

import os
import sys
import urllib.request

url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8888/").rstrip("/")
prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
try:
    # the server binds JUPYTERHUB_SERVICE_URL's host and port; its pages live under the prefix
    base = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0]
    with urllib.request.urlopen(f"{base}{prefix}api", timeout=4) as response:
        sys.exit(0 if response.status < 500 else 1)
except Exception as error:
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
