import { TranslationBundle } from '@jupyterlab/translation';
import { VDomRenderer } from '@jupyterlab/ui-components';
import React from 'react';

import { DriftModel } from './drift-model';
import { statusClass, statusLabel } from './format';

/**
 * The drift grade in JupyterLab's status bar, coloured like the badge, with
 * the count of minor and critical changes (both from the drift summary, like
 * every other view); clicking it opens the Drift panel.
 */
export class DriftStatusItem extends VDomRenderer<DriftModel> {
  /**
   * Create the item over the drift model.
   *
   * @param model The live drift
   * @param onClick What a click does (show the Drift panel)
   * @param trans Translation bundle of the `westtek` domain
   */
  constructor(
    model: DriftModel,
    onClick: () => void,
    trans: TranslationBundle
  ) {
    super(model);
    this._onClick = onClick;
    this._trans = trans;
    this.addClass('jp-WestTek-statusItem');
  }

  /**
   * Render the dot and the grade.
   */
  protected render(): JSX.Element | null {
    const trans = this._trans;
    const { status, serious: count } = this.model.summary;
    if (!status) {
      return null;
    }
    const title =
      status === 'NO_BASELINE'
        ? trans.__(
            'West Tek: no baseline snapshot yet. Click to open the Drift panel.'
          )
        : trans._n(
            'West Tek: %1 minor or critical change since the baseline. Click to open the Drift panel.',
            'West Tek: %1 minor or critical changes since the baseline. Click to open the Drift panel.',
            count
          );
    return (
      <button
        className={`jp-WestTek-statusButton ${statusClass(status)}`}
        data-testid="westtek-statusbar"
        data-status={status}
        data-count={count}
        title={title}
        onClick={this._onClick}
      >
        <span className="jp-WestTek-badgeDot" aria-hidden="true" />
        {trans.__('West Tek: %1', statusLabel(status, trans))}
        {count > 0 && (
          <span
            className="jp-WestTek-statusCount"
            data-testid="westtek-statusbar-count"
          >
            {count}
          </span>
        )}
      </button>
    );
  }

  private _onClick: () => void;
  private _trans: TranslationBundle;
}
