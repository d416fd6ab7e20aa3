import * as React from 'react';

import { formatCents, formatMinutes, formatRate } from '../format';
import { GpuOutletModel } from '../model';
import { IFamily, ILaunchForm } from '../types';
import { GPU_COUNTS, MAX_NAME_LENGTH, TEMPLATE_SUGGESTIONS } from '../validation';
import { ErrorBox } from './ErrorBox';
import { Field } from './Field';
import { FieldError } from './FieldError';

export interface ILaunchFormProps {
  model: GpuOutletModel;
}

/** A number input for a duration: zero or more, fractions allowed. */
const HOURS_OR_MINUTES = { type: 'number', min: '0', step: 'any' } as const;

/** The fields of the form that hold text (all but the GPU count). */
type TextField = Exclude<keyof ILaunchForm, 'gpuCount'>;

/** "Rent a GPU": the form, live validation, the hour it reserves, and the launch's error. */
export function LaunchForm({ model }: ILaunchFormProps): React.ReactElement {
  const form = model.form;
  const { fields } = model.validation;
  const serverFields = model.launchError?.fields ?? {};
  const families = model.families;
  const family = families?.find(f => f.id === form.familyId) ?? null;
  const cost = model.hourCostCents;
  const wallet = model.wallet;
  const nameLength = [...form.name].length;
  const problem = (name: keyof ILaunchForm) => fields[name] ?? serverFields[name];
  const invalid = Object.keys(fields).length > 0;
  const idleDefault = model.idleStopDefault;
  /** What every validated text control of the form has: its value, its problem, its update. */
  const bind = (name: TextField) => ({
    name,
    value: form[name],
    'aria-invalid': !!problem(name),
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
      model.updateForm({ [name]: e.target.value } as Partial<ILaunchForm>)
  });
  return (
    <section className="jp-GpuOutlet-launch" aria-label="Rent a GPU">
      <h3 className="jp-GpuOutlet-subheading">Rent a GPU</h3>
      <form
        onSubmit={event => {
          event.preventDefault();
          void model.launch();
        }}
      >
        <Field label="GPU family" errorId="gpuoutlet-family-error" error={problem('familyId')}>
          {families !== null ? (
            <select className="jp-mod-styled jp-GpuOutlet-familySelect" {...bind('familyId')}>
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
        </Field>
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

        <Field label="Template" errorId="gpuoutlet-template-error" error={problem('templateId')}>
          <input className="jp-mod-styled" list="gpuoutlet-templates" {...bind('templateId')} />
          <datalist id="gpuoutlet-templates">
            {TEMPLATE_SUGGESTIONS.map(t => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </Field>

        <Field label="Region" errorId="gpuoutlet-region-error" error={problem('region')}>
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
        </Field>

        <Field
          label={
            <>
              Name
              <span
                className={`jp-GpuOutlet-counter${nameLength > MAX_NAME_LENGTH ? ' jp-mod-invalid' : ''}`}
              >
                {nameLength}/{MAX_NAME_LENGTH}
              </span>
            </>
          }
          errorId="gpuoutlet-name-error"
          error={problem('name')}
        >
          <input
            className="jp-mod-styled"
            placeholder="alice/exp-42"
            aria-describedby="gpuoutlet-name-error"
            {...bind('name')}
          />
        </Field>

        <Field
          label="Auto-stop after (hours)"
          errorId="gpuoutlet-autostop-error"
          error={problem('autoStopAfterHours')}
        >
          <input
            className="jp-mod-styled"
            {...HOURS_OR_MINUTES}
            placeholder="never"
            {...bind('autoStopAfterHours')}
          />
        </Field>

        <Field
          label="Idle stop (minutes)"
          errorId="gpuoutlet-idle-error"
          error={problem('idleStopMinutes')}
          hint={
            <div id="gpuoutlet-idle-hint" className="jp-GpuOutlet-hint">
              Stops it once no kernel on it has run anything for this long. Empty: this
              server&apos;s default ({idleDefault === null ? 'off' : formatMinutes(idleDefault)});
              0: off.
            </div>
          }
        >
          <input
            className="jp-mod-styled"
            {...HOURS_OR_MINUTES}
            placeholder={idleDefault === null ? 'default: off' : `default: ${idleDefault}`}
            aria-describedby="gpuoutlet-idle-hint gpuoutlet-idle-error"
            {...bind('idleStopMinutes')}
          />
        </Field>

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

/** A family as the select shows it: "NVIDIA RTX A6000 · 48 GB · from $0.79/h". */
function familyLabel(family: IFamily): string {
  const memory = family.gpuMemoryGb ? ` · ${family.gpuMemoryGb} GB` : '';
  const availability = family.available ? '' : ' · unavailable';
  return `${family.displayName ?? family.id}${memory} · from ${formatRate(family.pricePerHourCents)}${availability}`;
}
