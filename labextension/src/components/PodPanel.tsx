import * as React from 'react';

import { GpuOutletModel } from '../model';
import { forwardUrl, PodWatcher } from '../pods';
import { IRentalView } from '../types';
import { ErrorBox } from './ErrorBox';
import { GpuCharts } from './GpuCharts';

export interface IPodPanelProps {
  rental: IRentalView;
  model: GpuOutletModel;
}

/** A row of the ports list: a port, what serves it, whether it listens, and its forward. */
interface IPortRow {
  port: number;
  label: string;
  listening: boolean;
  documented: boolean;
  url: string | null;
}

function portRows(watcher: PodWatcher): IPortRow[] {
  const ports = watcher.ports;
  if (ports === null) {
    return [];
  }
  const forwards = new Map(ports.forwards.map(f => [f.remotePort, forwardUrl(f)]));
  const rows = new Map<number, IPortRow>();
  for (const known of ports.known) {
    rows.set(known.port, {
      port: known.port,
      label: known.label,
      listening: known.listening,
      documented: known.documented,
      url: forwards.get(known.port) ?? null
    });
  }
  for (const item of ports.listening) {
    if (!rows.has(item.port)) {
      rows.set(item.port, {
        port: item.port,
        label: item.process ?? `listening on ${item.address}`,
        listening: true,
        documented: true,
        url: forwards.get(item.port) ?? null
      });
    }
  }
  return [...rows.values()].sort((a, b) => a.port - b.port);
}

/**
 * An expanded running rental: its GPUs over the last ten minutes (sampled while the card is
 * open), their model and count, and its ports with an "Open" button each.
 */
export function PodPanel({ rental, model }: IPodPanelProps): React.ReactElement {
  const [watcher, setWatcher] = React.useState<PodWatcher | null>(null);
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const created = model.watchPod(rental.id);
    const onChange = () => setTick(t => t + 1);
    created.changed.connect(onChange);
    setWatcher(created);
    void created.refreshPorts();
    return () => {
      created.changed.disconnect(onChange);
      created.dispose();
    };
  }, [model, rental.id]);
  if (watcher === null) {
    return <div className="jp-GpuOutlet-pod" />;
  }
  const telemetry = watcher.telemetry;
  const open = async (port: number) => {
    // Opened now, in the click, so that a popup blocker lets it; pointed there once forwarded.
    const tab = window.open('', '_blank');
    const forward = await watcher.open(port);
    if (forward === null) {
      tab?.close();
      return;
    }
    if (tab) {
      tab.location.href = forwardUrl(forward);
    }
  };
  const rows = portRows(watcher);
  return (
    <div className="jp-GpuOutlet-pod" data-rental-id={rental.id}>
      <div className="jp-GpuOutlet-gpus">
        <div className="jp-GpuOutlet-gpuModel">
          {telemetry && telemetry.gpuCount > 0
            ? `${telemetry.gpuCount}× ${telemetry.gpuModel ?? 'GPU'}`
            : `${rental.gpuCount}× GPU`}
          {telemetry?.state === 'sampling' && (
            <span className="jp-GpuOutlet-muted">
              {' '}
              · every {telemetry.intervalSeconds} s, last{' '}
              {Math.round(telemetry.historySeconds / 60)} min
            </span>
          )}
        </div>
        {telemetry?.state === 'unavailable' ? (
          <div className="jp-GpuOutlet-noSmi jp-GpuOutlet-muted">
            No nvidia-smi on this pod: no GPU telemetry for it.
          </div>
        ) : telemetry && telemetry.samples.length > 0 ? (
          <GpuCharts telemetry={telemetry} />
        ) : (
          <div className="jp-GpuOutlet-muted">Reading the GPUs…</div>
        )}
        {telemetry?.state === 'error' && telemetry.message && (
          <div className="jp-GpuOutlet-warning">The last sample failed: {telemetry.message}</div>
        )}
        {watcher.telemetryError && <ErrorBox error={watcher.telemetryError} />}
      </div>
      <div className="jp-GpuOutlet-portList">
        <div className="jp-GpuOutlet-portHead">
          <span>Ports</span>
          <button
            className="jp-GpuOutlet-iconButton jp-GpuOutlet-refreshPorts"
            disabled={watcher.loadingPorts}
            title="Look again at the ports listening on the pod"
            onClick={() => void watcher.refreshPorts()}
          >
            ↻
          </button>
        </div>
        {watcher.ports !== null && rows.length === 0 && (
          <div className="jp-GpuOutlet-muted">
            Nothing listens on the pod, and its template names no port.
          </div>
        )}
        <ul className="jp-GpuOutlet-portRows">
          {rows.map(row => (
            <li
              key={row.port}
              className="jp-GpuOutlet-port"
              data-port={row.port}
              data-listening={row.listening}
            >
              <span className="jp-GpuOutlet-portNumber">{row.port}</span>
              <span className="jp-GpuOutlet-portLabel" title={row.label}>
                {row.label}
                {!row.documented && <span className="jp-GpuOutlet-muted"> (default)</span>}
              </span>
              <span className="jp-GpuOutlet-muted">
                {row.listening ? 'listening' : 'not listening'}
              </span>
              <button
                className="jp-GpuOutlet-button jp-GpuOutlet-openPort"
                disabled={watcher.opening !== null}
                title={
                  row.url
                    ? `Forwarded: ${row.url}`
                    : 'Forward it here over the rental’s SSH connection and open it'
                }
                onClick={() => void open(row.port)}
              >
                {watcher.opening === row.port ? 'Opening…' : 'Open'}
              </button>
            </li>
          ))}
        </ul>
        {watcher.portsError && <ErrorBox error={watcher.portsError} />}
      </div>
    </div>
  );
}
