import { TranslationBundle } from '@jupyterlab/translation';
import { Table } from '@jupyterlab/ui-components';
import React, { useMemo, useState } from 'react';

import {
  DriftBadge,
  InterpreterList,
  LoadFrame,
  Section,
  useModel
} from './components';
import { DriftModel } from './drift-model';
import {
  EnvironmentModel,
  IPackageRow,
  packageRows
} from './environment-model';
import { SearchableTable } from './searchable-table';
import { formatBytes, shortId } from './format';
import { StatusModel } from './status-model';
import { DriftStatus, IEnvironmentView } from './tokens';

/**
 * Rows past this many are not rendered until the search narrows them.
 */
const MAX_PACKAGE_ROWS = 400;

/**
 * The Environment panel: drift badge, interpreters, kernels, a searchable
 * package table, configuration files, lab extensions and the server's facts.
 */
export function EnvironmentPanel(props: {
  model: EnvironmentModel;
  status: StatusModel;
  drift: DriftModel;
  openNotebook: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const model = useModel(props.model);
  // The grade as every view shows it; the view's own until drift is known.
  const grade = useModel(props.drift).summary.status;
  const { trans } = props;
  return (
    <div className="jp-WestTek-panel" data-testid="westtek-environment">
      <LoadFrame
        state={model.state}
        loadingText={trans.__('Reading the environment…')}
        onRetry={() => void model.refresh()}
        trans={trans}
      >
        {view => (
          <EnvironmentView
            view={view}
            drift={grade ?? view.drift}
            openNotebook={props.openNotebook}
            trans={trans}
          />
        )}
      </LoadFrame>
      <ServerFacts model={props.status} trans={trans} />
    </div>
  );
}

/**
 * The loaded environment.
 */
function EnvironmentView(props: {
  view: IEnvironmentView;
  drift: DriftStatus;
  openNotebook: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { view, trans } = props;
  const packageCount = view.interpreters.reduce(
    (sum, interpreter) => sum + interpreter.packages.length,
    0
  );
  return (
    <>
      <div className="jp-WestTek-summary">
        <DriftBadge status={props.drift} trans={trans} />
        <span className="jp-WestTek-muted" title={trans.__('Environment id')}>
          {shortId(view.environment_id)}
        </span>
      </div>
      <Section
        title={trans.__('Interpreters')}
        count={view.interpreters.length}
        testId="westtek-interpreters"
      >
        <InterpreterList
          interpreters={view.interpreters.map(interpreter => ({
            ...interpreter,
            packages: interpreter.packages.length
          }))}
          trans={trans}
        />
      </Section>
      <Section
        title={trans.__('Kernels')}
        count={view.kernels.length}
        testId="westtek-kernels"
      >
        {view.kernels.length ? (
          <ul className="jp-WestTek-list">
            {view.kernels.map(kernel => (
              <li key={kernel.name}>
                <div className="jp-WestTek-itemTitle">
                  {kernel.display_name}
                  <span className="jp-WestTek-muted">{kernel.name}</span>
                </div>
                <div className="jp-WestTek-muted">
                  {[kernel.language, kernel.interpreter]
                    .filter(Boolean)
                    .join(' · ')}
                </div>
              </li>
            ))}
          </ul>
        ) : (
          <p className="jp-WestTek-empty">{trans.__('No kernelspecs.')}</p>
        )}
      </Section>
      <Section
        title={trans.__('Packages')}
        count={packageCount}
        testId="westtek-packages"
      >
        <PackageTable
          view={view}
          openNotebook={props.openNotebook}
          trans={trans}
        />
      </Section>
      <Section
        title={trans.__('Configuration files')}
        count={view.config_files.length}
        open={false}
        testId="westtek-config-files"
      >
        {view.config_files.length ? (
          <ul className="jp-WestTek-list">
            {view.config_files.map(file => (
              <li key={file.path}>
                <code className="jp-WestTek-path">{file.path}</code>
                <span className="jp-WestTek-muted">
                  {formatBytes(file.size)}
                </span>
              </li>
            ))}
          </ul>
        ) : (
          <p className="jp-WestTek-empty">
            {trans.__('No Jupyter configuration files.')}
          </p>
        )}
      </Section>
      <Section
        title={trans.__('Lab extensions')}
        count={view.labextensions.length}
        open={false}
        testId="westtek-labextensions"
      >
        {view.labextensions.length ? (
          <ul className="jp-WestTek-list">
            {view.labextensions.map((extension, index) => (
              <li key={String(extension.name ?? index)}>
                <span className="jp-WestTek-itemTitle">
                  {String(extension.name ?? trans.__('(unnamed)'))}
                </span>
                {extension.version && (
                  <span className="jp-WestTek-muted">
                    {String(extension.version)}
                  </span>
                )}
              </li>
            ))}
          </ul>
        ) : (
          <p className="jp-WestTek-empty">{trans.__('No lab extensions.')}</p>
        )}
      </Section>
    </>
  );
}

/**
 * The package table: a search over every column and sortable headers.
 */
function PackageTable(props: {
  view: IEnvironmentView;
  openNotebook: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { view, trans } = props;
  const [filter, setFilter] = useState('');
  const rows = useMemo(() => packageRows(view, filter), [view, filter]);
  const several = view.interpreters.length > 1;
  const columns: Table.IColumn<IPackageRow>[] = [
    {
      id: 'name',
      label: trans.__('Name'),
      renderCell: row => row.name,
      sort: (a, b) => a.name.localeCompare(b.name)
    },
    {
      id: 'version',
      label: trans.__('Version'),
      // Who installed it (nearly always pip) is a tooltip, not a column: the
      // side bar has room for the name, the version and the notebooks.
      renderCell: row => (
        <code
          title={
            row.installer
              ? trans.__('Installed by %1', row.installer)
              : trans.__('Installer unknown')
          }
        >
          {row.version}
        </code>
      ),
      sort: (a, b) =>
        a.version.localeCompare(b.version, undefined, { numeric: true })
    },
    {
      id: 'interpreter',
      // Short, for the side bar: the rows say env0, env1… as the
      // Interpreters section above does.
      label: trans.__('Env'),
      renderCell: row => row.interpreter,
      sort: (a, b) => a.interpreter.localeCompare(b.interpreter),
      isHidden: !several
    },
    {
      id: 'imported_by',
      label: trans.__('Imported by'),
      renderCell: row =>
        row.imported_by.length ? (
          <span className="jp-WestTek-notebooks">
            {row.imported_by.map(path => (
              <NotebookLink
                key={path}
                path={path}
                open={props.openNotebook}
                trans={trans}
              />
            ))}
          </span>
        ) : (
          <span className="jp-WestTek-muted">—</span>
        ),
      sort: (a, b) => a.imported_by.length - b.imported_by.length
    }
  ];
  return (
    <SearchableTable<IPackageRow>
      rows={rows}
      total={countAll(view)}
      filter={filter}
      setFilter={setFilter}
      columns={columns}
      maxRows={MAX_PACKAGE_ROWS}
      placeholder={trans.__('Search packages, versions, notebooks…')}
      searchTestId="westtek-package-search"
      tableTestId="westtek-package-table"
      tableClassName="jp-WestTek-tableWrap"
      trans={trans}
    />
  );
}

/**
 * A notebook path (relative to the server root) that opens the notebook when
 * clicked.
 */
export function NotebookLink(props: {
  path: string;
  open: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <button
      className="jp-WestTek-link"
      title={props.trans.__('Open %1', props.path)}
      data-testid="westtek-notebook-link"
      onClick={event => {
        event.stopPropagation();
        props.open(props.path);
      }}
    >
      {props.path}
    </button>
  );
}

/**
 * The server extension's version, component, Python and capabilities.
 */
function ServerFacts(props: {
  model: StatusModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const model = useModel(props.model);
  const { trans } = props;
  const state = model.state;
  if (state.kind !== 'ready') {
    return null;
  }
  const { report } = state;
  return (
    <Section title={trans.__('West Tek server')} testId="westtek-server">
      <dl className="jp-WestTek-facts">
        <dt>{trans.__('Version')}</dt>
        <dd data-testid="westtek-version">{report.version}</dd>
        <dt>{trans.__('Component')}</dt>
        <dd data-testid="westtek-component">{report.component}</dd>
        <dt>{trans.__('Python')}</dt>
        <dd data-testid="westtek-python">{report.python}</dd>
      </dl>
      <h3 className="jp-WestTek-subtitle">{trans.__('Capabilities')}</h3>
      <ul
        className="jp-WestTek-capabilities"
        data-testid="westtek-capabilities"
      >
        {report.capabilities.map(capability => (
          <li key={capability}>{capability}</li>
        ))}
      </ul>
    </Section>
  );
}

function countAll(view: IEnvironmentView): number {
  return view.interpreters.reduce((sum, i) => sum + i.packages.length, 0);
}
