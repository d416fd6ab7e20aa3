import * as React from 'react';

import { useModel } from '../hooks';
import { GpuOutletModel } from '../model';
import { Header } from './Header';
import { LaunchForm } from './LaunchForm';
import { OpenNotebook } from './RentalCard';
import { Rentals } from './Rentals';
import { SignIn } from './SignIn';
import { StatusBanner } from './StatusBanner';
import { Wallet } from './Wallet';

export interface ISidebarProps {
  model: GpuOutletModel;
  openNotebook: OpenNotebook;
}

/**
 * The whole sidebar: the header (who is signed in, the session, the $0 warning), then either
 * "Sign in to gpuoutlet" (no session, or one that ended), or what the extension says about
 * itself (one banner when the rentals API does not answer) and, once it is configured, the
 * wallet, the rentals and the launch form. The form's values live in the model: a sign-in in
 * between keeps them.
 */
export function Sidebar({ model, openNotebook }: ISidebarProps): React.ReactElement {
  useModel(model);
  const configured = model.status?.configured ?? false;
  const signIn = model.needsSignIn && !model.statusError;
  return (
    <div className="jp-GpuOutlet-body">
      <Header model={model} />
      {signIn ? <SignIn model={model} /> : <StatusBanner model={model} />}
      {configured && !signIn && (
        <>
          <Wallet model={model} />
          {/* What runs (and costs) first, the form to rent more after it. */}
          <Rentals model={model} openNotebook={openNotebook} />
          <LaunchForm model={model} />
        </>
      )}
    </div>
  );
}
