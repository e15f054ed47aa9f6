// A throwaway Python environment for the UI tests (not a test file itself):
// a venv without pip, and tiny pure-Python wheels of a package `wtdemo`
// written on the spot, installed with the test env's pip — no network.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { PYTHON, notebookOf } from './helpers.mjs';

const run = promisify(execFile);

/** The package the tests install, upgrade and import from a notebook. */
export const PACKAGE_NAME = 'wtdemo';

// Writes `<name>-<version>-py3-none-any.whl` into <outdir> with a RECORD.
const WHEEL_WRITER = `
import base64, hashlib, sys, zipfile
from pathlib import Path
name, version, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f'"""West Tek UI-test package."""\\n__version__ = "{version}"\\n',
    f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: westtek-ui-tests\\n"
    "Root-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
wheel = out / f"{name}-{version}-py3-none-any.whl"
with zipfile.ZipFile(wheel, "w") as zf:
    for path, text in files.items():
        zf.writestr(path, text)
    zf.writestr(f"{dist}/RECORD", "\\n".join(record) + "\\n")
print(wheel)
`;

/**
 * Create `<dir>/venv` (no pip inside: tiny and quick to capture) with
 * `wtdemo` at `version`, and the wheels of the given versions in
 * `<dir>/wheels`.
 *
 * @returns {{python: string, install: (version: string) => Promise<void>}}
 */
export async function makeThrowawayEnv(dir, versions, version) {
  const wheels = path.join(dir, 'wheels');
  mkdirSync(wheels, { recursive: true });
  for (const v of versions) {
    await run(PYTHON, ['-c', WHEEL_WRITER, PACKAGE_NAME, v, wheels]);
  }
  const venv = path.join(dir, 'venv');
  await run(PYTHON, ['-m', 'venv', '--without-pip', venv]);
  const python = path.join(venv, 'bin', 'python');
  /** `pip install` a version of wtdemo into the venv, offline. */
  const install = async v => {
    await run(PYTHON, [
      '-m',
      'pip',
      '--python',
      python,
      'install',
      '--quiet',
      '--no-index',
      '--no-deps',
      '--disable-pip-version-check',
      path.join(wheels, `${PACKAGE_NAME}-${v}-py3-none-any.whl`)
    ]);
  };
  await install(version);
  return { python, install };
}

/** Write a notebook at `file` whose one code cell runs `source`. */
export function writeNotebook(file, source) {
  writeFileSync(file, JSON.stringify(notebookOf(source), null, 1));
}

/** What `python -c "import wtdemo; print(wtdemo.__version__)"` prints. */
export async function installedVersion(python) {
  const { stdout } = await run(python, [
    '-c',
    `import ${PACKAGE_NAME}; print(${PACKAGE_NAME}.__version__)`
  ]);
  return stdout.trim();
}
