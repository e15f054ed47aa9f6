import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

/* eslint-disable jupyter/prefer-lazy-imports --
 * Activation builds the models at once: the status bar item and the drift
 * notifications follow the drift from the start, and the side-bar tab must
 * exist as soon as the application starts. */
import { WestTekClient } from './api-client';
import { ChatModel, citationTarget, ICitation } from './chat-model';
import {
  openNotebookAt,
  showManifestLine,
  showPreservedCell
} from './chat-panel';
import { addCommands, CommandIDs } from './commands';
import { DriftModel } from './drift-model';
import { EnvironmentModel } from './environment-model';
import { westtekIcon } from './icons';
import { JobsModel } from './jobs-model';
import { DriftNotifier } from './notifier';
import { WestTekSidebar } from './sidebar';
import { SnapshotsModel } from './snapshots-model';
import { DriftStatusItem } from './status-bar';
import { StatusModel } from './status-model';
import { IWestTekSettings, NotificationLevel } from './tokens';
/* eslint-enable jupyter/prefer-lazy-imports */

/**
 * DOM id of the West Tek side panel, also its key in the layout restorer.
 */
export const SIDEBAR_ID = 'westtek-sidebar';

/**
 * The query parameter naming a page to open rendered when JupyterLab starts
 * (`START_PAGE_PARAMETER` of westtek_core/kb/take_over.py).
 */
export const START_PAGE_PARAMETER = 'westtek-start-page';

/**
 * Id of the plugin, also the id of its settings (schema/plugin.json).
 */
export const PLUGIN_ID = 'westtek-labextension:plugin';

/**
 * The settings used until (or when) the registry has none.
 */
const DEFAULT_SETTINGS: IWestTekSettings = {
  pollInterval: 30,
  notificationLevel: 'critical'
};

/**
 * Adds the West Tek side bar (Environment · Snapshots · Drift · Chat), the drift
 * item of the status bar, drift notifications and the West Tek commands.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'West Tek Environment Preservation: environment, snapshots and drift.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ITranslator,
    ISettingRegistry,
    IStatusBar,
    ICommandPalette,
    ILabShell
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    labShell: ILabShell | null
  ) => {
    const trans = (translator ?? nullTranslator).load('westtek');
    const serverSettings = app.serviceManager.serverSettings;
    const client = new WestTekClient(serverSettings);

    const status = new StatusModel({ serverSettings, trans });
    const jobs = new JobsModel(client);
    const environment = new EnvironmentModel(client);
    const snapshots = new SnapshotsModel(client, jobs);
    const drift = new DriftModel({
      client,
      jobs,
      pollInterval: DEFAULT_SETTINGS.pollInterval,
      webSocket: serverSettings.WebSocket
    });
    // a snapshot taken anywhere (another tab, the CLI's server job, the hub) is listed
    drift.snapshotTaken.connect(() => void snapshots.refresh());

    const openNotebook = (path: string) => {
      void app.commands.execute('docmanager:open', { path });
    };

    const chat = new ChatModel(serverSettings);
    const openCitation = (citation: ICitation) => {
      const target = citationTarget(citation);
      switch (target.kind) {
        case 'notebook':
          void openNotebookAt(app, target.path, target.cell);
          break;
        case 'preserved':
          void showPreservedCell(client, target, trans);
          break;
        case 'file':
          void app.commands.execute('docmanager:open', { path: target.path });
          break;
        case 'snapshot':
          void showManifestLine(client, target.id, target.line, trans);
          break;
        case 'drift':
          sidebar.showPanel('drift');
          break;
      }
    };

    const sidebar = new WestTekSidebar({
      status,
      environment,
      snapshots,
      drift,
      chat,
      openCitation,
      actions: {
        snapshotNow: () => void app.commands.execute(CommandIDs.snapshotNow),
        acceptBaseline: () =>
          void app.commands.execute(CommandIDs.acceptBaseline),
        rollback: () => void app.commands.execute(CommandIDs.rollback),
        why: (event, change) => {
          sidebar.showPanel('chat');
          void chat.askNew(
            'drift',
            trans.__(
              'Why did drift event %1 happen (%2 %3), and is it risky for my notebooks?',
              event.id,
              change.name,
              change.change
            )
          );
        }
      },
      openNotebook,
      openDiff: (a, b) =>
        void app.commands.execute(CommandIDs.openDiff, { a, b }),
      openSnapshot: id =>
        void app.commands.execute(CommandIDs.openSnapshot, { id }),
      trans
    });
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = westtekIcon;
    // The tab says what it is, not only an icon to guess.
    sidebar.title.label = trans.__('West Tek');
    sidebar.title.caption = trans.__(
      'West Tek: environment, snapshots and drift'
    );
    app.shell.add(sidebar, 'left', { rank: 1000 });
    restorer?.add(sidebar, SIDEBAR_ID);
    // Someone meeting JupyterLab (a fresh layout) finds West Tek open; a
    // saved layout stays as its owner left it.
    void labShell?.restored.then(layout => {
      if (layout.fresh) {
        // After the file browser, which opens itself on a fresh layout too.
        setTimeout(() => labShell.activateById(sidebar.id), 0);
      }
    });

    addCommands({
      app,
      sidebar,
      snapshots,
      drift,
      openNotebook,
      palette,
      trans
    });

    const notifier = new DriftNotifier({
      model: drift,
      level: DEFAULT_SETTINGS.notificationLevel,
      showDrift: () => void app.commands.execute(CommandIDs.showDrift),
      rollback: () => void app.commands.execute(CommandIDs.rollback),
      trans
    });

    // The package table follows the drift: refetch shortly after events.
    let environmentTimer: ReturnType<typeof setTimeout> | undefined;
    const refetchEnvironment = () => {
      clearTimeout(environmentTimer);
      environmentTimer = setTimeout(() => {
        if (environment.state.kind !== 'idle') {
          void environment.refresh();
        }
      }, 1000);
    };
    drift.eventReceived.connect(refetchEnvironment);
    jobs.finished.connect((_, job) => {
      if (job.kind === 'rollback') {
        refetchEnvironment();
      }
    });

    if (statusBar) {
      statusBar.registerStatusItem('westtek-labextension:drift-status', {
        item: new DriftStatusItem(
          drift,
          () => void app.commands.execute(CommandIDs.showDrift),
          trans
        ),
        align: 'left',
        rank: 100
      });
    }

    const applySettings = (settings: ISettingRegistry.ISettings) => {
      const composite = settings.composite as Partial<IWestTekSettings>;
      drift.pollInterval = Number(
        composite.pollInterval ?? DEFAULT_SETTINGS.pollInterval
      );
      notifier.level = (composite.notificationLevel ??
        DEFAULT_SETTINGS.notificationLevel) as NotificationLevel;
    };

    // Drift is watched from the start: for the status bar and notifications.
    void app.restored.then(async () => {
      if (settingRegistry) {
        try {
          const settings = await settingRegistry.load(PLUGIN_ID);
          applySettings(settings);
          settings.changed.connect(applySettings);
        } catch (error) {
          console.warn('West Tek: could not load the settings', error);
        }
      }
      void jobs.resume();
      // a take-over's start page (the server's /westtek/start-here), rendered
      const startPage = new URLSearchParams(window.location.search).get(
        START_PAGE_PARAMETER
      );
      if (startPage) {
        void app.commands.execute('docmanager:open', {
          path: startPage,
          factory: 'Markdown Preview'
        });
      }
      drift.start();
      // Fetched ahead so the side bar shows the environment as soon as it opens.
      if (environment.state.kind === 'idle') {
        void environment.refresh();
      }
    });
  }
};

export default plugin;
