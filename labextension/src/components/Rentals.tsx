import * as React from 'react';

import { useNow } from '../hooks';
import { GpuOutletModel, isActive } from '../model';
import { IRentalView } from '../types';
import { ErrorBox } from './ErrorBox';
import { OpenNotebook, RentalCard } from './RentalCard';

export interface IRentalsProps {
  model: GpuOutletModel;
  openNotebook: OpenNotebook;
}

/** "Your rentals": the active ones, then the ended ones folded away. */
export function Rentals({ model, openNotebook }: IRentalsProps): React.ReactElement {
  const now = useNow(model.visible);
  const active = model.rentals.filter(isActive);
  const ended = model.rentals.filter(r => !isActive(r));
  const cards = (rentals: IRentalView[]) =>
    rentals.map(r => (
      <RentalCard key={r.id} rental={r} model={model} now={now} openNotebook={openNotebook} />
    ));
  return (
    <section className="jp-GpuOutlet-rentals" aria-label="Your rentals">
      <h3 className="jp-GpuOutlet-subheading">Your rentals</h3>
      {model.rentalsError && <ErrorBox error={model.rentalsError} />}
      {!model.rentalsLoaded && !model.rentalsError && (
        <div className="jp-GpuOutlet-muted">Loading…</div>
      )}
      {model.rentalsLoaded && active.length === 0 && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-empty">No GPU is rented right now.</div>
      )}
      <ul className="jp-GpuOutlet-list">{cards(active)}</ul>
      {ended.length > 0 && (
        <details className="jp-GpuOutlet-ended">
          <summary>Ended ({ended.length})</summary>
          <ul className="jp-GpuOutlet-list">{cards(ended)}</ul>
        </details>
      )}
    </section>
  );
}
