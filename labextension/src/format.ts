/**
 * Pure formatting helpers of the West Tek views.
 */

import { TranslationBundle } from '@jupyterlab/translation';

import { DriftStatus, IChange, JobState, Severity } from './tokens';

/**
 * Bytes in binary units, e.g. `1.5 MiB`.
 */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return '—';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${bytes < 0 ? '-' : ''}${value.toFixed(digits)} ${units[unit]}`;
}

/**
 * A point in time (epoch seconds or ISO 8601) as a short local date and time.
 */
export function formatTime(time: number | string | null | undefined): string {
  if (time === null || time === undefined || time === '') {
    return '—';
  }
  const date =
    typeof time === 'number' ? new Date(time * 1000) : new Date(time);
  if (Number.isNaN(date.getTime())) {
    return String(time);
  }
  return date.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit'
  });
}

/**
 * The first 12 characters of a snapshot id, enough to tell snapshots apart.
 */
export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 12) : '—';
}

/**
 * Words for a drift grade, translated.
 */
export function statusLabel(
  status: DriftStatus,
  trans: TranslationBundle
): string {
  switch (status) {
    case 'STABLE':
      return trans.__('Stable');
    case 'MINOR_DRIFT':
      return trans.__('Minor drift');
    case 'CRITICAL_DRIFT':
      return trans.__('Critical drift');
    case 'NO_BASELINE':
      return trans.__('No baseline');
  }
}

/**
 * The CSS modifier of a drift grade: its colour (green, amber, red, grey).
 */
export function statusClass(status: DriftStatus): string {
  switch (status) {
    case 'STABLE':
      return 'jp-WestTek-mod-stable';
    case 'MINOR_DRIFT':
      return 'jp-WestTek-mod-minor';
    case 'CRITICAL_DRIFT':
      return 'jp-WestTek-mod-critical';
    case 'NO_BASELINE':
      return 'jp-WestTek-mod-none';
  }
}

/**
 * The CSS modifier of a change's severity.
 */
export function severityClass(severity: Severity): string {
  return `jp-WestTek-mod-${severity}`;
}

/**
 * Words for a severity as a heading (`Critical`), translated.
 */
export function severityLabel(
  severity: Severity,
  trans: TranslationBundle
): string {
  switch (severity) {
    case 'critical':
      return trans.__('Critical');
    case 'minor':
      return trans.__('Minor');
    case 'info':
      return trans.__('Info');
  }
}

/**
 * Words for a severity within a sentence (`critical`), translated.
 */
export function severityWord(
  severity: Severity,
  trans: TranslationBundle
): string {
  switch (severity) {
    case 'critical':
      return trans.__('critical');
    case 'minor':
      return trans.__('minor');
    case 'info':
      return trans.__('info');
  }
}

/**
 * Words for where a job stands, translated.
 */
export function jobStateLabel(
  state: JobState,
  trans: TranslationBundle
): string {
  switch (state) {
    case 'queued':
      return trans.__('queued');
    case 'running':
      return trans.__('running');
    case 'succeeded':
      return trans.__('done');
    case 'failed':
      return trans.__('failed');
  }
}

/**
 * A change in one line, e.g. `numpy 1.26.4 → 2.0.0 (upgraded)`.
 */
export function describeChange(change: IChange): string {
  const before = change.before ?? '';
  const after = change.after ?? '';
  let values = '';
  if (before && after) {
    values = ` ${before} → ${after}`;
  } else if (after) {
    values = ` ${after}`;
  } else if (before) {
    values = ` ${before}`;
  }
  // `stale_kernel` reads as two words
  const kind = change.kind.replace(/_/g, ' ');
  return `${kind} ${change.name}${values} (${change.change})`;
}
