import { TranslationBundle } from '@jupyterlab/translation';
import { Table, VDomRenderer } from '@jupyterlab/ui-components';
import React from 'react';

import { InterpreterList, LoadFrame, Section } from './components';
import { SearchableTable } from './searchable-table';
import { formatBytes, formatTime, shortId } from './format';
import {
  ISnapshotDetails,
  ISnapshotPackage,
  SnapshotDetailsModel
} from './snapshot-details-model';

/**
 * Package rows past this many are not rendered until the search narrows them.
 */
const MAX_PACKAGE_ROWS = 500;

/**
 * One snapshot in the main area: when and by whom it was taken, its note and
 * labels, sizes and checksum, then what it holds — interpreters and their
 * packages (searchable), kernels, notebooks, configuration, lab extensions —
 * and what it left out or redacted.
 */
export class SnapshotDetailsView extends VDomRenderer<SnapshotDetailsModel> {
  /**
   * Create the view over a details model.
   *
   * @param model The snapshot's details
   * @param trans Translation bundle of the `westtek` domain
   */
  constructor(model: SnapshotDetailsModel, trans: TranslationBundle) {
    super(model);
    this._trans = trans;
    this.addClass('jp-WestTek-details');
  }

  /**
   * Render the heading and the details.
   */
  protected render(): JSX.Element {
    const trans = this._trans;
    const model = this.model;
    return (
      <div
        className="jp-WestTek-detailsBody"
        data-testid="westtek-snapshot-details-view"
      >
        <h2 className="jp-WestTek-diffTitle">
          {trans.__('Snapshot %1', shortId(model.id))}
        </h2>
        <LoadFrame
          state={model.state}
          loadingText={trans.__('Reading the snapshot…')}
          onRetry={() => void model.load()}
          trans={trans}
        >
          {details => this._renderDetails(details)}
        </LoadFrame>
      </div>
    );
  }

  private _renderDetails(details: ISnapshotDetails): JSX.Element {
    const trans = this._trans;
    const labels = Object.entries(details.labels);
    return (
      <>
        <dl className="jp-WestTek-facts" data-testid="westtek-details-facts">
          <dt>{trans.__('Id')}</dt>
          <dd>{details.id}</dd>
          <dt>{trans.__('Taken')}</dt>
          <dd>
            {formatTime(details.timestamp)}
            {details.createdBy && ` · ${details.createdBy}`}
          </dd>
          <dt>{trans.__('Note')}</dt>
          <dd data-testid="westtek-details-note">{details.notes || '—'}</dd>
          {labels.length > 0 && (
            <>
              <dt>{trans.__('Labels')}</dt>
              <dd>
                {labels.map(([key, value]) => `${key}=${value}`).join(', ')}
              </dd>
            </>
          )}
          <dt>{trans.__('Size')}</dt>
          <dd>
            {formatBytes(details.sizeBytes)}
            {details.storedBytes !== null &&
              ' · ' +
                trans.__(
                  '%1 new in the store',
                  formatBytes(details.storedBytes)
                )}
          </dd>
          <dt>{trans.__('Workspace')}</dt>
          <dd>
            {trans._n('%1 file', '%1 files', details.workspace.files)}
            {` · ${formatBytes(details.workspace.bytes)}`}
          </dd>
          <dt>{trans.__('Environment')}</dt>
          <dd>{details.environmentId ?? '—'}</dd>
          {details.jupyterVersion && (
            <>
              <dt>{trans.__('Jupyter')}</dt>
              <dd>{details.jupyterVersion}</dd>
            </>
          )}
          {details.containerImage && (
            <>
              <dt>{trans.__('Container image')}</dt>
              <dd>{details.containerImage}</dd>
            </>
          )}
          <dt>{trans.__('Checksum')}</dt>
          <dd>{details.checksum ?? '—'}</dd>
        </dl>

        <Section
          title={trans.__('Interpreters')}
          count={details.interpreters.length}
          testId="westtek-details-interpreters"
        >
          <InterpreterList interpreters={details.interpreters} trans={trans} />
        </Section>

        <Section
          title={trans.__('Packages')}
          count={details.packages.length}
          testId="westtek-details-packages"
        >
          {this._renderPackages(details)}
        </Section>

        <Section
          title={trans.__('Kernels')}
          count={details.kernels.length}
          testId="westtek-details-kernels"
        >
          <ul className="jp-WestTek-list">
            {details.kernels.map(kernel => (
              <li key={kernel.name}>
                <div className="jp-WestTek-itemTitle">
                  {kernel.displayName}
                  <span className="jp-WestTek-muted">{kernel.name}</span>
                  {kernel.interpreter && (
                    <span className="jp-WestTek-tag">{kernel.interpreter}</span>
                  )}
                </div>
              </li>
            ))}
          </ul>
        </Section>

        <Section
          title={trans.__('Notebooks')}
          count={details.notebooks.length}
          testId="westtek-details-notebooks"
        >
          <PathList paths={details.notebooks} trans={trans} />
        </Section>

        <Section
          title={trans.__('Configuration files')}
          count={details.configFiles.length}
          open={false}
          testId="westtek-details-config"
        >
          <PathList paths={details.configFiles} trans={trans} />
        </Section>

        <Section
          title={trans.__('Lab extensions')}
          count={details.labextensions.length}
          open={false}
          testId="westtek-details-labextensions"
        >
          <PathList
            paths={details.labextensions.map(extension =>
              extension.version
                ? `${extension.name} ${extension.version}`
                : extension.name
            )}
            trans={trans}
          />
        </Section>

        {details.secrets.length > 0 && (
          <Section
            title={trans.__('Secrets')}
            count={details.secrets.length}
            open={false}
            testId="westtek-details-secrets"
          >
            <PathList
              paths={details.secrets.map(
                secret => `${secret.path} (${secret.action})`
              )}
              trans={trans}
            />
          </Section>
        )}

        {details.warnings.length + details.skipped.length > 0 && (
          <Section
            title={trans.__('Left out')}
            count={details.warnings.length + details.skipped.length}
            open={false}
            testId="westtek-details-skipped"
          >
            <PathList
              paths={[
                ...details.warnings,
                ...details.skipped.map(
                  skip => `${skip.path}: ${skip.reason || skip.area}`
                )
              ]}
              trans={trans}
            />
          </Section>
        )}
      </>
    );
  }

  private _renderPackages(details: ISnapshotDetails): JSX.Element {
    const trans = this._trans;
    const model = this.model;
    const columns: Table.IColumn<ISnapshotPackage>[] = [
      {
        id: 'name',
        label: trans.__('Name'),
        renderCell: row => row.name,
        sort: (a, b) => a.name.localeCompare(b.name)
      },
      {
        id: 'version',
        label: trans.__('Version'),
        renderCell: row => <code>{row.version}</code>,
        sort: (a, b) =>
          a.version.localeCompare(b.version, undefined, { numeric: true })
      },
      {
        id: 'installer',
        label: trans.__('Installer'),
        renderCell: row => row.installer ?? '—',
        sort: (a, b) => (a.installer ?? '').localeCompare(b.installer ?? '')
      },
      {
        id: 'interpreter',
        label: trans.__('Interpreter'),
        renderCell: row => row.interpreter,
        sort: (a, b) => a.interpreter.localeCompare(b.interpreter),
        isHidden: details.interpreters.length < 2
      }
    ];
    return (
      <SearchableTable<ISnapshotPackage>
        rows={model.packages}
        total={details.packages.length}
        filter={model.filter}
        setFilter={filter => {
          model.filter = filter;
        }}
        columns={columns}
        maxRows={MAX_PACKAGE_ROWS}
        placeholder={trans.__('Search packages, versions…')}
        searchTestId="westtek-details-search"
        tableTestId="westtek-details-package-table"
        tableClassName="jp-WestTek-detailsTable"
        trans={trans}
      />
    );
  }

  private _trans: TranslationBundle;
}

/**
 * Paths (or short lines) in a list, or a dash when there are none.
 */
function PathList(props: {
  paths: readonly string[];
  trans: TranslationBundle;
}): JSX.Element {
  if (!props.paths.length) {
    return <p className="jp-WestTek-empty">{props.trans.__('None.')}</p>;
  }
  return (
    <ul className="jp-WestTek-list">
      {props.paths.map((path, index) => (
        <li key={`${index}-${path}`}>
          <code className="jp-WestTek-path">{path}</code>
        </li>
      ))}
    </ul>
  );
}
