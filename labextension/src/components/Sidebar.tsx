import * as React from 'react';

import { useModel } from '../hooks';
import { GpuOutletModel } from '../model';
import { LaunchForm } from './LaunchForm';
import { OpenNotebook } from './RentalCard';
import { Rentals } from './Rentals';
import { StatusBanner } from './StatusBanner';
import { Wallet } from './Wallet';

export interface ISidebarProps {
  model: GpuOutletModel;
  openNotebook: OpenNotebook;
}

/**
 * The whole sidebar: a header with the refresh button, what the extension says about itself,
 * and once it is configured the wallet, the launch form and the rentals.
 */
export function Sidebar({ model, openNotebook }: ISidebarProps): React.ReactElement {
  useModel(model);
  const configured = model.status?.configured ?? false;
  return (
    <div className="jp-GpuOutlet-body">
      <header className="jp-GpuOutlet-header">
        <h2 className="jp-GpuOutlet-heading">GPU rentals</h2>
        <button
          className="jp-GpuOutlet-iconButton"
          title="Refresh now"
          aria-label="Refresh now"
          onClick={() => void model.refreshNow()}
        >
          ⟳
        </button>
      </header>
      <StatusBanner model={model} />
      {configured && (
        <>
          <Wallet model={model} />
          <LaunchForm model={model} />
        </>
      )}
      {configured && <Rentals model={model} openNotebook={openNotebook} />}
    </div>
  );
}
