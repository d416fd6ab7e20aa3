import * as React from 'react';

import { ITelemetryView } from '../types';

/** One small chart: a metric of every GPU over the telemetry's window. */
interface IMetric {
  key: 'utilization' | 'memory' | 'temperature' | 'power';
  label: string;
  /** The value to plot (0..max) of one GPU reading, or null when it does not report it. */
  value: (gpu: ITelemetryView['samples'][number]['gpus'][number]) => number | null;
  /** The top of the scale: fixed, or the largest value seen. */
  max: (values: number[]) => number;
  /** The latest value for people, without its unit (one per GPU, the unit once after). */
  text: (gpu: ITelemetryView['samples'][number]['gpus'][number]) => string;
  unit: string;
}

const METRICS: readonly IMetric[] = [
  {
    key: 'utilization',
    label: 'Utilisation',
    value: g => g.utilization,
    max: () => 100,
    text: g => (g.utilization === null ? 'n/a' : `${Math.round(g.utilization)}`),
    unit: ' %'
  },
  {
    key: 'memory',
    label: 'Memory',
    value: g =>
      g.memoryUsed === null || !g.memoryTotal ? null : (100 * g.memoryUsed) / g.memoryTotal,
    max: () => 100,
    text: g => (g.memoryUsed === null ? 'n/a' : (g.memoryUsed / 1024).toFixed(1)),
    unit: ' GiB'
  },
  {
    key: 'temperature',
    label: 'Temperature',
    value: g => g.temperature,
    max: values => Math.max(100, ...values),
    text: g => (g.temperature === null ? 'n/a' : `${Math.round(g.temperature)}`),
    unit: ' °C'
  },
  {
    key: 'power',
    label: 'Power',
    value: g => g.power,
    max: values => Math.max(1, ...values) * 1.1,
    text: g => (g.power === null ? 'n/a' : `${Math.round(g.power)}`),
    unit: ' W'
  }
];

const WIDTH = 200;
const HEIGHT = 32;

/** A chart's line for one GPU: SVG points over the window (x: time, y: value / max). */
function points(
  telemetry: ITelemetryView,
  metric: IMetric,
  index: number,
  max: number,
  end: number
): string {
  const window = telemetry.historySeconds * 1000;
  const out: string[] = [];
  for (const sample of telemetry.samples) {
    const gpu = sample.gpus.find(g => g.index === index);
    const value = gpu ? metric.value(gpu) : null;
    if (value === null) {
      continue;
    }
    const x = WIDTH * (1 - (end - Date.parse(sample.at)) / window);
    const y = HEIGHT - (HEIGHT * Math.min(value, max)) / max;
    out.push(`${Math.max(0, x).toFixed(1)},${y.toFixed(1)}`);
  }
  return out.join(' ');
}

/** The latest value of each GPU in words (memory with its total), for the tooltip. */
function title(metric: IMetric, gpus: ITelemetryView['samples'][number]['gpus']): string {
  return gpus
    .map(g => {
      const total =
        metric.key === 'memory' && g.memoryTotal !== null
          ? ` of ${(g.memoryTotal / 1024).toFixed(1)}`
          : '';
      return `GPU ${g.index}: ${metric.text(g)}${total}${metric.unit}`;
    })
    .join(', ');
}

export interface IGpuChartsProps {
  telemetry: ITelemetryView;
}

/**
 * The last ten minutes of a pod's GPUs as four small charts (utilisation, memory, temperature,
 * power), one line per GPU, with the latest value of each beside it. Theme colours only.
 */
export function GpuCharts({ telemetry }: IGpuChartsProps): React.ReactElement | null {
  const samples = telemetry.samples;
  const latest = samples.length > 0 ? samples[samples.length - 1] : null;
  if (latest === null) {
    return null;
  }
  const end = Date.parse(latest.at);
  const minutes = Math.round(telemetry.historySeconds / 60);
  return (
    <div className="jp-GpuOutlet-charts">
      {METRICS.map(metric => {
        const values = samples.flatMap(s =>
          s.gpus.map(g => metric.value(g)).filter((v): v is number => v !== null)
        );
        const max = metric.max(values);
        return (
          <div
            className="jp-GpuOutlet-chart"
            key={metric.key}
            data-metric={metric.key}
            data-latest={latest.gpus.map(g => metric.value(g) ?? '').join(',')}
          >
            <div className="jp-GpuOutlet-chartHead">
              <span className="jp-GpuOutlet-chartLabel">{metric.label}</span>
              <span className="jp-GpuOutlet-chartValue" title={title(metric, latest.gpus)}>
                {latest.gpus.map(g => metric.text(g)).join(' · ')}
                {metric.unit}
              </span>
            </div>
            <svg
              className="jp-GpuOutlet-chartSvg"
              viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
              preserveAspectRatio="none"
              role="img"
              aria-label={`${metric.label}, last ${minutes} minutes`}
            >
              <line className="jp-GpuOutlet-chartGrid" x1={0} y1={HEIGHT} x2={WIDTH} y2={HEIGHT} />
              <line
                className="jp-GpuOutlet-chartGrid"
                x1={0}
                y1={HEIGHT / 2}
                x2={WIDTH}
                y2={HEIGHT / 2}
              />
              {latest.gpus.map(g => (
                <polyline
                  key={g.index}
                  className={`jp-GpuOutlet-chartLine jp-mod-gpu${g.index % 4}`}
                  points={points(telemetry, metric, g.index, max, end)}
                />
              ))}
            </svg>
          </div>
        );
      })}
    </div>
  );
}
