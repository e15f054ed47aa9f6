import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { ITimelineDay, SEVERITIES } from './drift-model';
import { severityClass, severityLabel, severityWord } from './format';
import { Severity } from './tokens';

/**
 * Width and height of the chart's drawing area, in SVG units.
 */
const WIDTH = 300;
const HEIGHT = 64;
const AXIS = 14;

/**
 * Stacking order, bottom to top.
 */
const STACK: readonly Severity[] = ['info', 'minor', 'critical'];

/**
 * Changes reported per day as stacked bars (info, minor, critical), an inline
 * SVG coloured with theme variables; each bar's tooltip gives its counts. A
 * thing changed counts once a day however many events reported it, as in the
 * Drift tab's list.
 */
export function TimelineChart(props: {
  days: readonly ITimelineDay[];
  trans: TranslationBundle;
}): JSX.Element {
  const { days, trans } = props;
  const totals = days.map(day => STACK.reduce((n, s) => n + day.counts[s], 0));
  const max = Math.max(1, ...totals);
  const slot = WIDTH / Math.max(1, days.length);
  const barWidth = Math.max(1, slot - 2);
  const active = totals.filter(total => total > 0).length;
  const dayName = (start: number) =>
    new Date(start).toLocaleDateString(undefined, {
      month: 'short',
      day: 'numeric'
    });
  return (
    <figure className="jp-WestTek-timeline" data-testid="westtek-timeline">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT + AXIS}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={trans._n(
          'Changes reported on %1 day of the last %2 days',
          'Changes reported on %1 days of the last %2 days',
          active,
          days.length
        )}
      >
        <line
          className="jp-WestTek-axis"
          x1={0}
          x2={WIDTH}
          y1={HEIGHT + 0.5}
          y2={HEIGHT + 0.5}
        />
        {days.map((day, index) => {
          let y = HEIGHT;
          const x = index * slot + 1;
          const parts = STACK.filter(s => day.counts[s] > 0).map(severity => {
            const height = (day.counts[severity] / max) * (HEIGHT - 4);
            y -= height;
            return (
              <rect
                key={severity}
                className={`jp-WestTek-bar ${severityClass(severity)}`}
                x={x}
                y={y}
                width={barWidth}
                height={height}
              />
            );
          });
          const tooltip =
            `${dayName(day.start)}: ` +
            (totals[index]
              ? SEVERITIES.filter(s => day.counts[s] > 0)
                  .map(s => `${day.counts[s]} ${severityWord(s, trans)}`)
                  .join(', ')
              : trans.__('no changes'));
          return (
            <g key={day.start} data-testid="westtek-timeline-day">
              <title>{tooltip}</title>
              {/* A transparent hit area so empty days have a tooltip too. */}
              <rect
                className="jp-WestTek-barHit"
                x={index * slot}
                y={0}
                width={slot}
                height={HEIGHT}
              />
              {parts}
            </g>
          );
        })}
      </svg>
      <div className="jp-WestTek-timelineAxis">
        <span>{days.length ? dayName(days[0].start) : ''}</span>
        <span>{trans.__('today')}</span>
      </div>
      <figcaption className="jp-WestTek-legend">
        {SEVERITIES.map(severity => (
          <span key={severity} className="jp-WestTek-legendItem">
            <span
              className={`jp-WestTek-swatch ${severityClass(severity)}`}
              aria-hidden="true"
            />
            {severityLabel(severity, trans)}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
