import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { DriftModel, staleKernelOf, worstSeverity } from './drift-model';
import { describeChange } from './format';
import { valueOf } from './load-state';
import { IChange, IDriftEvent, NotificationLevel, Severity } from './tokens';

/**
 * Whether a drift of some severity is worth a notification at a level.
 *
 * @param severity The worst severity of the drift
 * @param level The user's notification level
 */
export function shouldNotify(
  severity: Severity | null,
  level: NotificationLevel
): boolean {
  switch (level) {
    case 'none':
      return false;
    case 'minor':
      return severity === 'critical' || severity === 'minor';
    case 'critical':
      return severity === 'critical';
  }
}

/**
 * Raises a JupyterLab notification for each drift event (and for a drift
 * already present when the page loads) at or above the user's level.
 */
export class DriftNotifier {
  /**
   * Listen to a drift model.
   *
   * @param options The model, the actions offered and the level
   */
  constructor(options: DriftNotifier.IOptions) {
    this._model = options.model;
    this._trans = options.trans;
    this._showDrift = options.showDrift;
    this._rollback = options.rollback;
    this.level = options.level ?? 'critical';
    this._model.eventReceived.connect(this._onEvent, this);
    this._model.statusChanged.connect(this._onStatus, this);
    this._model.stateChanged.connect(this._onState, this);
  }

  /**
   * The least drift that raises a notification.
   */
  level: NotificationLevel;

  /**
   * Stop listening.
   */
  dispose(): void {
    this._model.eventReceived.disconnect(this._onEvent, this);
    this._model.statusChanged.disconnect(this._onStatus, this);
    this._model.stateChanged.disconnect(this._onState, this);
  }

  private _onEvent(_: DriftModel, event: IDriftEvent): void {
    const severity = worstSeverity(event.changes);
    if (!shouldNotify(severity, this.level)) {
      return;
    }
    const trans = this._trans;
    const first = event.changes.find(change => change.severity === severity);
    if (first?.kind === 'stale_kernel') {
      // Its own remedy: a restart of the kernel, not a rollback.
      const id = this._emit(severity, first.reason, this._restartAction(first));
      this._staleToasts.push({ id, change: first, raisedAt: event.time });
      return;
    }
    const message =
      severity === 'critical'
        ? trans.__('Critical drift: %1', first ? describeChange(first) : '')
        : trans.__('Drift: %1', first ? describeChange(first) : '');
    const more =
      event.changes.length > 1
        ? ' ' + trans.__('(+%1 more)', event.changes.length - 1)
        : '';
    this._emit(severity, message + more);
  }

  private _onStatus(model: DriftModel): void {
    // The same grade and count as the badge and the status bar.
    const { worst, serious } = model.summary;
    if (!shouldNotify(worst, 'minor')) {
      // The drift is gone (rolled back, accepted): so are its notifications.
      for (const id of this._shown) {
        Notification.dismiss(id);
      }
      this._shown = [];
    }
    // Only the drift found on load: later changes arrive as events.
    if (this._seenFirstState) {
      return;
    }
    this._seenFirstState = true;
    if (!shouldNotify(worst, this.level)) {
      return;
    }
    this._emit(
      worst,
      this._trans._n(
        'This environment has drifted from its baseline: %1 minor or critical change.',
        'This environment has drifted from its baseline: %1 minor or critical changes.',
        serious
      )
    );
  }

  /**
   * Close a stale kernel's notification once the kernel no longer runs what
   * was replaced (restarted from the Drift panel, or shut down, even before
   * any state listed it): its "Restart kernel" would do nothing. Only a state
   * checked after the event can tell; an older one (arriving late, or the
   * event applied to the state before it) may not list the kernel yet.
   */
  private _onState(model: DriftModel): void {
    const state = valueOf(model.state);
    if (!state) {
      return;
    }
    this._staleToasts = this._staleToasts.filter(toast => {
      if (
        staleKernelOf(toast.change, state) ||
        state.checked_at <= toast.raisedAt
      ) {
        return true;
      }
      Notification.dismiss(toast.id);
      return false;
    });
  }

  private _restartAction(change: IChange): Notification.IAction {
    return {
      label: this._trans.__('Restart kernel'),
      caption: this._trans.__(
        'Restart the kernel: it then imports what is installed now'
      ),
      callback: () => {
        // The kernel's id comes with the state that follows the event.
        const kernel = staleKernelOf(change, valueOf(this._model.state));
        if (kernel) {
          void this._model.restartKernel(kernel);
        }
      },
      displayType: 'warn'
    };
  }

  private _emit(
    severity: Severity | null,
    message: string,
    remedy?: Notification.IAction
  ): string {
    const trans = this._trans;
    const actions: Notification.IAction[] = [
      {
        label: trans.__('Show drift'),
        caption: trans.__('Open the West Tek Drift panel'),
        callback: () => this._showDrift()
      }
    ];
    if (remedy) {
      actions.push(remedy);
    } else if (severity === 'critical') {
      actions.push({
        label: trans.__('Roll back…'),
        caption: trans.__('Put the environment back to the baseline'),
        callback: () => this._rollback(),
        displayType: 'warn'
      });
    }
    const options = { autoClose: 15_000 as number | false, actions };
    const id =
      severity === 'critical'
        ? Notification.error(message, options)
        : Notification.warning(message, options);
    this._shown.push(id);
    return id;
  }

  private _model: DriftModel;
  private _rollback: () => void;
  private _seenFirstState = false;
  private _shown: string[] = [];
  // open stale-kernel notifications, with the time of the event that raised each
  private _staleToasts: { id: string; change: IChange; raisedAt: number }[] =
    [];
  private _showDrift: () => void;
  private _trans: TranslationBundle;
}

/**
 * The namespace for `DriftNotifier` statics.
 */
export namespace DriftNotifier {
  /**
   * How to build a `DriftNotifier`.
   */
  export interface IOptions {
    /**
     * The live drift.
     */
    model: DriftModel;

    /**
     * Opens the Drift panel.
     */
    showDrift: () => void;

    /**
     * Starts the rollback (with its confirmation).
     */
    rollback: () => void;

    /**
     * The least drift that raises a notification.
     */
    level?: NotificationLevel;

    /**
     * Translation bundle of the `westtek` domain.
     */
    trans: TranslationBundle;
  }
}
