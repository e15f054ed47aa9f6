"""IPython syntax → plain Python, with a small line cleaner, and the pip installs it hides.

Magics (``%time``, ``%%bash`` …), shell escapes (``!ls``, ``x = !ls``) and help (``obj?``)
are turned into Python or dropped, so the code analysis can parse every cell with ``ast``;
``%pip install`` and ``!pip install`` are kept aside as requirements.

IPython's own ``TransformerManager`` is deliberately not used: it costs about 100 µs per cell
(2.1 s for 20,000 cells, before parsing), is only installed where a kernel is, and would make
the result depend on the IPython version. Cells that already parse as Python (most of them)
skip the cleaner entirely.
"""

from __future__ import annotations

import posixpath
import re
import shlex

# Cell magics whose body is Python run in the kernel itself; every other cell magic is dropped.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
# Cell magics whose body is shell: scanned for ``pip install`` only.
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "system", "!"})
# Line magics that run the Python statement after their options, with the options taking a value.
_STATEMENT_MAGICS: dict[str, frozenset[str]] = {
    "time": frozenset(),
    "timeit": frozenset({"-n", "-r", "-p"}),
    "prun": frozenset({"-l", "-s", "-T", "-D"}),
}
_SHELL_LINE_MAGICS = frozenset({"system", "sx", "sc"})

_MAGIC_RE = re.compile(r"%{1,2}([\w!]*)\s*(.*)", re.DOTALL)
_ASSIGN_ESCAPE_RE = re.compile(
    r"[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*([!%])(.*)", re.DOTALL
)
_CODE_SPECIAL_RE = re.compile(r"""[#\[\](){}]|'''|\"\"\"|['"]""")
_STRING_REST: dict[str, re.Pattern[str]] = {
    "'": re.compile(r"(?:[^'\\\n]|\\.)*'", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"', re.DOTALL),
    "'''": re.compile(r"(?:[^'\\]|\\.|'(?!''))*'''", re.DOTALL),
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""', re.DOTALL),
}
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")

# pip install options that take a value as the next argument (``--opt=value`` needs no entry).
_PIP_VALUED_OPTIONS = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
        "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi",
        "--trusted-host", "--cache-dir", "--src", "--global-option", "--install-option",
        "-C", "--config-settings", "--progress-bar", "--log", "--proxy", "--retries",
        "--timeout", "--exists-action", "--cert", "--client-cert", "--report",
        "--only-binary", "--no-binary", "--python", "--keyring-provider",
        "--root-user-action", "--use-feature", "--use-deprecated", "--group",
    }
)  # fmt: skip
_PIP_RE = re.compile(r"pip(?:\d+(?:\.\d+)*)?")
_SHELL_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
_REDIRECT_RE = re.compile(r"(?:\d*|&)(?:>>?|<)(.*)")


def _split_shell(command: str) -> list[str]:
    """Split a shell command like a POSIX shell would split words; never raises."""
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:  # unbalanced quotes
        return command.split()


def pip_requirements(command: str) -> list[str]:
    """Requirement strings a shell command installs with pip (``pip install …``, ``-m pip``).

    Options are skipped except ``-e <target>`` (an editable requirement); ``-r file`` is not a
    requirement and is skipped too. Words with shell or IPython interpolation (``$x``,
    ``{x}``) are not literal requirements and are left out; so is everything after a comment.
    """
    requirements: list[str] = []
    segment: list[str] = []
    skip_next = False
    for word in [*_split_shell(command), ";"]:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("#"):
            break
        redirect = _REDIRECT_RE.fullmatch(word)
        if redirect is not None:  # "> log" skips its target too; ">log", "2>&1" are one word
            skip_next = not redirect.group(1)
            continue
        tail = word.endswith(";") and word != ";"
        word = word.rstrip(";") if tail else word
        if word in _SHELL_SEPARATORS:
            requirements.extend(_install_arguments(segment))
            segment = []
            continue
        segment.append(word)
        if tail:
            requirements.extend(_install_arguments(segment))
            segment = []
    requirements.extend(_install_arguments(segment))
    return requirements


def _install_arguments(words: list[str]) -> list[str]:
    """The requirements of one simple command when it is a ``pip install``."""
    for index, word in enumerate(words):
        if _PIP_RE.fullmatch(posixpath.basename(word)):
            rest = words[index + 1 :]
            break
    else:
        return []
    while rest and rest[0].startswith("-"):  # global options: -q, --disable-pip-version-check
        rest = rest[1:]
    if not rest or rest[0] != "install":
        return []
    found: list[str] = []
    args = iter(rest[1:])
    for arg in args:
        if arg.startswith("-"):
            if arg in _PIP_VALUED_OPTIONS:
                value = next(args, "")
                if arg in ("-e", "--editable") and value:
                    found.append(value)
            elif arg.startswith("--editable="):
                found.append(arg.partition("=")[2])
            continue
        if arg and "$" not in arg and "{" not in arg:
            found.append(arg)
    return found


def _magic_statement(name: str, args: str) -> str:
    """The Python statement a statement-running line magic executes, options stripped."""
    valued = _STATEMENT_MAGICS[name]
    rest = args.strip()
    while rest.startswith("-"):
        option, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if option in valued:  # "-n 10": the value is the next word ("-n10" is one word)
            _, _, rest = rest.partition(" ")
            rest = rest.lstrip()
    return rest


def _line_magic(name: str, args: str, pips: list[str]) -> str:
    """Python replacing one line magic: its statement, or ``pass``; records pip installs."""
    if name == "pip":
        pips.extend(pip_requirements("pip " + args))
    elif name in _SHELL_LINE_MAGICS:
        pips.extend(pip_requirements(args))
    elif name in _STATEMENT_MAGICS:
        return _magic_statement(name, args) or "pass"
    return "pass"


def _escape(text: str, pips: list[str]) -> str | None:
    """Python replacing a logical line that starts with IPython syntax; None when it is Python.

    ``text`` is the line without indentation, backslash continuations joined.
    """
    first = text[:1]
    if first == "%":
        match = _MAGIC_RE.match(text)
        if text.startswith("%%") or match is None:  # a cell magic below the first line
            return "pass"
        return _line_magic(match.group(1), match.group(2), pips)
    if first == "!":
        pips.extend(pip_requirements(text.lstrip("!")))
        return "pass"
    if first and first in "?/,;":  # help (?obj), autocall escapes (/f x, ,f a b, ;f a b)
        return "pass"
    assign = _ASSIGN_ESCAPE_RE.match(text)
    if assign is None:
        return None
    if assign.group(1) == "!":
        pips.extend(pip_requirements(assign.group(2).lstrip("!")))
        return "pass"
    return _escape("%" + assign.group(2), pips)


def _scan(line: str, quote: str | None, depth: int) -> tuple[str | None, int, str]:
    r"""Advance the lexical state over one physical line.

    Returns the open string quote (or None), the bracket depth and the last significant
    character outside strings and comments (``\\`` means the line continues).
    """
    pos, end, last = 0, len(line), ""
    while pos < end:
        if quote is not None:
            closed = _STRING_REST[quote].match(line, pos)
            if closed is None:
                if len(quote) == 1 and not line.rstrip().endswith("\\"):
                    quote = None  # unterminated one-line string: a syntax error, carry on
                return quote, depth, last
            pos, last, quote = closed.end(), quote[0], None
            continue
        special = _CODE_SPECIAL_RE.search(line, pos)
        stop = special.start() if special else end
        segment = line[pos:stop].rstrip()
        if segment:
            last = segment[-1]
        if special is None:
            break
        token = special.group()
        if token == "#":
            break
        if token in _OPENERS:
            depth += 1
        elif token in _CLOSERS:
            depth = max(0, depth - 1)
        else:
            quote = token
        last, pos = token[0], special.end()
    return quote, depth, last


def _clean_lines(lines: list[str], pips: list[str]) -> list[str]:
    """Replace IPython-only logical lines by Python, keeping line numbers and indentation."""
    out: list[str] = []
    quote: str | None = None
    depth = 0
    continued = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if quote is None and depth == 0 and not continued:
            stripped = line.lstrip()
            indent = line[: len(line) - len(stripped)]
            if stripped[:1] in ("%", "!", "?", "/", ",", ";") or "=" in stripped:
                last_index = index
                text = stripped.rstrip()
                while text.endswith("\\") and last_index + 1 < len(lines) and text[:1] in "%!":
                    last_index += 1
                    text = text[:-1] + " " + lines[last_index].strip()
                replacement = _escape(text, pips)
                if replacement is not None:
                    out.append(indent + replacement)
                    out.extend("" for _ in range(last_index - index))
                    index = last_index + 1
                    continue
            quote, depth, last = _scan(line, None, 0)
            if quote is None and depth == 0 and last == "?":  # obj? / obj?? help
                out.append(indent + "pass")
                index += 1
                continue
        else:
            quote, depth, last = _scan(line, quote, depth)
        continued = quote is None and last == "\\"
        out.append(line)
        index += 1
    return out


def clean_ipython(source: str) -> tuple[str | None, list[str]]:
    """Turn one code cell's IPython syntax into Python; None when the cell is not Python.

    Returns the Python source (same line numbers) and the requirements the cell pip-installs.
    ``%%time``/``%%timeit``/``%%capture``/``%%prun``/``%%debug`` keep their body; other cell
    magics drop the cell (shell ones are still scanned for ``pip install``). ``%time``,
    ``%timeit`` and ``%prun`` keep their statement; other line magics, ``!shell``,
    ``x = !cmd``, ``x = %magic`` and ``obj?``/``?obj`` help become ``pass``.
    """
    pips: list[str] = []
    lines = source.split("\n")
    removed: list[str] = []  # what replaces the cell magic lines, so line numbers hold
    while True:  # cell magics stack: "%%capture" runs its body, which may be "%%time …"
        first = 0
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first == len(lines) or not lines[first].startswith("%%"):
            break
        match = _MAGIC_RE.match(lines[first].strip())
        name, args = (match.group(1), match.group(2)) if match else ("", "")
        body = lines[first + 1 :]
        if name in _SHELL_CELL_MAGICS:
            for line in body:
                pips.extend(pip_requirements(line))
            return None, pips
        if name not in _PYTHON_CELL_MAGICS:
            return None, pips
        removed += [""] * first
        removed.append(_magic_statement("timeit", args) if name == "timeit" else "")
        lines = body
    return "\n".join([*removed, *_clean_lines(lines, pips)]), pips
