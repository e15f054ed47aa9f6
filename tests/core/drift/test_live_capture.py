"""The live capture is taken again exactly when a config file changes, however written."""

from __future__ import annotations

import os
from pathlib import Path

from westtek_core.drift.live_capture import LiveCapture


def _touch_in_place(path: Path, text: str) -> None:
    # an editor that writes in place (no temporary file and rename): the directory's own
    # modification time stays put, only the file's moves
    before = path.parent.stat().st_mtime_ns
    with open(path, "r+", encoding="utf-8") as f:
        f.write(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert path.parent.stat().st_mtime_ns == before


def test_a_drop_in_config_file_edited_in_place_moves_the_stamp(research_env):
    config = Path(os.environ["JUPYTER_CONFIG_DIR"])
    drop_in = config / "jupyter_server_config.d" / "westtek.json"
    drop_in.parent.mkdir()
    drop_in.write_text('{"ServerApp": {"port": 9999}}')
    front_end = config / "nbconfig" / "notebook.json"
    front_end.parent.mkdir()
    front_end.write_text('{"load_extensions": {}}')
    live = LiveCapture([str(research_env["python"])], research_env["workspace"])
    first, _ = live.stamped()
    assert live.stamped()[0] == first  # nothing changed: the capture is reused

    _touch_in_place(drop_in, '{"ServerApp": {"port": 9998}}')
    second, capture = live.stamped()
    assert second != first
    contents = {entry.path: entry for tree in capture.config for entry in tree.tree.entries}
    assert "jupyter_server_config.d/westtek.json" in contents

    _touch_in_place(front_end, '{"load_extensions": {"x": 1}}')
    assert live.stamped()[0] != second


def test_a_jupyterlab_setting_saved_in_place_keeps_the_stamp(research_env):
    config = Path(os.environ["JUPYTER_CONFIG_DIR"])
    setting = (
        config
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "themes.jupyterlab-settings"
    )
    setting.parent.mkdir(parents=True)
    setting.write_text('{"theme": "JupyterLab Light"}')
    live = LiveCapture([str(research_env["python"])], research_env["workspace"])
    first, _ = live.stamped()

    _touch_in_place(setting, '{"theme": "JupyterLab Dark"}')
    assert live.stamped()[0] == first
