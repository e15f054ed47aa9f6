import { TranslationBundle } from '@jupyterlab/translation';
import { Button, refreshIcon, VDomRenderer } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { StatusModel, StatusState } from './status-model';

/**
 * The "West Tek" side panel: the server extension's version, component and
 * capabilities, loaded when the panel is shown and on Refresh.
 */
export class WestTekSidebar extends VDomRenderer<StatusModel> {
  /**
   * Create the panel over a status model.
   *
   * @param model Where the status report comes from
   * @param trans Translation bundle of the `westtek` domain
   */
  constructor(model: StatusModel, trans: TranslationBundle) {
    super(model);
    this._trans = trans;
    this.addClass('jp-WestTek-sidebar');
  }

  /**
   * Load the status each time the panel is opened.
   */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh();
  }

  /**
   * Load the status when the panel is attached already open (restored layout).
   */
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.model.refresh();
    }
  }

  /**
   * Render the heading, the Refresh button and the current state.
   */
  protected render(): JSX.Element {
    const trans = this._trans;
    const state = this.model.state;
    return (
      <>
        <header className="jp-WestTek-header">
          <h2 className="jp-WestTek-title">{trans.__('West Tek')}</h2>
          <Button
            className="jp-WestTek-refresh"
            minimal
            small
            title={trans.__('Reload the West Tek status')}
            disabled={state.kind === 'loading'}
            onClick={() => void this.model.refresh()}
          >
            <refreshIcon.react tag="span" className="jp-WestTek-refreshIcon" />
            {trans.__('Refresh')}
          </Button>
        </header>
        <div className="jp-WestTek-body">{renderState(state, trans)}</div>
      </>
    );
  }

  private _trans: TranslationBundle;
}

/**
 * Render one state of the status report.
 */
function renderState(
  state: StatusState,
  trans: TranslationBundle
): JSX.Element {
  switch (state.kind) {
    case 'idle':
    case 'loading':
      return (
        <p className="jp-WestTek-loading" data-testid="westtek-loading">
          {trans.__('Loading status…')}
        </p>
      );
    case 'error':
      return (
        <p
          className="jp-WestTek-error"
          role="alert"
          data-testid="westtek-error"
        >
          {state.message}
        </p>
      );
    case 'ready': {
      const { report } = state;
      return (
        <>
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
        </>
      );
    }
  }
}
