"""What a workspace's notebooks import, read and pip-install, and who provides those imports.

Environment drift is graded against what the notebooks actually use. The package's parts,
each importing only those before it:

* ``ipython``: IPython syntax (magics, shell escapes) → plain Python, and the pip installs;
* ``analysis``: what code imports and reads, from an ``ast`` walk of the cleaned cells;
* ``files``: reading ``.ipynb`` files safely, and analysing a notebook or a workspace;
* ``distributions``: which distributions of a captured interpreter provide an import
  (:class:`ImportMap`, from their RECORD file lists).
"""

from westtek_core.notebooks.analysis import CodeAnalysis, analyse_cells, analyse_source
from westtek_core.notebooks.distributions import ImportMap, module_of_record_path
from westtek_core.notebooks.files import (
    CHECKPOINT_DIR,
    MAX_NOTEBOOK_BYTES,
    NotebookAnalysis,
    analyse_notebook,
    analyse_workspace,
    find_notebooks,
    read_regular_file,
)
from westtek_core.notebooks.ipython import clean_ipython, pip_requirements

__all__ = [
    "CHECKPOINT_DIR",
    "MAX_NOTEBOOK_BYTES",
    "CodeAnalysis",
    "ImportMap",
    "NotebookAnalysis",
    "analyse_cells",
    "analyse_notebook",
    "analyse_source",
    "analyse_workspace",
    "clean_ipython",
    "find_notebooks",
    "module_of_record_path",
    "pip_requirements",
    "read_regular_file",
]
