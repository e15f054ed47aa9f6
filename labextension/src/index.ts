import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { westtekIcon } from './icons';
// The side-bar tab must exist as soon as the application starts.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { WestTekSidebar } from './sidebar';
import { StatusModel } from './status-model';

/**
 * DOM id of the West Tek side panel, also its key in the layout restorer.
 */
export const SIDEBAR_ID = 'westtek-sidebar';

/**
 * Adds the West Tek status panel to the left side bar.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'westtek-labextension:plugin',
  description: 'West Tek Environment Preservation side panel.',
  autoStart: true,
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('westtek');
    const model = new StatusModel({
      serverSettings: app.serviceManager.serverSettings,
      trans
    });
    const widget = new WestTekSidebar(model, trans);
    widget.id = SIDEBAR_ID;
    widget.title.icon = westtekIcon;
    widget.title.caption = trans.__('West Tek');
    app.shell.add(widget, 'left', { rank: 1000 });
    restorer?.add(widget, SIDEBAR_ID);
  }
};

export default plugin;
