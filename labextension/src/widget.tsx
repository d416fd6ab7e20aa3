/**
 * The sidebar's view: a Lumino widget around React components that render the model.
 * All state lives in GpuOutletModel; these components only read it and call its methods.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { confirmAndStop, copyText } from './actions';
import { IErrorInfo } from './errors';
import {
  costSoFarCents,
  elapsedSeconds,
  formatCents,
  formatElapsed,
  formatHoursLeft,
  formatMinutes,
  formatRate
} from './format';
import { gpuIcon } from './icon';
import { idleLine, IIdleLine } from './idle';
import { canStop, GpuOutletModel, isActive, rentalTitle } from './model';
import { IFamily, IRentalView } from './types';
import { GPU_COUNTS, MAX_NAME_LENGTH, TEMPLATE_SUGGESTIONS } from './validation';

export namespace GpuOutletPanel {
  export interface IOptions {
    model: GpuOutletModel;
    /** Open a new notebook with this kernelspec (the "Open a notebook on this GPU" button). */
    openNotebook: (kernel: string) => Promise<void>;
  }
}

/** The sidebar panel. Shown or hidden, it tells the model, whose polls then stand by. */
export class GpuOutletPanel extends ReactWidget {
  constructor(options: GpuOutletPanel.IOptions) {
    super();
    this.model = options.model;
    this._openNotebook = options.openNotebook;
    this.id = 'gpuoutlet-sidebar';
    this.addClass('jp-GpuOutlet');
    this.title.icon = gpuIcon;
    this.title.caption = 'GPU rentals (gpuoutlet)';
  }

  readonly model: GpuOutletModel;

  /** Move the focus to the launch form (the "Rent a GPU…" command). */
  focusLaunchForm(): void {
    const select = this.node.querySelector<HTMLElement>('.jp-GpuOutlet-familySelect, input');
    select?.focus();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
  }

  protected render(): React.ReactElement {
    return <Sidebar model={this.model} openNotebook={this._openNotebook} />;
  }

  private _openNotebook: (kernel: string) => Promise<void>;
}

/** Re-render on every change of the model. */
function useModel(model: GpuOutletModel): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const onChange = () => setTick(t => t + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
}

/** The current time, every second while the panel is visible (elapsed time, cost so far). */
function useNow(active: boolean): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    if (!active) {
      return;
    }
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [active]);
  return now;
}

interface ISidebarProps {
  model: GpuOutletModel;
  openNotebook: (kernel: string) => Promise<void>;
}

function Sidebar({ model, openNotebook }: ISidebarProps): React.ReactElement {
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

/** An error, inline: a headline, the specific message, and whatever amounts it has. */
function ErrorBox({
  error,
  className,
  onDismiss
}: {
  error: IErrorInfo;
  className?: string;
  onDismiss?: () => void;
}): React.ReactElement {
  return (
    <div
      className={`jp-GpuOutlet-error jp-GpuOutlet-error-${error.kind} ${className ?? ''}`}
      role="alert"
      data-kind={error.kind}
    >
      <div className="jp-GpuOutlet-errorTitle">
        {error.title}
        {onDismiss && (
          <button
            className="jp-GpuOutlet-iconButton jp-GpuOutlet-dismiss"
            aria-label="Dismiss"
            title="Dismiss"
            onClick={onDismiss}
          >
            ×
          </button>
        )}
      </div>
      {error.requiredCents !== undefined && error.availableCents !== undefined && (
        <dl className="jp-GpuOutlet-amounts">
          <dt>Needed (one hour)</dt>
          <dd className="jp-GpuOutlet-required">{formatCents(error.requiredCents)}</dd>
          <dt>Available</dt>
          <dd className="jp-GpuOutlet-available">{formatCents(error.availableCents)}</dd>
        </dl>
      )}
      <div className="jp-GpuOutlet-errorMessage">{error.message}</div>
    </div>
  );
}

function StatusBanner({ model }: { model: GpuOutletModel }): React.ReactElement | null {
  if (model.statusError) {
    return <ErrorBox error={model.statusError} />;
  }
  const status = model.status;
  if (status === null) {
    return <div className="jp-GpuOutlet-muted">Connecting to the gpuoutlet extension…</div>;
  }
  if (!status.configured) {
    const error: IErrorInfo = {
      kind: status.sidConfigured ? 'other' : 'not_configured',
      title: status.sidConfigured
        ? 'The gpuoutlet extension cannot start'
        : 'No gpuoutlet session is configured',
      message:
        status.problem ??
        'Set GPUOUTLET_SID in the environment of the Jupyter server and restart it.'
    };
    return <ErrorBox error={error} />;
  }
  return (
    <div className="jp-GpuOutlet-muted jp-GpuOutlet-api" title={`Session: ${status.sidSource}`}>
      {status.apiUrl}
    </div>
  );
}

function Wallet({ model }: { model: GpuOutletModel }): React.ReactElement {
  const wallet = model.wallet;
  if (model.walletError && model.walletError.kind !== 'endpoint_unavailable') {
    return <ErrorBox error={model.walletError} />;
  }
  if (wallet === null) {
    return (
      <div className="jp-GpuOutlet-wallet jp-GpuOutlet-muted">
        {model.walletError ? 'This rentals API does not report the wallet.' : 'Wallet…'}
      </div>
    );
  }
  return (
    <section className="jp-GpuOutlet-wallet" aria-label="Wallet">
      <div className="jp-GpuOutlet-balance">
        <div>
          <span className="jp-GpuOutlet-label">Available</span>
          <span className="jp-GpuOutlet-walletAvailable">
            {formatCents(wallet.availableCents, wallet.currency)}
          </span>
        </div>
        <div>
          <span className="jp-GpuOutlet-label">Reserved</span>
          <span className="jp-GpuOutlet-walletReserved">
            {formatCents(wallet.reservedCents, wallet.currency)}
          </span>
        </div>
      </div>
      {typeof wallet.burnCentsPerHour === 'number' && <Spend model={model} />}
    </section>
  );
}

/** Below this many hours of balance left at the current burn, the line is a warning. */
const LOW_HOURS = 1;

/** The burn of the active rentals, how long the balance lasts at it, the cost so far, the cap. */
function Spend({ model }: { model: GpuOutletModel }): React.ReactElement | null {
  const now = useNow(model.visible);
  const wallet = model.wallet;
  if (wallet === null || typeof wallet.burnCentsPerHour !== 'number') {
    return null;
  }
  const currency = wallet.currency;
  const burn = wallet.burnCentsPerHour;
  const hoursLeft = burn > 0 ? (wallet.hoursLeft ?? null) : null;
  const low = hoursLeft !== null && hoursLeft < LOW_HOURS;
  const spent = model.spentCents(now);
  const cap = wallet.maxHourlySpendCents ?? null;
  const active = wallet.activeRentals ?? 0;
  return (
    <div
      className={`jp-GpuOutlet-spend${low ? ' jp-mod-warn' : ''}`}
      role="group"
      aria-label="Spending"
    >
      <span
        title={
          burn > 0
            ? `What your ${active === 1 ? 'active rental costs' : `${active} active rentals cost`} per hour`
            : 'Nothing is running, so nothing is being spent'
        }
      >
        Burn <strong className="jp-GpuOutlet-burn">{formatRate(burn, currency)}</strong>
      </span>
      <span
        className="jp-GpuOutlet-hoursLeft"
        title="How long the available balance lasts at this burn"
      >
        {formatHoursLeft(hoursLeft)}
      </span>
      {spent !== null && (
        <span title="The cost so far of the rentals this Jupyter server tracks">
          <span className="jp-GpuOutlet-spent">{formatCents(spent, currency)}</span> so far
        </span>
      )}
      {cap !== null && cap > 0 && (
        <span title="The spending cap of this Jupyter server: a rental that would take the burn over it is refused">
          cap <span className="jp-GpuOutlet-cap">{formatRate(cap, currency)}</span>
        </span>
      )}
    </div>
  );
}

function familyLabel(family: IFamily): string {
  const memory = family.gpuMemoryGb ? ` · ${family.gpuMemoryGb} GB` : '';
  const availability = family.available ? '' : ' · unavailable';
  return `${family.displayName ?? family.id}${memory} · from ${formatRate(family.pricePerHourCents)}${availability}`;
}

function FieldError({ id, text }: { id: string; text?: string }): React.ReactElement | null {
  return text ? (
    <div id={id} className="jp-GpuOutlet-fieldError" role="alert">
      {text}
    </div>
  ) : null;
}

function LaunchForm({ model }: { model: GpuOutletModel }): React.ReactElement {
  const form = model.form;
  const { fields } = model.validation;
  const serverFields = model.launchError?.fields ?? {};
  const families = model.families;
  const family = families?.find(f => f.id === form.familyId) ?? null;
  const cost = model.hourCostCents;
  const wallet = model.wallet;
  const nameLength = [...form.name].length;
  const problem = (name: keyof typeof form) => fields[name] ?? serverFields[name];
  const invalid = Object.keys(fields).length > 0;
  const idleDefault = model.idleStopDefault;
  return (
    <section className="jp-GpuOutlet-launch" aria-label="Rent a GPU">
      <h3 className="jp-GpuOutlet-subheading">Rent a GPU</h3>
      <form
        onSubmit={event => {
          event.preventDefault();
          void model.launch();
        }}
      >
        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">GPU family</span>
          {families !== null ? (
            <select
              className="jp-mod-styled jp-GpuOutlet-familySelect"
              name="familyId"
              value={form.familyId}
              aria-invalid={!!problem('familyId')}
              onChange={e => model.updateForm({ familyId: e.target.value })}
            >
              {form.familyId === '' && <option value="">Loading families…</option>}
              {families.map(f => (
                <option key={f.id} value={f.id} disabled={!f.available}>
                  {familyLabel(f)}
                </option>
              ))}
            </select>
          ) : (
            <input
              className="jp-mod-styled jp-GpuOutlet-familySelect"
              name="familyId"
              placeholder="rtx-4090"
              value={form.familyId}
              onChange={e => model.updateForm({ familyId: e.target.value })}
            />
          )}
        </label>
        <FieldError id="gpuoutlet-family-error" text={problem('familyId')} />
        {model.familiesError && model.familiesError.kind !== 'endpoint_unavailable' && (
          <ErrorBox error={model.familiesError} />
        )}

        <div className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label" id="gpuoutlet-count-label">
            GPUs
          </span>
          <div
            className="jp-GpuOutlet-segmented"
            role="radiogroup"
            aria-labelledby="gpuoutlet-count-label"
          >
            {GPU_COUNTS.map(n => (
              <button
                key={n}
                type="button"
                role="radio"
                aria-checked={form.gpuCount === n}
                className={`jp-GpuOutlet-segment${form.gpuCount === n ? ' jp-mod-active' : ''}`}
                onClick={() => model.updateForm({ gpuCount: n })}
              >
                {n}
              </button>
            ))}
          </div>
        </div>
        <FieldError id="gpuoutlet-count-error" text={problem('gpuCount')} />

        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">Template</span>
          <input
            className="jp-mod-styled"
            name="templateId"
            list="gpuoutlet-templates"
            value={form.templateId}
            aria-invalid={!!problem('templateId')}
            onChange={e => model.updateForm({ templateId: e.target.value })}
          />
          <datalist id="gpuoutlet-templates">
            {TEMPLATE_SUGGESTIONS.map(t => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </label>
        <FieldError id="gpuoutlet-template-error" text={problem('templateId')} />

        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">Region</span>
          <select
            className="jp-mod-styled"
            name="region"
            value={form.region}
            onChange={e => model.updateForm({ region: e.target.value })}
          >
            <option value="">Any (cheapest)</option>
            {(family?.regions ?? []).map(r => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <FieldError id="gpuoutlet-region-error" text={problem('region')} />

        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">
            Name
            <span
              className={`jp-GpuOutlet-counter${nameLength > MAX_NAME_LENGTH ? ' jp-mod-invalid' : ''}`}
            >
              {nameLength}/{MAX_NAME_LENGTH}
            </span>
          </span>
          <input
            className="jp-mod-styled"
            name="name"
            placeholder="alice/exp-42"
            value={form.name}
            aria-invalid={!!problem('name')}
            aria-describedby="gpuoutlet-name-error"
            onChange={e => model.updateForm({ name: e.target.value })}
          />
        </label>
        <FieldError id="gpuoutlet-name-error" text={problem('name')} />

        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">Auto-stop after (hours)</span>
          <input
            className="jp-mod-styled"
            name="autoStopAfterHours"
            type="number"
            min="0"
            step="any"
            placeholder="never"
            value={form.autoStopAfterHours}
            aria-invalid={!!problem('autoStopAfterHours')}
            onChange={e => model.updateForm({ autoStopAfterHours: e.target.value })}
          />
        </label>
        <FieldError id="gpuoutlet-autostop-error" text={problem('autoStopAfterHours')} />

        <label className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label">Idle stop (minutes)</span>
          <input
            className="jp-mod-styled"
            name="idleStopMinutes"
            type="number"
            min="0"
            step="any"
            placeholder={idleDefault === null ? 'default: off' : `default: ${idleDefault}`}
            value={form.idleStopMinutes}
            aria-invalid={!!problem('idleStopMinutes')}
            aria-describedby="gpuoutlet-idle-hint gpuoutlet-idle-error"
            onChange={e => model.updateForm({ idleStopMinutes: e.target.value })}
          />
        </label>
        <div id="gpuoutlet-idle-hint" className="jp-GpuOutlet-hint">
          Stops it once no kernel on it has run anything for this long. Empty: this server&apos;s
          default ({idleDefault === null ? 'off' : formatMinutes(idleDefault)}); 0: off.
        </div>
        <FieldError id="gpuoutlet-idle-error" text={problem('idleStopMinutes')} />

        <div
          className={`jp-GpuOutlet-cost${model.balanceShort ? ' jp-mod-warn' : ''}`}
          aria-live="polite"
        >
          {cost === null ? (
            <span>Pick a family to see the cost.</span>
          ) : (
            <>
              <div>
                Reserves <strong className="jp-GpuOutlet-hourCost">{formatCents(cost)}</strong> now:
                one hour at {formatRate(cost)}
                {form.region ? '' : ' (cheapest region)'}.
              </div>
              {wallet && (
                <div>
                  {model.balanceShort
                    ? `Only ${formatCents(wallet.availableCents, wallet.currency)} is available: the API will refuse this rental.`
                    : `${formatCents(wallet.availableCents, wallet.currency)} available, ${formatCents(wallet.availableCents - cost, wallet.currency)} left after.`}
                </div>
              )}
            </>
          )}
        </div>

        {model.launchError && (
          <ErrorBox
            error={model.launchError}
            className="jp-GpuOutlet-launchError"
            onDismiss={() => model.dismissLaunchError()}
          />
        )}

        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-GpuOutlet-primary"
          disabled={model.launching || invalid}
        >
          {model.launching ? 'Renting…' : 'Rent GPU'}
        </button>
      </form>
    </section>
  );
}

function Rentals({ model, openNotebook }: ISidebarProps): React.ReactElement {
  const now = useNow(model.visible);
  const active = model.rentals.filter(isActive);
  const ended = model.rentals.filter(r => !isActive(r));
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
      <ul className="jp-GpuOutlet-list">
        {active.map(r => (
          <RentalCard key={r.id} rental={r} model={model} now={now} openNotebook={openNotebook} />
        ))}
      </ul>
      {ended.length > 0 && (
        <details className="jp-GpuOutlet-ended">
          <summary>Ended ({ended.length})</summary>
          <ul className="jp-GpuOutlet-list">
            {ended.map(r => (
              <RentalCard
                key={r.id}
                rental={r}
                model={model}
                now={now}
                openNotebook={openNotebook}
              />
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

/**
 * An idle line's text; its countdown in a timer with live announcements off, so an alert
 * around it is read once and not again on every tick.
 */
function IdleText({ line }: { line: IIdleLine }): React.ReactElement {
  return (
    <>
      {line.prefix}
      {line.countdown !== null && (
        <span className="jp-GpuOutlet-countdown" role="timer" aria-live="off">
          {line.countdown}
        </span>
      )}
      {line.suffix}
    </>
  );
}

interface IRentalCardProps {
  rental: IRentalView;
  model: GpuOutletModel;
  now: number;
  openNotebook: (kernel: string) => Promise<void>;
}

function RentalCard({ rental, model, now, openNotebook }: IRentalCardProps): React.ReactElement {
  const [copied, setCopied] = React.useState(false);
  const status = rental.gone ? 'gone' : rental.status;
  const ended = !isActive(rental);
  const command = rental.status === 'running' ? rental.ssh?.command : undefined;
  const stopError = model.stopError(rental.id);
  const stopping = model.isStopping(rental.id);
  const cost = costSoFarCents(rental, now);
  const idle = idleLine(rental, model.receivedAt(rental.id), now);
  const keepError = model.keepError(rental.id);
  const keeping = model.isKeeping(rental.id);
  return (
    <li
      className={`jp-GpuOutlet-rental jp-mod-${status}`}
      data-rental-id={rental.id}
      data-status={status}
      data-kernel={rental.kernel ?? undefined}
    >
      <div className="jp-GpuOutlet-rentalHead">
        <span className="jp-GpuOutlet-rentalTitle">{rentalTitle(rental, model.families)}</span>
        {!rental.createdHere && (
          <span
            className="jp-GpuOutlet-badge jp-GpuOutlet-elsewhere"
            title="Not made from this Jupyter server: another machine or the gpuoutlet website made it. It is billed all the same; this server found it by comparing with the rentals API's list."
          >
            made elsewhere
          </span>
        )}
        <span className={`jp-GpuOutlet-badge jp-mod-${status}`}>{status}</span>
      </div>
      <div className="jp-GpuOutlet-rentalSub jp-GpuOutlet-muted">
        {rental.name ? <span className="jp-GpuOutlet-rentalName">{rental.name} · </span> : null}
        <span>{rental.id}</span>
        {rental.region ? <span> · {rental.region}</span> : null}
      </div>
      {rental.status === 'provisioning' && !rental.gone && (
        <div
          className="jp-GpuOutlet-progress"
          role="progressbar"
          aria-label="Provisioning"
          aria-valuetext={rental.phase}
        >
          <div className="jp-GpuOutlet-progressBar" />
        </div>
      )}
      {/* Running with its SSH command below: the phase would only repeat the command; stopped
          for being idle: the idle line says it. */}
      {!(command && !rental.upstreamError) && idle?.kind !== 'stopped' && (
        <div className="jp-GpuOutlet-phase">{rental.phase}</div>
      )}
      <div className="jp-GpuOutlet-meta">
        <span title="Time since it started">
          <span className="jp-GpuOutlet-elapsed">{formatElapsed(elapsedSeconds(rental, now))}</span>{' '}
          elapsed
        </span>
        <span className="jp-GpuOutlet-rate">{formatRate(rental.pricePerHourCents)}</span>
        {rental.status !== 'failed' && (
          <span title="Cost so far (the locked rate times the time since it started)">
            <span className="jp-GpuOutlet-costSoFar">{formatCents(cost)}</span> so far
          </span>
        )}
        {rental.autoStopAfterHours ? <span>auto-stop {rental.autoStopAfterHours} h</span> : null}
      </div>
      {idle?.kind === 'warning' && (
        <div className="jp-GpuOutlet-idleWarning" role="alert" data-idle={idle.kind}>
          <span className="jp-GpuOutlet-idleText">
            <IdleText line={idle} />
            {idle.busy && <span className="jp-GpuOutlet-busy"> ({idle.busy})</span>}
          </span>
          <button
            className="jp-GpuOutlet-button jp-GpuOutlet-keep"
            disabled={keeping}
            title={`Restart the idle timer: stopped only after another ${formatMinutes(rental.idleStop?.minutes ?? 0)} with nothing running on it`}
            onClick={() => void model.keep(rental.id)}
          >
            {keeping ? 'Keeping…' : 'Keep it'}
          </button>
        </div>
      )}
      {idle && idle.kind !== 'warning' && (
        <div className={`jp-GpuOutlet-idle jp-mod-${idle.kind}`} data-idle={idle.kind}>
          <IdleText line={idle} />
          {idle.busy && <span className="jp-GpuOutlet-busy"> · {idle.busy}</span>}
        </div>
      )}
      {keepError && <ErrorBox error={keepError} />}
      {command && (
        <div className="jp-GpuOutlet-ssh">
          <code className="jp-GpuOutlet-sshCommand">{command}</code>
          <button
            className="jp-GpuOutlet-button jp-GpuOutlet-copy"
            title="Copy the SSH command"
            onClick={async () => {
              await copyText(command);
              setCopied(true);
              window.setTimeout(() => setCopied(false), 2000);
            }}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
        </div>
      )}
      {rental.status === 'running' && rental.ssh?.includeWarning && (
        <div className="jp-GpuOutlet-warning">{rental.ssh.includeWarning}</div>
      )}
      {!ended && (
        <div className="jp-GpuOutlet-actions">
          {rental.status === 'running' && rental.kernel && (
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-openNotebook"
              onClick={() => void openNotebook(rental.kernel as string)}
            >
              Open a notebook on this GPU
            </button>
          )}
          {canStop(rental) && (
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-stop"
              disabled={stopping}
              onClick={() => void confirmAndStop(model, rental)}
            >
              {stopping ? 'Stopping…' : 'Stop'}
            </button>
          )}
        </div>
      )}
      {stopError && <ErrorBox error={stopError} />}
    </li>
  );
}
