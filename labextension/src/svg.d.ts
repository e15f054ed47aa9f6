/**
 * SVG files are bundled as their source text (see the JupyterLab builder's
 * asset rules), which is what `LabIcon` expects.
 */
declare module '*.svg' {
  const svgstr: string;
  export default svgstr;
}
