import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import React from 'react';

import { shortId } from './format';
import {
  IRestoreRequest,
  IRollbackPreview,
  IRollbackStep,
  RestoreMode
} from './tokens';

/**
 * The body of the restore dialog: the target directory and the mode.
 */
export class RestoreForm
  extends Widget
  implements Dialog.IBodyWidget<IRestoreRequest>
{
  /**
   * Create the form with a suggested target directory.
   *
   * @param suggestion The directory proposed in the input
   * @param trans Translation bundle of the `westtek` domain
   */
  constructor(suggestion: string, trans: TranslationBundle) {
    super();
    this.addClass('jp-WestTek-restoreForm');

    const targetLabel = document.createElement('label');
    targetLabel.textContent = trans.__(
      'New or empty directory, relative to the Jupyter root:'
    );
    this._target = document.createElement('input');
    this._target.className = 'jp-mod-styled jp-WestTek-restoreTarget';
    this._target.value = suggestion;
    this._target.setAttribute('data-testid', 'westtek-restore-target');
    targetLabel.appendChild(this._target);

    const modeLabel = document.createElement('label');
    modeLabel.textContent = trans.__('Restore:');
    this._mode = document.createElement('select');
    this._mode.className = 'jp-mod-styled';
    for (const [value, text] of [
      ['files', trans.__('byte-exact files from the store (offline)')],
      ['lock', trans.__('a rebuild from the exported lockfile')]
    ]) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = text;
      this._mode.appendChild(option);
    }
    modeLabel.appendChild(this._mode);

    this.node.append(targetLabel, modeLabel);
  }

  /**
   * The target and mode typed in.
   */
  getValue(): IRestoreRequest {
    return {
      target: this._target.value.trim().replace(/^\/+|\/+$/g, ''),
      mode: this._mode.value as RestoreMode
    };
  }

  /**
   * Focus the target when the dialog opens.
   */
  protected onAfterAttach(): void {
    this._target.focus();
    this._target.select();
  }

  private _mode: HTMLSelectElement;
  private _target: HTMLInputElement;
}

/**
 * Ask where to restore a snapshot.
 *
 * @param id Snapshot id
 * @param trans Translation bundle
 * @returns The request, or null when cancelled or left empty
 */
export async function askRestore(
  id: string,
  trans: TranslationBundle
): Promise<IRestoreRequest | null> {
  const result = await showDialog<IRestoreRequest>({
    title: trans.__('Restore snapshot %1', shortId(id)),
    body: new RestoreForm(`restored-${id.slice(0, 8)}`, trans),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Restore') })
    ],
    focusNodeSelector: 'input'
  });
  if (!result.button.accept || !result.value || !result.value.target) {
    return null;
  }
  return result.value;
}

/**
 * The areas a rollback changes, in the order its steps run.
 */
const ROLLBACK_AREAS: readonly IRollbackStep['area'][] = [
  'packages',
  'kernels',
  'config'
];

/**
 * Every step a rollback will take, by area, as previewed against the live
 * environment: what the dialog lists is exactly what the rollback does.
 */
export function RollbackSummary(props: {
  preview: IRollbackPreview;
  trans: TranslationBundle;
}): JSX.Element {
  const { preview, trans } = props;
  const titles: Record<IRollbackStep['area'], string> = {
    packages: trans.__('Packages'),
    kernels: trans.__('Kernels'),
    config: trans.__('Jupyter configuration')
  };
  return (
    <div
      className="jp-WestTek-rollbackSummary"
      data-testid="westtek-rollback-summary"
    >
      <p>
        {preview.steps.length
          ? trans._n(
              'Rolling back to baseline %2 makes this change in place:',
              'Rolling back to baseline %2 makes these %1 changes in place:',
              preview.steps.length,
              shortId(preview.target)
            )
          : trans.__(
              'Packages, kernels and configuration match baseline %1: a rollback changes nothing.',
              shortId(preview.target)
            )}
      </p>
      {ROLLBACK_AREAS.map(area => {
        const group = preview.steps.filter(step => step.area === area);
        if (!group.length) {
          return null;
        }
        return (
          <div key={area} data-testid={`westtek-rollback-${area}`}>
            <h4 className="jp-WestTek-groupTitle">
              {titles[area]} ({group.length})
            </h4>
            <ul className="jp-WestTek-changeList">
              {group.map(step => (
                <li key={`${step.where}:${step.name}`} title={step.description}>
                  {stepText(step, trans)}
                </li>
              ))}
            </ul>
          </div>
        );
      })}
      {preview.notes.map(note => (
        <p key={note} className="jp-WestTek-muted">
          {note}
        </p>
      ))}
      <p className="jp-WestTek-muted" data-testid="westtek-rollback-kept">
        {trans.__(
          'Notebooks, data and lab extensions are never changed. A safety snapshot of the environment as it is now is taken first, so the rollback can be undone.'
        )}
      </p>
    </div>
  );
}

/**
 * What one step does, in words.
 */
function stepText(step: IRollbackStep, trans: TranslationBundle): string {
  if (step.area !== 'packages') {
    const what =
      step.area === 'kernels' ? step.name : `${step.where}/${step.name}`;
    return trans.__('%1 %2', step.action, what);
  }
  switch (step.action) {
    case 'remove':
      return trans.__('remove %1 %2', step.name, step.before ?? '');
    case 'install':
      return trans.__('reinstall %1 %2', step.name, step.after ?? '');
    case 'replace':
      return trans.__(
        '%1: %2 back to %3',
        step.name,
        step.before ?? '?',
        step.after ?? '?'
      );
    default:
      return trans.__('restore the environment of %1', step.where);
  }
}

/**
 * Ask before rolling the environment back, listing every step it will take.
 *
 * @param preview The rollback's plan against the live environment
 * @param trans Translation bundle of the `westtek` domain
 * @returns Whether the researcher confirmed
 */
export async function confirmRollback(
  preview: IRollbackPreview,
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Roll back to the baseline?'),
    body: <RollbackSummary preview={preview} trans={trans} />,
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: trans.__('Roll back') })
    ]
  });
  return result.button.accept;
}
