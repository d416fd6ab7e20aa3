import { LabIcon } from '@jupyterlab/ui-components';

/** A GPU card: the sidebar's tab icon (themed through `jp-icon3`). */
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M2 6h1V4h2v2h15a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2v2h-2v-2H9v2H7v-2H5v2H3V6zm3 2v8h15V8H5z"/>
    <circle cx="10" cy="12" r="2.6"/>
    <rect x="14.5" y="9.5" width="4" height="5" rx="0.8"/>
  </g>
</svg>`;

export const gpuIcon = new LabIcon({ name: 'gpuoutlet-jupyter:gpu', svgstr });
