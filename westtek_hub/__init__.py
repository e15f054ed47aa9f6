"""West Tek hub service: the central registry and admin panel, run as a JupyterHub service."""
