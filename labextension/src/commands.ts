import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { confirmRollback } from './dialogs';
import { DiffModel } from './diff-model';
import { DiffView } from './diff-view';
import { DriftModel } from './drift-model';
import { valueOf } from './load-state';
import { WestTekSidebar } from './sidebar';
import { SnapshotDetailsView } from './snapshot-details';
import { SnapshotDetailsModel } from './snapshot-details-model';
import { SnapshotsModel } from './snapshots-model';
import { westtekIcon } from './icons';
import { shortId } from './format';

/**
 * Ids of West Tek's commands.
 */
export namespace CommandIDs {
  /**
   * Take a snapshot of the environment now.
   */
  export const snapshotNow = 'westtek:snapshot-now';

  /**
   * Open the West Tek side bar.
   */
  export const openSidebar = 'westtek:open-sidebar';

  /**
   * Open the Drift panel.
   */
  export const showDrift = 'westtek:show-drift';

  /**
   * Snapshot the environment and make it the baseline.
   */
  export const acceptBaseline = 'westtek:accept-baseline';

  /**
   * Roll the environment back to the baseline, after confirming.
   */
  export const rollback = 'westtek:rollback';

  /**
   * Open the diff of two snapshots (args `a`, `b`) in the main area.
   */
  export const openDiff = 'westtek:open-diff';

  /**
   * Open a snapshot's details (arg `id`) in the main area.
   */
  export const openSnapshot = 'westtek:open-snapshot';
}

/**
 * What the commands act on.
 */
export interface ICommandContext {
  /**
   * The application.
   */
  app: JupyterFrontEnd;

  /**
   * The side bar.
   */
  sidebar: WestTekSidebar;

  /**
   * The snapshots.
   */
  snapshots: SnapshotsModel;

  /**
   * The live drift.
   */
  drift: DriftModel;

  /**
   * Opens a notebook path.
   */
  openNotebook: (path: string) => void;

  /**
   * The command palette, if there is one.
   */
  palette: ICommandPalette | null;

  /**
   * Translation bundle of the `westtek` domain.
   */
  trans: TranslationBundle;
}

/**
 * Add West Tek's commands to the application and its palette.
 *
 * @param context What the commands act on
 */
export function addCommands(context: ICommandContext): void {
  const { app, sidebar, snapshots, drift, trans } = context;
  const { commands, shell } = app;

  const reveal = (panel: 'snapshots' | 'drift') => {
    sidebar.showPanel(panel);
    shell.activateById(sidebar.id);
  };

  commands.addCommand(CommandIDs.openSidebar, {
    describedBy: { args: { type: 'object', properties: {} } },
    label: trans.__('Open West Tek'),
    caption: trans.__('Environment, snapshots and drift of this server'),
    icon: args => (args.isPalette ? undefined : westtekIcon),
    execute: () => {
      shell.activateById(sidebar.id);
    }
  });

  commands.addCommand(CommandIDs.showDrift, {
    describedBy: { args: { type: 'object', properties: {} } },
    label: trans.__('Show Environment Drift'),
    caption: trans.__('Open the West Tek Drift panel'),
    execute: () => reveal('drift')
  });

  commands.addCommand(CommandIDs.snapshotNow, {
    describedBy: {
      args: {
        type: 'object',
        properties: {
          note: { type: 'string', description: 'The snapshot note' }
        }
      }
    },
    label: trans.__('Take a Snapshot Now'),
    caption: trans.__(
      'Capture packages, kernels, configuration, notebooks and data'
    ),
    execute: async args => {
      if (!sidebar.isVisible) {
        reveal('snapshots');
      }
      const note = typeof args.note === 'string' ? args.note : 'Snapshot now';
      await snapshots.create(note);
    }
  });

  commands.addCommand(CommandIDs.acceptBaseline, {
    describedBy: { args: { type: 'object', properties: {} } },
    label: trans.__('Accept Current Environment as Baseline'),
    caption: trans.__(
      'Snapshot the environment as it is and measure drift against it'
    ),
    execute: async () => {
      if (!sidebar.isVisible) {
        reveal('drift');
      }
      await drift.acceptBaseline();
    }
  });

  commands.addCommand(CommandIDs.rollback, {
    describedBy: { args: { type: 'object', properties: {} } },
    label: trans.__('Roll Back Environment to Baseline…'),
    caption: trans.__('Undo the drift, after listing what will change'),
    execute: async () => {
      reveal('drift');
      await drift.refresh();
      const state = valueOf(drift.state);
      if (!state || !state.baseline) {
        drift.setNotice({
          kind: 'error',
          text: trans.__(
            'There is no baseline to roll back to. Accept the current environment as the baseline first.'
          )
        });
        return;
      }
      const preview = await drift.previewRollback();
      if (preview && (await confirmRollback(preview, trans))) {
        await drift.rollback(preview.fingerprint);
      }
    }
  });

  commands.addCommand(CommandIDs.openDiff, {
    describedBy: {
      args: {
        type: 'object',
        properties: {
          a: { type: 'string', description: 'The older snapshot id' },
          b: { type: 'string', description: 'The newer snapshot id' }
        },
        required: ['a', 'b']
      }
    },
    label: args =>
      trans.__(
        'Compare Snapshots %1 and %2',
        shortId(String(args.a ?? '')),
        shortId(String(args.b ?? ''))
      ),
    execute: args => {
      const a = String(args.a ?? '');
      const b = String(args.b ?? '');
      if (!a || !b) {
        return;
      }
      const model = new DiffModel(a, b, (x, y) => snapshots.diff(x, y));
      const content = new DiffView(model, context.openNotebook, trans);
      const widget = new MainAreaWidget({ content });
      widget.id = `westtek-diff-${a.slice(0, 12)}-${b.slice(0, 12)}`;
      widget.title.label = trans.__(
        'Diff %1 → %2',
        shortId(a).slice(0, 8),
        shortId(b).slice(0, 8)
      );
      widget.title.icon = westtekIcon;
      widget.title.closable = true;
      widget.disposed.connect(() => model.dispose());
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      void model.load();
    }
  });

  commands.addCommand(CommandIDs.openSnapshot, {
    describedBy: {
      args: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'The snapshot id' }
        },
        required: ['id']
      }
    },
    label: args => trans.__('Show Snapshot %1', shortId(String(args.id ?? ''))),
    execute: args => {
      const id = String(args.id ?? '');
      if (!id) {
        return;
      }
      const widgetId = `westtek-snapshot-${id.slice(0, 12)}`;
      // One tab per snapshot: opening it again shows the tab already open.
      for (const widget of shell.widgets('main')) {
        if (widget.id === widgetId) {
          shell.activateById(widgetId);
          return;
        }
      }
      const model = new SnapshotDetailsModel(id, x => snapshots.manifest(x));
      const content = new SnapshotDetailsView(model, trans);
      const widget = new MainAreaWidget({ content });
      widget.id = widgetId;
      widget.title.label = trans.__('Snapshot %1', shortId(id).slice(0, 8));
      widget.title.caption = trans.__('Snapshot %1', id);
      widget.title.icon = westtekIcon;
      widget.title.closable = true;
      widget.disposed.connect(() => model.dispose());
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      void model.load();
    }
  });

  if (context.palette) {
    const category = trans.__('West Tek');
    for (const command of [
      CommandIDs.openSidebar,
      CommandIDs.showDrift,
      CommandIDs.snapshotNow,
      CommandIDs.acceptBaseline,
      CommandIDs.rollback
    ]) {
      context.palette.addItem({ command, category });
    }
  }
}
