import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import React from 'react';

import { SEVERITIES } from './drift-model';
import {
  describeChange,
  severityClass,
  severityLabel,
  shortId
} from './format';
import { IChange, IRestoreRequest, RestoreMode } from './tokens';

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
 * Kinds of change a rollback puts right (packages, kernels, configuration);
 * notebooks, data and lab extensions stay as they are.
 */
export const ROLLBACK_KINDS: ReadonlySet<IChange['kind']> = new Set<
  IChange['kind']
>(['interpreter', 'package', 'kernel', 'config']);

/**
 * The changes a rollback undoes, grouped by severity, and what it leaves.
 */
export function RollbackSummary(props: {
  changes: readonly IChange[];
  baseline: string | null | undefined;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  const changes = props.changes.filter(change =>
    ROLLBACK_KINDS.has(change.kind)
  );
  const kept = props.changes.length - changes.length;
  return (
    <div
      className="jp-WestTek-rollbackSummary"
      data-testid="westtek-rollback-summary"
    >
      {changes.length ? (
        <p>
          {trans._n(
            'Rolling back to baseline %2 undoes this change in place:',
            'Rolling back to baseline %2 undoes these %1 changes in place:',
            changes.length,
            shortId(props.baseline)
          )}
        </p>
      ) : (
        <p>
          {trans.__(
            'Packages, kernels and configuration match baseline %1: a rollback changes nothing.',
            shortId(props.baseline)
          )}
        </p>
      )}
      {SEVERITIES.map(severity => {
        const group = changes.filter(change => change.severity === severity);
        if (!group.length) {
          return null;
        }
        return (
          <div key={severity}>
            <h4 className={`jp-WestTek-groupTitle ${severityClass(severity)}`}>
              {severityLabel(severity, trans)} ({group.length})
            </h4>
            <ul className="jp-WestTek-changeList">
              {group.map((change, index) => (
                <li key={index} className={severityClass(change.severity)}>
                  {undoText(change, trans)}
                </li>
              ))}
            </ul>
          </div>
        );
      })}
      {kept > 0 && (
        <p className="jp-WestTek-muted" data-testid="westtek-rollback-kept">
          {trans._n(
            '%1 change to notebooks, data or lab extensions stays as it is.',
            '%1 changes to notebooks, data or lab extensions stay as they are.',
            kept
          )}
        </p>
      )}
      <p className="jp-WestTek-muted">
        {trans.__(
          'A safety snapshot of the environment as it is now is taken first, so the rollback can be undone.'
        )}
      </p>
    </div>
  );
}

/**
 * What undoing a change does, in words.
 */
function undoText(change: IChange, trans: TranslationBundle): string {
  const what = `${change.kind} ${change.name}`;
  switch (change.change) {
    case 'added':
      return trans.__('remove %1 %2', what, change.after ?? '');
    case 'removed':
      return trans.__('reinstall %1 %2', what, change.before ?? '');
    case 'upgraded':
    case 'downgraded':
      return trans.__(
        '%1: %2 back to %3',
        what,
        change.after ?? '?',
        change.before ?? '?'
      );
    default:
      return trans.__('restore %1 (%2)', what, describeChange(change));
  }
}

/**
 * Ask before rolling the environment back, listing what will change.
 *
 * @returns Whether the researcher confirmed
 */
export async function confirmRollback(
  changes: readonly IChange[],
  baseline: string | null | undefined,
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Roll back to the baseline?'),
    body: (
      <RollbackSummary changes={changes} baseline={baseline} trans={trans} />
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: trans.__('Roll back') })
    ]
  });
  return result.button.accept;
}
