import { LabIcon } from '@jupyterlab/ui-components';

// The path is relative to the compiled lib/icons.js, which is what the
// builder bundles; TypeScript never resolves it (see svg.d.ts).
import westtekSvgstr from '../labextension/style/icons/westtek.svg';

/**
 * The West Tek vault-door glyph; its `jp-icon3` fill follows the theme.
 */
export const westtekIcon = new LabIcon({
  name: 'westtek-labextension:westtek',
  svgstr: westtekSvgstr
});
