import { TranslationBundle } from '@jupyterlab/translation';
import { VDomRenderer } from '@jupyterlab/ui-components';
import React from 'react';

import { DriftBadge, LoadFrame } from './components';
import { DiffModel, sortChanges } from './diff-model';
import { SEVERITIES } from './drift-model';
import { NotebookLink } from './environment-panel';
import { severityClass, severityLabel, severityWord, shortId } from './format';
import { IDriftReport } from './tokens';

/**
 * Two snapshots side by side: one row per change, the older snapshot's value
 * on the left and the newer one's on the right, coloured by severity.
 */
export class DiffView extends VDomRenderer<DiffModel> {
  /**
   * Create the view over a diff model.
   *
   * @param model The diff to show
   * @param openNotebook Opens a notebook path
   * @param trans Translation bundle of the `westtek` domain
   */
  constructor(
    model: DiffModel,
    openNotebook: (path: string) => void,
    trans: TranslationBundle
  ) {
    super(model);
    this._openNotebook = openNotebook;
    this._trans = trans;
    this.addClass('jp-WestTek-diff');
  }

  /**
   * Render the heading, the severity filters and the table.
   */
  protected render(): JSX.Element {
    const trans = this._trans;
    const model = this.model;
    return (
      <div className="jp-WestTek-diffBody" data-testid="westtek-diff-view">
        <h2 className="jp-WestTek-diffTitle">
          {trans.__('Snapshot %1 → %2', shortId(model.a), shortId(model.b))}
        </h2>
        <LoadFrame
          state={model.state}
          loadingText={trans.__('Comparing the snapshots…')}
          onRetry={() => void model.load()}
          trans={trans}
        >
          {report => this._renderReport(report)}
        </LoadFrame>
      </div>
    );
  }

  private _renderReport(report: IDriftReport): JSX.Element {
    const trans = this._trans;
    const model = this.model;
    const changes = sortChanges(report.changes).filter(change =>
      model.isShown(change.severity)
    );
    return (
      <>
        <div className="jp-WestTek-summary">
          <DriftBadge
            status={report.status}
            trans={trans}
            testId="westtek-diff-status"
          />
          <span className="jp-WestTek-muted">
            {trans._n('%1 change', '%1 changes', report.changes.length)}
          </span>
          {SEVERITIES.map(severity => {
            const n = report.changes.filter(
              c => c.severity === severity
            ).length;
            return (
              <label
                key={severity}
                className={`jp-WestTek-filter ${severityClass(severity)}`}
              >
                <input
                  type="checkbox"
                  checked={model.isShown(severity)}
                  onChange={() => model.toggle(severity)}
                />
                {severityLabel(severity, trans)} ({n})
              </label>
            );
          })}
        </div>
        {report.changes.length === 0 ? (
          <p className="jp-WestTek-empty" data-testid="westtek-diff-empty">
            {trans.__('The two snapshots hold the same environment.')}
          </p>
        ) : (
          <table
            className="jp-WestTek-diffTable"
            data-testid="westtek-diff-table"
          >
            <thead>
              <tr>
                <th>{trans.__('Change')}</th>
                <th>{shortId(model.a)}</th>
                <th>{shortId(model.b)}</th>
              </tr>
            </thead>
            <tbody>
              {changes.map((change, index) => (
                <tr
                  key={index}
                  className={`jp-WestTek-diffRow ${severityClass(change.severity)}`}
                  data-testid="westtek-diff-row"
                  data-severity={change.severity}
                  data-name={change.name}
                >
                  <td>
                    <div className="jp-WestTek-diffName">
                      <span
                        className={`jp-WestTek-tag ${severityClass(change.severity)}`}
                      >
                        {severityWord(change.severity, trans)}
                      </span>
                      <span className="jp-WestTek-muted">{change.kind}</span>{' '}
                      <strong>{change.name}</strong>{' '}
                      <span className="jp-WestTek-muted">{change.change}</span>
                    </div>
                    {change.reason && (
                      <div className="jp-WestTek-reason">{change.reason}</div>
                    )}
                    {change.affected_notebooks.length > 0 && (
                      <div className="jp-WestTek-notebooks">
                        <span className="jp-WestTek-muted">
                          {trans.__('Affects:')}
                        </span>
                        {change.affected_notebooks.map(path => (
                          <NotebookLink
                            key={path}
                            path={path}
                            open={this._openNotebook}
                            trans={trans}
                          />
                        ))}
                      </div>
                    )}
                  </td>
                  <td className="jp-WestTek-before">
                    {change.before ?? (
                      <span className="jp-WestTek-muted">—</span>
                    )}
                  </td>
                  <td className="jp-WestTek-after">
                    {change.after ?? (
                      <span className="jp-WestTek-muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </>
    );
  }

  private _openNotebook: (path: string) => void;
  private _trans: TranslationBundle;
}
