"""Notebook import analysis: IPython cleanup, imports, data reads, pip installs, ImportMap."""

from __future__ import annotations

import importlib.metadata
import json
import random
from pathlib import Path
from typing import Any

import pytest

from westtek_core.notebooks import (
    CodeAnalysis,
    ImportMap,
    NotebookAnalysis,
    analyse_cells,
    analyse_notebook,
    analyse_source,
    analyse_workspace,
    clean_ipython,
    find_notebooks,
    module_of_record_path,
    pip_requirements,
)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def notebook_json(
    cells: list[str],
    *,
    kernel: str | None = "python3",
    language: str = "python",
    as_lines: bool = True,
    outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An nbformat v4 notebook; sources split into lines as Jupyter writes them to disk."""
    metadata: dict[str, Any] = {"language_info": {"name": language}}
    if kernel is not None:
        metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": language}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": metadata,
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{index}",
                "metadata": {},
                "execution_count": None,
                "outputs": outputs or [],
                "source": source.splitlines(keepends=True) if as_lines else source,
            }
            for index, source in enumerate(cells)
        ],
    }


def write_notebook(path: Path, cells: list[str], **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook_json(cells, **kwargs)))
    return path


_LIBRARIES = [
    ("numpy", "np"),
    ("pandas", "pd"),
    ("matplotlib.pyplot", "plt"),
    ("scipy.stats", "stats"),
    ("seaborn", "sns"),
    ("xarray", "xr"),
    ("yaml", None),
    ("requests", None),
]
_FROM_IMPORTS = [
    ("sklearn.linear_model", "LinearRegression"),
    ("sklearn.model_selection", "train_test_split"),
    ("google.cloud", "storage"),
    ("pathlib", "Path"),
    ("dateutil", "parser"),
]
_READS = [
    'df = pd.read_csv("data/{i}/measurements.csv", sep=",")',
    'arr = np.load("../shared/arrays_{i}.npy")',
    "with open('config/settings_{i}.json') as fh:\n    cfg = json.load(fh)",
    'ds = xr.open_dataset("/scratch/climate_{i}.nc")',
    "text = Path('notes/{i}.md').read_text()",
    'raw = pd.read_parquet("s3://bucket/{i}.parquet")',
]
_NOISE = [
    "%matplotlib inline",
    "%load_ext autoreload\n%autoreload 2",
    "!ls -la data | head",
    "%pip install -q 'pandas>=2.0' pyarrow==15.0.0",
    "%%time\nresult = model.fit(X, y)\nprint(result)",
    "%%bash\necho hello\npip install tqdm",
    "df.describe?",
    "files = !ls data\nprint(files)",
    "%timeit -n 3 np.sum(arr)",
]
_PLAIN = [
    "def summarise(frame):\n    '''Mean and spread.'''\n    return frame.mean(), frame.std()\n",
    "for column in df.columns:\n    print(column, df[column].dtype)\n",
    "class Model:\n    def __init__(self, k=3):\n        self.k = k\n\n    def fit(self, X, y):\n"
    "        return self\n",
    "x = [i ** 2 for i in range(100)]\ny = {k: v for k, v in zip(x, x)}\nprint(len(y))\n",
    "try:\n    import ujson as json\nexcept ImportError:\n    import json\n",
]


def realistic_notebook_cells(index: int, cells: int = 20) -> list[str]:
    """About 20 cells like a research notebook: imports, magics, data reads and plain code."""
    rng = random.Random(index)
    first = [
        f"import {module} as {alias}" if alias else f"import {module}"
        for module, alias in rng.sample(_LIBRARIES, 4)
    ]
    first += [f"from {module} import {name}" for module, name in rng.sample(_FROM_IMPORTS, 2)]
    sources = ["\n".join(first)]
    while len(sources) < cells:
        kind = rng.random()
        if kind < 0.3:
            sources.append(rng.choice(_READS).format(i=index))
        elif kind < 0.55:
            sources.append(rng.choice(_NOISE))
        else:
            sources.append(rng.choice(_PLAIN))
    return sources


def make_workspace(root: Path, notebooks: int) -> None:
    for index in range(notebooks):
        write_notebook(
            root / f"project{index % 10}" / f"nb{index}.ipynb", realistic_notebook_cells(index)
        )


def imports_of(source: str) -> tuple[str, ...]:
    return analyse_source(source).imports


# ---------------------------------------------------------------------------------------------
# ImportMap from package records
# ---------------------------------------------------------------------------------------------

FAKE_PACKAGES: list[dict[str, Any]] = [
    {
        "name": "PyYAML",
        "version": "6.0.1",
        "top_level": ["_yaml", "yaml"],
        "files": [
            "PyYAML-6.0.1.dist-info/RECORD",
            "PyYAML-6.0.1.dist-info/top_level.txt",
            "_yaml/__init__.py",
            "yaml/__init__.py",
            "yaml/__pycache__/__init__.cpython-311.pyc",
            "yaml/_yaml.cpython-311-x86_64-linux-gnu.so",
            "yaml/loader.py",
        ],
    },
    {
        "name": "scikit-learn",
        "version": "1.5.0",
        "top_level": ["sklearn"],
        "files": [
            "scikit_learn-1.5.0.dist-info/METADATA",
            "sklearn/__init__.py",
            "sklearn/linear_model/__init__.py",
            "sklearn/linear_model/_base.py",
            "sklearn/_isotonic.cpython-311-x86_64-linux-gnu.so",
            "scikit_learn.libs/libgomp-a34b3233.so.1.0.0",
        ],
    },
    {
        "name": "python-dateutil",
        "version": "2.9.0",
        "top_level": ["dateutil"],
        "files": [
            "python_dateutil-2.9.0.dist-info/RECORD",
            "dateutil/__init__.py",
            "dateutil/parser/__init__.py",
            "dateutil/zoneinfo/dateutil-zoneinfo.tar.gz",
        ],
    },
    {
        "name": "Pillow",
        "version": "10.3.0",
        "top_level": ["PIL"],
        "files": [
            "PIL/__init__.py",
            "PIL/Image.py",
            "PIL/_imaging.cpython-311-x86_64-linux-gnu.so",
        ],
    },
    {
        "name": "google-cloud-storage",
        "version": "2.16.0",
        "top_level": ["google.cloud.storage"],
        "files": [
            "google/cloud/storage/__init__.py",
            "google/cloud/storage/blob.py",
            "google_cloud_storage-2.16.0-py3.11-nspkg.pth",
        ],
    },
    {
        "name": "google-cloud-core",
        "version": "2.4.1",
        "top_level": ["google"],  # an old top_level.txt naming only the namespace root
        "files": ["google/cloud/client.py", "google/cloud/_helpers.py"],
    },
    {
        "name": "protobuf",
        "version": "4.25.3",
        "top_level": ["google"],
        "files": [
            "google/_upb/_message.abi3.so",
            "google/protobuf/__init__.py",
            "google/protobuf/message.py",
        ],
    },
    {
        "name": "matplotlib",
        "version": "3.8.4",
        "top_level": ["matplotlib", "mpl_toolkits", "pylab"],
        "files": [
            "matplotlib/__init__.py",
            "matplotlib/pyplot.py",
            "matplotlib/mpl-data/matplotlibrc",
            "mpl_toolkits/mplot3d/__init__.py",
            "mpl_toolkits/axes_grid1/__init__.py",
            "pylab.py",
        ],
    },
    {
        "name": "basemap",
        "version": "1.4.1",
        "top_level": ["mpl_toolkits"],
        "files": ["mpl_toolkits/basemap/__init__.py", "mpl_toolkits/basemap/proj.py"],
    },
    {
        "name": "sklearn-contrib-extras",
        "version": "0.1",
        "files": ["sklearn/contrib/extras.py"],  # ships into scikit-learn's package
    },
    {
        "name": "my-research-lib",
        "version": "0.1.0",
        "top_level": ["research_lib", "research_lib_plugins"],
        "files": [  # an editable install: nothing importable in RECORD but the .pth
            "__editable__.my_research_lib-0.1.0.pth",
            "my_research_lib-0.1.0.dist-info/direct_url.json",
        ],
    },
    {
        "name": "black",
        "version": "24.4.0",
        "files": [
            "../../bin/black",
            "black/__init__.py",
            "black-24.4.0.data/scripts/blackd",
            "_black_version.py",
            "blib2to3/__init__.py",
        ],
    },
    {
        "name": "types-PyYAML",
        "version": "6.0.12",
        "files": ["yaml-stubs/__init__.pyi", "yaml-stubs/loader.pyi"],
    },
]


@pytest.fixture(scope="module", params=["built", "extended", "read back"])
def fake_map(request) -> ImportMap:
    """The map of FAKE_PACKAGES built at once, extended half by half, or kept as JSON."""
    if request.param == "extended":
        half = len(FAKE_PACKAGES) // 2
        return ImportMap.from_packages(FAKE_PACKAGES[:half]).extended(FAKE_PACKAGES[half:])
    built = ImportMap.from_packages(FAKE_PACKAGES)
    if request.param == "read back":
        return ImportMap.from_json(json.loads(json.dumps(built.to_json())))
    return built


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("yaml", {"PyYAML"}),
        ("yaml.loader", {"PyYAML"}),
        ("yaml._yaml", {"PyYAML"}),
        ("_yaml", {"PyYAML"}),
        ("sklearn", {"scikit-learn"}),
        ("sklearn.linear_model", {"scikit-learn"}),
        ("sklearn.linear_model.LinearRegression", {"scikit-learn"}),
        ("sklearn._isotonic", {"scikit-learn"}),
        ("dateutil", {"python-dateutil"}),
        ("dateutil.parser", {"python-dateutil"}),
        ("dateutil.parser.parse", {"python-dateutil"}),
        ("PIL", {"Pillow"}),
        ("PIL.Image", {"Pillow"}),
        ("google.cloud.storage", {"google-cloud-storage"}),
        ("google.cloud.storage.blob", {"google-cloud-storage"}),
        ("google.cloud.storage.Client", {"google-cloud-storage"}),
        ("google.protobuf", {"protobuf"}),
        ("google.protobuf.message.Message", {"protobuf"}),
        ("google.cloud.client", {"google-cloud-core"}),
        ("google.cloud", {"google-cloud-storage", "google-cloud-core"}),
        ("google", {"google-cloud-storage", "google-cloud-core", "protobuf"}),
        ("mpl_toolkits", {"matplotlib", "basemap"}),
        ("mpl_toolkits.mplot3d", {"matplotlib"}),
        ("mpl_toolkits.basemap", {"basemap"}),
        ("matplotlib.pyplot", {"matplotlib"}),
        ("pylab", {"matplotlib"}),
        ("sklearn.contrib.extras", {"sklearn-contrib-extras"}),
        ("research_lib", {"my-research-lib"}),
        ("research_lib_plugins.io", {"my-research-lib"}),
        ("black", {"black"}),
        ("_black_version", {"black"}),
        ("blib2to3", {"black"}),
        ("os", set()),
        ("json.decoder", set()),
        ("not_installed_anywhere", set()),
    ],
)
def test_import_map_resolves_modules_to_distributions(fake_map, module, expected):
    # Given fake RECORD/top_level data, the deepest owner of the dotted path provides it.
    assert fake_map.distributions_for(module) == expected


def owned_by(import_map: ImportMap, dist: str) -> set[str]:
    return {module for module, dists in import_map.modules.items() if dist in dists}


def test_import_map_ignores_metadata_scripts_caches_data_and_stubs(fake_map):
    # Only importable modules are owned: nothing from dist-info, .data, ../, .pth or .pyi.
    assert owned_by(fake_map, "black") == {"black", "_black_version", "blib2to3"}
    assert owned_by(fake_map, "PyYAML") == {"yaml", "yaml.loader", "yaml._yaml", "_yaml"}
    assert owned_by(fake_map, "google-cloud-storage") == {
        "google.cloud.storage",
        "google.cloud.storage.blob",
    }
    assert owned_by(fake_map, "my-research-lib") == {"research_lib", "research_lib_plugins"}
    assert owned_by(fake_map, "types-PyYAML") == set()
    assert "types-PyYAML" not in {d for dists in fake_map.namespaces.values() for d in dists}


def test_top_level_does_not_override_what_the_files_show(fake_map):
    # protobuf's top_level says "google", but its files show google is only a namespace
    # portion: google.protobuf still resolves to protobuf alone.
    assert "protobuf" not in fake_map.modules.get("google", frozenset())
    assert fake_map.distributions_for("google.protobuf") == {"protobuf"}


def test_import_map_accepts_the_capture_probe_file_shape():
    # Records may give files as {"path", …} entries rather than strings.
    packages = [
        {
            "name": "PyYAML",
            "version": "6.0.1",
            "files": [{"path": "yaml/__init__.py", "sha256": None, "size": 10}],
        }
    ]
    assert ImportMap.from_packages(packages).distributions_for("yaml") == {"PyYAML"}


def test_import_map_tolerates_malformed_records():
    packages: list[dict[str, Any]] = [
        {"version": "1"},  # no name
        {"name": "", "files": ["a.py"]},
        {"name": "nofiles", "files": None, "top_level": None},
        {"name": "weird", "files": [3, {"nopath": 1}, "", "/abs/x.py", "ok_mod.py"]},
        {"name": "bad-top", "top_level": ["not a module", "1bad", "good_top"]},
    ]
    import_map = ImportMap.from_packages(packages)
    assert import_map.distributions_for("ok_mod") == {"weird"}
    assert import_map.distributions_for("good_top") == {"bad-top"}
    assert import_map.distributions_for("a") == set()


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("a/b/c.py", "a.b.c"),
        ("a/b/__init__.py", "a.b"),
        ("a/b/c.cpython-311-x86_64-linux-gnu.so", "a.b.c"),
        ("a/b/c.abi3.so", "a.b.c"),
        ("a/_speedups.cp311-win_amd64.pyd", "a._speedups"),
        ("a/__init__.cpython-311-x86_64-linux-gnu.so", "a"),
        ("a.py", "a"),
        ("a/__pycache__/b.cpython-311.pyc", None),
        ("a-1.0.dist-info/RECORD", None),
        ("a-1.0.data/scripts/run.py", None),
        ("../../bin/a", None),
        ("a.pth", None),
        ("a/b.pyi", None),
        ("a/mpl-data/x.py", None),
        ("a/data.json", None),
        ("__init__.py", None),
        ("__editable___a_1_0_finder.py", None),
    ],
)
def test_module_of_record_path(path, module):
    assert module_of_record_path(path) == module


def _current_interpreter_packages() -> list[dict[str, Any]]:
    packages = []
    for dist in importlib.metadata.distributions():
        top_level = dist.read_text("top_level.txt") or ""
        packages.append(
            {
                "name": dist.metadata["Name"],
                "version": dist.version,
                "top_level": top_level.split(),
                "files": [str(f) for f in dist.files or []],
            }
        )
    return packages


def test_import_map_from_the_real_interpreter_records():
    # Given the RECORDs of this very venv, when mapped, then well-known mismatched names
    # resolve to the right distributions and the standard library to nothing.
    import_map = ImportMap.from_packages(_current_interpreter_packages())
    assert import_map.distributions_for("yaml") == {"PyYAML"}
    assert import_map.distributions_for("dateutil.parser") == {"python-dateutil"}
    assert import_map.distributions_for("jupyter_server.serverapp") == {"jupyter_server"}
    assert import_map.distributions_for("json") == set()
    assert import_map.distributions_for("importlib.metadata") == set()


def test_import_map_from_the_capture_probe_maps_the_editable_project():
    # The probe's records (top_level from the editable .pth) map this
    # project, installed editable, to its distribution.
    from westtek_core.capture.probe import describe_distribution

    packages = [describe_distribution(d) for d in importlib.metadata.distributions()]
    import_map = ImportMap.from_packages(packages)
    assert import_map.distributions_for("westtek_core.notebooks") == {"westtek"}
    assert import_map.distributions_for("yaml") == {"PyYAML"}


# ---------------------------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import a.b as c", ("a.b",)),
        ("import a, b.c", ("a", "b.c")),
        ("from a.b import c", ("a.b", "a.b.c")),
        ("from a.b import c as d, e", ("a.b", "a.b.c", "a.b.e")),
        ("from a import *", ("a",)),
        ("from . import x\nfrom ..pkg import y\nfrom .m import z", ()),
        ("from __future__ import annotations", ()),
        ("def f():\n    import inner\n    return inner", ("inner",)),
        ("try:\n    import fast\nexcept ImportError:\n    import slow", ("fast", "slow")),
        ("if True:\n    from cond.mod import thing", ("cond.mod", "cond.mod.thing")),
        ("import importlib\nm = importlib.import_module('dyn.mod')", ("dyn.mod", "importlib")),
        (
            "from importlib import import_module\nimport_module('plug')",
            ("importlib", "importlib.import_module", "plug"),
        ),
        ("import importlib as il\nil.import_module('aliased')", ("aliased", "importlib")),
        ("__import__('legacy')", ("legacy",)),
        ("__import__(name)\nimportlib.import_module(f'x{y}')", ()),
        ("importlib.import_module('.rel', 'pkg')\n__import__('not a module')", ()),
        ("import numpy as np\nimport numpy as np", ("numpy",)),
    ],
)
def test_imports_are_collected(source, expected):
    assert imports_of(source) == expected


def test_imports_across_cells_are_sorted_and_deduplicated():
    result = analyse_cells(["import zlib\nimport numpy", "import numpy.linalg\nimport attr"])
    assert result.imports == ("attr", "numpy", "numpy.linalg", "zlib")


# ---------------------------------------------------------------------------------------------
# IPython syntax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "imports"),
    [
        ("%matplotlib inline\nimport numpy", ("numpy",)),
        ("%time import slowmod", ("slowmod",)),
        ("%time x = __import__('timed')", ("timed",)),
        ("%timeit -n 10 -r 3 import fastmod", ("fastmod",)),
        ("%prun -s cumulative import profiled", ("profiled",)),
        ("%%time\nimport cellmod\nx = 1", ("cellmod",)),
        ("%%timeit -n 3 import setupmod\nimport bodymod", ("bodymod", "setupmod")),
        ("%%capture out\nimport captured", ("captured",)),
        ("\n\n%%capture\nimport after_blank_lines", ("after_blank_lines",)),
        ("%%bash\nimport shell_not_python", ()),
        ("%%html\n<p>import nothing</p>", ()),
        ("%%javascript\nimport x from 'y';", ()),
        ("%%writefile helper.py\nimport written_not_run", ()),
        ("%%sql\nSELECT 1", ()),
        ("!ls\nimport after_shell", ("after_shell",)),
        ("!!ls\nimport after_double_bang", ("after_double_bang",)),
        ("files = !ls\nimport after_assign", ("after_assign",)),
        ("a, b = %sx ls\nimport after_magic_assign", ("after_magic_assign",)),
        ("t = %timeit -o import timed_assign", ("timed_assign",)),
        ("obj?\nimport after_help", ("after_help",)),
        ("obj.method??\nimport after_help2", ("after_help2",)),
        ("?obj\nimport after_prefix_help", ("after_prefix_help",)),
        ("x = 1  # really?\nimport comment_q", ("comment_q",)),
        ("s = 'what?'\nimport string_q", ("string_q",)),
        ("if True:\n    !pip install x\n    import indented", ("indented",)),
        ("for i in range(3):\n    %time import in_loop", ("in_loop",)),
        ("!echo a \\\n  b\nimport after_continued_shell", ("after_continued_shell",)),
        ("x = 1 + \\\n    2\n%ls\nimport after_backslash", ("after_backslash",)),
        ("s = '''\n%not a magic\n!not shell\nobj?\n'''\nimport after_string", ("after_string",)),
        ('s = """\n%x\n"""\n%ls\nimport after_dq', ("after_dq",)),
        ("x = (1,\n     2)\n%ls\nimport after_brackets", ("after_brackets",)),
        ("%%time\n%matplotlib inline\nimport nested_magic", ("nested_magic",)),
        ("%%capture\n%%time\nimport stacked", ("stacked",)),
        ("%%capture\n%%bash\nimport stacked_shell", ()),
        ("%ls\r\nimport crlf\r\n", ("crlf",)),
        ("%load_ext autoreload\n%autoreload 2\nimport reloaded", ("reloaded",)),
        ("get_ipython().run_line_magic('matplotlib', 'inline')\nimport exported", ("exported",)),
    ],
)
def test_ipython_syntax_is_cleaned_before_parsing(source, imports):
    result = analyse_source(source)
    assert result.imports == imports
    assert result.unparsable_cells == 0


def test_cleaning_keeps_line_numbers_and_indentation():
    python, pips = clean_ipython("%ls\nif x:\n    !pip install a\n    y = 1\n%time z = 2")
    assert python == "pass\nif x:\n    pass\n    y = 1\nz = 2"
    assert pips == ["a"]


def test_non_python_cell_magic_is_dropped_without_counting_as_unparsable():
    assert clean_ipython("%%bash\nls -la")[0] is None
    assert analyse_source("%%bash\nif [ -f x ]; then echo; fi").unparsable_cells == 0


def test_cells_with_real_syntax_errors_are_counted():
    result = analyse_cells(["import ok", "def broken(:\n    pass", "%ls\nx = = 1"])
    assert result.imports == ("ok",)
    assert result.unparsable_cells == 2


def test_cleaner_agrees_with_ipythons_own_transformer():
    # IPython's transformer is the reference for what is Python; every import it leaves
    # as Python is found by the cleaner too (which also keeps %time statements).
    transformer = pytest.importorskip("IPython.core.inputtransformer2").TransformerManager()
    cells = [
        cell
        for index in range(30)
        for cell in realistic_notebook_cells(index)
        if not cell.startswith("%%bash")
    ]
    for cell in cells:
        reference = analyse_source(transformer.transform_cell(cell))
        ours = analyse_source(cell)
        assert set(reference.imports) <= set(ours.imports), cell
        assert ours.unparsable_cells == reference.unparsable_cells == 0, cell


# ---------------------------------------------------------------------------------------------
# pip installs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "requirements"),
    [
        ("pip install numpy==1.26 pandas", ["numpy==1.26", "pandas"]),
        ("pip install -q -U 'pandas>=2' \"scipy<2\"", ["pandas>=2", "scipy<2"]),
        ("pip3 install --user requests", ["requests"]),
        ("python -m pip install -i https://idx/simple torch", ["torch"]),
        ("{sys.executable} -m pip install xgboost", ["xgboost"]),
        ("uv pip install polars", ["polars"]),
        ("pip install -r requirements.txt -c constraints.txt", []),
        ("pip install -e ./mylib --no-deps", ["./mylib"]),
        ("pip install --editable=../other", ["../other"]),
        (
            "pip install git+https://github.com/o/r.git@main#egg=r",
            ["git+https://github.com/o/r.git@main#egg=r"],
        ),
        ("pip install a > /dev/null 2>&1", ["a"]),
        ("pip install a >log.txt b", ["a", "b"]),
        ("pip install a && pip install b; echo done", ["a", "b"]),
        ("cd x; pip install c", ["c"]),
        ("pip install d; ls", ["d"]),
        ("pip install e  # pinned later", ["e"]),
        ("pip install $PKG {name} f", ["f"]),
        ("pip uninstall -y numpy", []),
        ("pip list", []),
        ("conda install numpy", []),
        ("pip install 'unbalanced", ["'unbalanced"]),
        ("pip --disable-pip-version-check install g", ["g"]),
    ],
)
def test_pip_requirements(command, requirements):
    assert pip_requirements(command) == requirements


def test_pip_installs_from_magics_shell_and_exported_calls_in_order():
    cells = [
        "%pip install a==1 b",
        "!pip install c\n!python -m pip install 'd[extra]>=2'",
        "x = !pip install e",
        "%%bash\npip install f\nls",
        "%%capture\n%pip install g",
        "%%html\npip install not_this",
        "get_ipython().run_line_magic('pip', 'install h')\nget_ipython().system('pip install i')",
        "%conda install not_pip",
        "%pip install a==1",
    ]
    result = analyse_cells(cells)
    assert result.pip_installs == ("a==1", "b", "c", "d[extra]>=2", "e", "f", "g", "h", "i", "a==1")
    assert result.unparsable_cells == 0


# ---------------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "files"),
    [
        ("import pandas as pd\npd.read_csv('data/x.csv')", ("data/x.csv",)),
        (
            "pd.read_parquet('a.parquet'); pd.read_excel('b.xlsx'); pd.read_json('c.json')",
            ("a.parquet", "b.xlsx", "c.json"),
        ),
        (
            "pd.read_table('t.tsv'); pd.read_feather('f.feather'); pd.read_pickle('p.pkl')",
            ("f.feather", "p.pkl", "t.tsv"),
        ),
        ("pd.read_hdf('h.h5', 'key')", ("h.h5",)),
        ("pd.read_csv(filepath_or_buffer='kw.csv')", ("kw.csv",)),
        ("from pandas import read_csv as rc\nrc('bare.csv')", ("bare.csv",)),
        ("import pandas\npandas.read_csv(f'plain_f.csv')", ("plain_f.csv",)),
        ("pd.read_csv(f'data/{name}.csv')", ()),
        ("pd.read_csv(path)", ()),
        ("pd.read_csv('https://example.com/x.csv')", ()),
        ("pd.read_parquet('s3://bucket/key.parquet')", ()),
        ("open('notes.txt')", ("notes.txt",)),
        ("open('out.txt', 'w').write('x')", ("out.txt",)),
        ("with open(file='kw.txt', mode='rb') as f:\n    pass", ("kw.txt",)),
        ("import json\njson.load(open('cfg.json'))", ("cfg.json",)),
        ("import numpy as np\nnp.load('a.npy'); np.loadtxt('b.txt')", ("a.npy", "b.txt")),
        ("np.genfromtxt('g.csv', delimiter=','); np.fromfile('raw.bin')", ("g.csv", "raw.bin")),
        ("np.loadtxt(fname='kw.dat')", ("kw.dat",)),
        ("import numpy as nmp\nnmp.load('aliased.npy')", ("aliased.npy",)),
        ("import pickle\npickle.load(f)\njoblib.load(x)", ()),
        ("from pathlib import Path\nPath('p.txt').read_text()", ("p.txt",)),
        ("import pathlib\npathlib.Path('q.bin').read_bytes()", ("q.bin",)),
        ("Path('r.csv').open()", ("r.csv",)),
        ("(Path('data') / 'raw' / 's.csv').read_text()", ("data/raw/s.csv",)),
        ("pd.read_csv(Path('data', 'sub', 't.csv'))", ("data/sub/t.csv",)),
        ("import os\nopen(os.path.join('data', 'u.txt'))", ("data/u.txt",)),
        ("Path(base).read_text()\n('a' / 'b')", ()),
        ("import xarray as xr\nxr.open_dataset('w.nc')", ("w.nc",)),
        ("import h5py\nwith h5py.File('v.h5', 'r') as f:\n    pass", ("v.h5",)),
        ("from h5py import File\nFile('imported.h5')", ("imported.h5",)),
        ("open('/abs/path.txt')", ("/abs/path.txt",)),
        ("open('')\nopen(3)", ()),
        ("def load():\n    return pd.read_csv('inside.csv')", ("inside.csv",)),
        ("%time df = pd.read_csv('timed.csv')", ("timed.csv",)),
    ],
)
def test_data_files_read_through_literal_paths(source, files):
    assert analyse_source(source).data_files == files


def test_aliases_from_earlier_cells_decide_later_reads():
    # np is numpy by convention; here it is not, and the earlier cell says so.
    result = analyse_cells(["import mylib as np", "np.load('not_numpy.bin')"])
    assert result.data_files == ()


def test_notebook_data_paths_are_relative_to_the_workspace(tmp_path):
    notebook = write_notebook(
        tmp_path / "proj" / "analysis" / "nb.ipynb",
        [
            "import pandas as pd\nimport numpy as np",
            "pd.read_csv('data/x.csv')\nnp.load('../shared/y.npy')\nopen('./z.txt')",
            "open('/etc/hosts')\nopen('~/home.txt')\nopen('../../../outside.txt')",
        ],
    )
    analysis = analyse_notebook(notebook, tmp_path)
    assert analysis.path == "proj/analysis/nb.ipynb"
    assert analysis.data_files == (
        "../outside.txt",
        "/etc/hosts",
        "proj/analysis/data/x.csv",
        "proj/analysis/z.txt",
        "proj/shared/y.npy",
        "~/home.txt",
    )


# ---------------------------------------------------------------------------------------------
# Notebooks and bad input
# ---------------------------------------------------------------------------------------------


def test_analyse_notebook_reports_kernel_imports_reads_and_installs(tmp_path):
    notebook = write_notebook(
        tmp_path / "nb.ipynb",
        ["%pip install pandas==2.2", "import pandas as pd\ndf = pd.read_csv('d.csv')", "x = ("],
        kernel="research",
    )
    assert analyse_notebook(notebook, tmp_path) == NotebookAnalysis(
        path="nb.ipynb",
        kernel="research",
        imports=("pandas",),
        data_files=("d.csv",),
        pip_installs=("pandas==2.2",),
        error=None,
        unparsable_cells=1,
    )


def test_sources_as_strings_or_line_lists_are_the_same(tmp_path):
    cells = ["import a\nimport b\n", "%ls\nimport c"]
    lists = analyse_notebook(write_notebook(tmp_path / "l.ipynb", cells, as_lines=True), tmp_path)
    text = analyse_notebook(write_notebook(tmp_path / "s.ipynb", cells, as_lines=False), tmp_path)
    assert lists.imports == text.imports == ("a", "b", "c")


def test_markdown_and_raw_cells_are_ignored(tmp_path):
    data = notebook_json(["import real"])
    data["cells"] += [
        {"cell_type": "markdown", "metadata": {}, "source": ["import markdown_mod\n"]},
        {"cell_type": "raw", "metadata": {}, "source": "import raw_mod"},
        "not a cell",
        {"cell_type": "code", "source": 42},
    ]
    (tmp_path / "nb.ipynb").write_text(json.dumps(data))
    assert analyse_notebook(tmp_path / "nb.ipynb", tmp_path).imports == ("real",)


def test_nbformat_v3_notebooks_are_read(tmp_path):
    data = {
        "nbformat": 3,
        "metadata": {"name": "old"},
        "worksheets": [{"cells": [{"cell_type": "code", "input": ["import legacy\n"]}]}],
    }
    (tmp_path / "old.ipynb").write_text(json.dumps(data))
    analysis = analyse_notebook(tmp_path / "old.ipynb", tmp_path)
    assert analysis.imports == ("legacy",)
    assert analysis.kernel is None


def _error_of(tmp_path: Path, content: bytes, **kwargs: Any) -> NotebookAnalysis:
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    return analyse_notebook(path, tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "invalid JSON"),
        (json.dumps(notebook_json(["import a"])).encode()[:-40], "invalid JSON"),
        (b"", "invalid JSON"),
        (b'{"cells": [{"cell_type": "code", "source": "# caf\xe9"}]}', "not UTF-8"),
        (b"[1, 2, 3]", "not a notebook"),
        (b'{"metadata": {}}', "not a notebook"),
        (b'{"cells": {"a": 1}}', "not a notebook"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    ],
)
def test_bad_files_are_reported_not_raised(tmp_path, content, error):
    analysis = _error_of(tmp_path, content)
    assert analysis.error is not None and analysis.error.startswith(error)
    assert analysis.imports == analysis.data_files == analysis.pip_installs == ()
    assert analysis.path == "bad.ipynb"


def test_utf8_bom_is_accepted(tmp_path):
    content = b"\xef\xbb\xbf" + json.dumps(notebook_json(["import bom"])).encode()
    analysis = _error_of(tmp_path, content)
    assert analysis.error is None and analysis.imports == ("bom",)


def test_non_python_notebooks_are_reported(tmp_path):
    notebook = write_notebook(tmp_path / "r.ipynb", ["library(ggplot2)"], kernel="ir", language="R")
    analysis = analyse_notebook(notebook, tmp_path)
    assert analysis.error == "not a Python notebook (language 'R')"
    assert analysis.kernel == "ir"


def test_missing_and_oversized_notebooks_are_reported(tmp_path):
    missing = analyse_notebook(tmp_path / "gone.ipynb", tmp_path)
    assert missing.error is not None and missing.error.startswith("cannot read")
    write_notebook(tmp_path / "big.ipynb", ["import a"])
    big = analyse_notebook(tmp_path / "big.ipynb", tmp_path, max_bytes=10)
    assert big.error is not None and "over the 10-byte limit" in big.error


def test_pathological_cells_are_counted_not_raised():
    cells = [
        "x = " + "(" * 500 + ")" * 500,  # too many nested parentheses
        "x = " + "-" * 200_000 + "1",  # parser MemoryError
        "x = " + "+".join(["a"] * 200_000),  # RecursionError building the ast
        "x = 'null\x00byte'",
        "open(" + "Path('a') / " * 300 + "'b')",  # deep but parseable: path depth capped
        "import survivor",
    ]
    result = analyse_cells(cells)
    assert result.imports == ("survivor",)
    assert result.unparsable_cells == 4


def test_huge_outputs_do_not_choke(tmp_path):
    # Given a notebook of ~50 MB of image outputs, it is analysed like any other.
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "A" * 5_000_000}}
    notebook = write_notebook(
        tmp_path / "huge.ipynb", ["import numpy", "import pandas"] * 5, outputs=[image]
    )
    assert notebook.stat().st_size > 50_000_000
    analysis = analyse_notebook(notebook, tmp_path)
    assert analysis.error is None
    assert analysis.imports == ("numpy", "pandas")


def test_never_raises_on_unexpected_shapes(tmp_path):
    data = notebook_json(["import ok"])
    data["metadata"] = {"kernelspec": ["not", "a", "dict"], "language_info": "python"}
    (tmp_path / "odd.ipynb").write_text(json.dumps(data))
    analysis = analyse_notebook(tmp_path / "odd.ipynb", tmp_path)
    assert analysis.error is None and analysis.kernel is None and analysis.imports == ("ok",)


# ---------------------------------------------------------------------------------------------
# Workspaces
# ---------------------------------------------------------------------------------------------


def test_analyse_workspace_skips_checkpoints(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["import a"])
    write_notebook(tmp_path / "sub" / "b.ipynb", ["import b"])
    write_notebook(tmp_path / ".ipynb_checkpoints" / "a-checkpoint.ipynb", ["import stale"])
    write_notebook(tmp_path / "sub" / ".ipynb_checkpoints" / "b-checkpoint.ipynb", ["import x"])
    (tmp_path / "notes.txt").write_text("import nothing")
    results = analyse_workspace(tmp_path)
    assert [(r.path, r.imports) for r in results] == [("a.ipynb", ("a",)), ("sub/b.ipynb", ("b",))]
    assert find_notebooks(tmp_path) == ["a.ipynb", "sub/b.ipynb"]


def test_analyse_workspace_given_files(tmp_path):
    write_notebook(tmp_path / "a.ipynb", ["import a"])
    write_notebook(tmp_path / "sub" / "b.ipynb", ["import b"])
    results = analyse_workspace(tmp_path, files=["sub/b.ipynb", "missing.ipynb"])
    assert [r.path for r in results] == ["sub/b.ipynb", "missing.ipynb"]
    assert results[0].imports == ("b",)
    assert results[1].error is not None


def test_realistic_workspace_is_analysed_completely(tmp_path):
    # The generator's notebooks (the ones the 1,000-notebook timing uses) analyse cleanly.
    make_workspace(tmp_path, 20)
    results = analyse_workspace(tmp_path)
    assert len(results) == 20
    for result in results:
        assert result.error is None and result.unparsable_cells == 0, result
        assert result.imports and result.kernel == "python3"
    for result in results:
        project = result.path.split("/")[0]
        for path in result.data_files:  # resolved against the notebook's own directory
            assert path.startswith((f"{project}/", "shared/", "/scratch/")), path
    every_read = {f for r in results for f in r.data_files}
    assert "project3/data/3/measurements.csv" in every_read
    assert not any("s3:" in f for f in every_read)
    assert any("pandas>=2.0" in r.pip_installs for r in results)


def test_code_analysis_defaults_are_empty():
    assert analyse_cells([]) == CodeAnalysis()
