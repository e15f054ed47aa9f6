import { Tab, TabPanel, Tabs } from '@jupyter/react-components';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  Button,
  ReactWidget,
  refreshIcon,
  VDomModel
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { ChatModel, ICitation } from './chat-model';
import { ChatPanel } from './chat-panel';
import { DriftBadge, useModel } from './components';
import { DriftModel } from './drift-model';
import { DriftPanel, IDriftActions } from './drift-panel';
import { EnvironmentModel } from './environment-model';
import { EnvironmentPanel } from './environment-panel';
import { SnapshotsModel } from './snapshots-model';
import { SnapshotsPanel } from './snapshots-panel';
import { StatusModel } from './status-model';

/**
 * A loaded panel is fetched again on opening when older than this.
 */
const STALE_AFTER_MS = 30_000;

/**
 * The panels of the West Tek side bar.
 */
export type PanelName = 'environment' | 'snapshots' | 'drift' | 'chat';

/**
 * The panels in tab order.
 */
export const PANELS: readonly PanelName[] = [
  'environment',
  'snapshots',
  'drift',
  'chat'
];

/**
 * Which panel the side bar shows; emits `stateChanged` when it changes.
 */
export class PanelSelection extends VDomModel {
  /**
   * The panel shown.
   */
  get current(): PanelName {
    return this._current;
  }
  set current(panel: PanelName) {
    if (panel !== this._current) {
      this._current = panel;
      this.stateChanged.emit();
    }
  }

  private _current: PanelName = 'environment';
}

/**
 * The "West Tek" side bar: a header with the live drift grade and Refresh,
 * then four tabs — Environment, Snapshots, Drift and Chat.
 */
export class WestTekSidebar extends ReactWidget {
  /**
   * Create the side bar over the page's models.
   *
   * @param options Models, actions and translation
   */
  constructor(options: WestTekSidebar.IOptions) {
    super();
    this._options = options;
    this.addClass('jp-WestTek-sidebar');
  }

  /**
   * Which panel is shown.
   */
  readonly selection = new PanelSelection();

  /**
   * Switch to a panel and load it.
   */
  showPanel(panel: PanelName): void {
    this.selection.current = panel;
    this._loadPanel(panel, false);
  }

  /**
   * Fetch the status and the shown panel again.
   */
  refresh(): void {
    void this._options.status.refresh();
    this._loadPanel(this.selection.current, true);
  }

  /**
   * Load the status, and the shown panel unless it is loaded already (its
   * models follow drift events and jobs), each time the side bar is opened.
   */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._options.status.refresh();
    this._loadPanel(this.selection.current, false);
  }

  /**
   * Load when attached already open (restored layout).
   */
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this._options.status.refresh();
      this._loadPanel(this.selection.current, false);
    }
  }

  /**
   * Render the header and the tabs.
   */
  protected render(): JSX.Element {
    return (
      <SidebarView
        {...this._options}
        selection={this.selection}
        onSelect={panel => this.showPanel(panel)}
        onRefresh={() => this.refresh()}
      />
    );
  }

  private _loadPanel(panel: PanelName, force: boolean): void {
    const { environment, snapshots, drift } = this._options;
    // Shown at once from what is loaded; fetched again when older than this.
    const stale = Date.now() - STALE_AFTER_MS;
    switch (panel) {
      case 'environment':
        if (
          force ||
          environment.state.kind === 'idle' ||
          (environment.state.kind !== 'loading' && environment.loadedAt < stale)
        ) {
          void environment.refresh();
        }
        break;
      case 'snapshots':
        if (
          force ||
          snapshots.state.kind === 'idle' ||
          (snapshots.state.kind !== 'loading' && snapshots.loadedAt < stale)
        ) {
          void snapshots.refresh();
        }
        break;
      case 'drift':
        drift.start();
        if (force) {
          void drift.refresh();
        }
        break;
      case 'chat':
        void this._options.chat.loadConversations();
        break;
    }
  }

  private _options: WestTekSidebar.IOptions;
}

/**
 * The namespace for `WestTekSidebar` statics.
 */
export namespace WestTekSidebar {
  /**
   * What the side bar shows and does.
   */
  export interface IOptions {
    /**
     * The server extension's status.
     */
    status: StatusModel;

    /**
     * The Environment panel's model.
     */
    environment: EnvironmentModel;

    /**
     * The Snapshots panel's model.
     */
    snapshots: SnapshotsModel;

    /**
     * The Drift panel's model.
     */
    drift: DriftModel;

    /**
     * The Drift panel's actions.
     */
    actions: IDriftActions;

    /**
     * The Chat panel's model.
     */
    chat: ChatModel;

    /**
     * Opens what an agent's citation points at.
     */
    openCitation: (citation: ICitation) => void;

    /**
     * Opens a notebook path in the main area.
     */
    openNotebook: (path: string) => void;

    /**
     * Opens the diff of two snapshots in the main area.
     */
    openDiff: (a: string, b: string) => void;

    /**
     * Opens a snapshot's details in the main area.
     */
    openSnapshot: (id: string) => void;

    /**
     * Translation bundle of the `westtek` domain.
     */
    trans: TranslationBundle;
  }
}

/**
 * The side bar's React tree.
 */
function SidebarView(
  props: WestTekSidebar.IOptions & {
    selection: PanelSelection;
    onSelect: (panel: PanelName) => void;
    onRefresh: () => void;
  }
): JSX.Element {
  const { trans } = props;
  const status = useModel(props.status).state;
  const selection = useModel(props.selection);
  // A panel is rendered from its first visit on (then kept, with its inputs).
  const visited = React.useRef(new Set<PanelName>()).current;
  visited.add(selection.current);
  const drift = useModel(props.drift).summary;
  const titles: { [P in PanelName]: string } = {
    environment: trans.__('Environment'),
    snapshots: trans.__('Snapshots'),
    drift: trans.__('Drift'),
    chat: trans.__('Chat')
  };
  return (
    <>
      <header className="jp-WestTek-header">
        <h2 className="jp-WestTek-title">{trans.__('West Tek')}</h2>
        {drift.status && (
          <DriftBadge
            status={drift.status}
            trans={trans}
            testId="westtek-header-drift"
          />
        )}
        <Button
          className="jp-WestTek-refresh"
          minimal
          small
          aria-label={trans.__('Refresh')}
          title={trans.__('Refresh: reload the West Tek status and this panel')}
          disabled={status.kind === 'loading'}
          onClick={props.onRefresh}
        >
          <refreshIcon.react tag="span" className="jp-WestTek-refreshIcon" />
        </Button>
      </header>
      {status.kind === 'error' ? (
        <div className="jp-WestTek-body">
          <p
            className="jp-WestTek-error"
            role="alert"
            data-testid="westtek-error"
          >
            {status.message}
          </p>
        </div>
      ) : (
        <Tabs
          className="jp-WestTek-tabs"
          activeid={`westtek-tab-${selection.current}`}
          onChange={(event: CustomEvent) => {
            // Changes of inputs inside the panels bubble up here too.
            if (event.target !== event.currentTarget) {
              return;
            }
            const id = (event.detail as HTMLElement | undefined)?.id ?? '';
            const panel = PANELS.find(p => id === `westtek-tab-${p}`);
            if (panel && panel !== selection.current) {
              props.onSelect(panel);
            }
          }}
        >
          {PANELS.map(panel => (
            <Tab
              key={panel}
              id={`westtek-tab-${panel}`}
              data-testid={`westtek-tab-${panel}`}
            >
              {titles[panel]}
              {panel === 'drift' && drift.serious > 0 && (
                <span
                  className={`jp-WestTek-tabCount jp-WestTek-mod-${drift.worst}`}
                  data-testid="westtek-tab-drift-count"
                  title={trans.__('Minor and critical changes')}
                >
                  {drift.serious}
                </span>
              )}
            </Tab>
          ))}
          <TabPanel id="westtek-panel-environment">
            {visited.has('environment') && (
              <EnvironmentPanel
                model={props.environment}
                status={props.status}
                drift={props.drift}
                openNotebook={props.openNotebook}
                trans={trans}
              />
            )}
          </TabPanel>
          <TabPanel id="westtek-panel-snapshots">
            {visited.has('snapshots') && (
              <SnapshotsPanel
                model={props.snapshots}
                openDiff={props.openDiff}
                openSnapshot={props.openSnapshot}
                trans={trans}
              />
            )}
          </TabPanel>
          <TabPanel id="westtek-panel-drift">
            {visited.has('drift') && (
              <DriftPanel
                model={props.drift}
                actions={props.actions}
                openNotebook={props.openNotebook}
                trans={trans}
              />
            )}
          </TabPanel>
          <TabPanel id="westtek-panel-chat">
            {visited.has('chat') && (
              <ChatPanel
                model={props.chat}
                openCitation={props.openCitation}
                trans={trans}
              />
            )}
          </TabPanel>
        </Tabs>
      )}
    </>
  );
}
