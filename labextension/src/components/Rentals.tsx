import * as React from 'react';

import { useNow } from '../hooks';
import { GpuOutletModel, isActive, isUpstream } from '../model';
import { IRentalView } from '../types';
import { ErrorBox } from './ErrorBox';
import { OpenNotebook, RentalCard } from './RentalCard';

/** How many cards a list shows at first, and how many more each "Show more" adds. */
export const PAGE_SIZE = 20;

export interface IRentalsProps {
  model: GpuOutletModel;
  openNotebook: OpenNotebook;
}

/** "Your rentals": the active ones, then the ended ones folded away; each list paged. */
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
      <h3 className="jp-GpuOutlet-subheading">
        Your rentals
        {active.length > 0 && <span className="jp-GpuOutlet-count"> · {active.length} active</span>}
      </h3>
      {model.rentalsError && !isUpstream(model.rentalsError) && (
        <ErrorBox error={model.rentalsError} />
      )}
      {!model.rentalsLoaded && !model.rentalsError && (
        <div className="jp-GpuOutlet-muted">Loading…</div>
      )}
      {model.rentalsLoaded && active.length === 0 && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-empty">No GPU is rented right now.</div>
      )}
      <PagedList rentals={active} render={cards} label="active rentals" />
      {ended.length > 0 && (
        <details className="jp-GpuOutlet-ended">
          <summary>Ended ({ended.length})</summary>
          <PagedList rentals={ended} render={cards} label="ended rentals" />
        </details>
      )}
    </section>
  );
}

interface IPagedListProps {
  rentals: IRentalView[];
  render: (rentals: IRentalView[]) => React.ReactNode;
  label: string;
}

/** The first PAGE_SIZE cards, and a button that shows PAGE_SIZE more. */
function PagedList({ rentals, render, label }: IPagedListProps): React.ReactElement {
  const [shown, setShown] = React.useState(PAGE_SIZE);
  const visible = rentals.slice(0, shown);
  const more = rentals.length - visible.length;
  return (
    <>
      <ul className="jp-GpuOutlet-list">{render(visible)}</ul>
      {more > 0 && (
        <div className="jp-GpuOutlet-more">
          <span className="jp-GpuOutlet-muted">
            Showing {visible.length} of {rentals.length} {label}
          </span>
          <button
            type="button"
            className="jp-GpuOutlet-button jp-GpuOutlet-showMore"
            onClick={() => setShown(shown + PAGE_SIZE)}
          >
            Show {Math.min(PAGE_SIZE, more)} more
          </button>
        </div>
      )}
    </>
  );
}
