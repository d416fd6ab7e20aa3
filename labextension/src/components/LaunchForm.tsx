import * as React from 'react';

import { familyLabel, formatMinutes, formatRate } from '../format';
import { GpuOutletModel, isUpstream } from '../model';
import { IFamilyView, ILaunchForm } from '../types';
import { GPU_COUNTS, MAX_NAME_LENGTH } from '../validation';
import { ErrorBox } from './ErrorBox';
import { Field } from './Field';
import { FieldError } from './FieldError';
import { KeyWarning } from './KeyWarning';
import { Notice } from './Notice';
import { QuoteBox } from './QuoteBox';
import { TemplateField } from './TemplateField';

export interface ILaunchFormProps {
  model: GpuOutletModel;
}

/** A number input for a duration: zero or more, fractions allowed. */
const HOURS_OR_MINUTES = { type: 'number', min: '0', step: 'any' } as const;

/** The fields of the form that hold text (all but the GPU count). */
type TextField = Exclude<keyof ILaunchForm, 'gpuCount'>;

/**
 * "Rent a GPU": the SSH key check, the form with live validation, gpuoutlet's quote with the
 * confirmation line, and the launch's error. Nothing is rented before the quote is shown.
 */
export function LaunchForm({ model }: ILaunchFormProps): React.ReactElement {
  const form = model.form;
  const { fields } = model.validation;
  const serverFields = {
    ...(model.quoteError?.fields ?? {}),
    ...(model.launchError?.fields ?? {})
  };
  const families = model.families;
  const family = model.family;
  const nameLength = [...form.name].length;
  const problem = (name: keyof ILaunchForm) => {
    // No family to pick yet (the catalog is on its way, or could not be read): nothing to say.
    if (name === 'familyId' && form.familyId === '' && families === null) {
      return undefined;
    }
    return fields[name] ?? serverFields[name];
  };
  const idleDefault = model.idleStopDefault;
  const gpuDefault = model.idleGpuUtilDefault;
  const price = model.quote?.quote.pricePerHourCents;
  /** What every validated text control of the form has: its value, its problem, its update. */
  const bind = (name: TextField) => ({
    name,
    value: form[name],
    'aria-invalid': !!problem(name),
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
      model.updateForm({ [name]: e.target.value } as Partial<ILaunchForm>)
  });
  const regions = regionChoices(family, form.gpuCount);
  return (
    <section className="jp-GpuOutlet-launch" aria-label="Rent a GPU">
      <h3 className="jp-GpuOutlet-subheading">Rent a GPU</h3>
      <KeyWarning model={model} />
      <form
        onSubmit={event => {
          event.preventDefault();
          void model.launch();
        }}
      >
        <Field
          label="GPU family"
          errorId="gpuoutlet-family-error"
          error={problem('familyId')}
          hint={
            family && (
              <div className="jp-GpuOutlet-hint jp-GpuOutlet-familyHint">
                {family.models.join(', ')} · {family.vramGb} GB · from{' '}
                {formatRate(family.minPricePerGpuHourCents)} a GPU
                {family.regionCodes.length ? ` · ${family.regionCodes.join(', ')}` : ''}
              </div>
            )
          }
        >
          <select
            className="jp-mod-styled jp-GpuOutlet-familySelect"
            aria-describedby="gpuoutlet-family-error"
            {...bind('familyId')}
          >
            {form.familyId === '' && (
              <option value="">
                {model.familiesError
                  ? 'No families: the catalog could not be read'
                  : 'Loading families…'}
              </option>
            )}
            {form.familyId !== '' && families !== null && family === null && (
              <option value={form.familyId}>{form.familyId} · not in the catalog</option>
            )}
            {families === null && form.familyId !== '' && (
              <option value={form.familyId}>{form.familyId}</option>
            )}
            {(families ?? []).map(f => (
              <option key={f.id} value={f.id}>
                {familyLabel(f)}
              </option>
            ))}
          </select>
        </Field>
        {model.familiesError &&
          model.familiesError.kind !== 'session_expired' &&
          !isUpstream(model.familiesError) && <ErrorBox error={model.familiesError} />}

        <div className="jp-GpuOutlet-field">
          <span className="jp-GpuOutlet-label" id="gpuoutlet-count-label">
            GPUs
          </span>
          <div
            className="jp-GpuOutlet-segmented"
            role="radiogroup"
            aria-labelledby="gpuoutlet-count-label"
            aria-describedby="gpuoutlet-count-error"
            aria-invalid={!!problem('gpuCount')}
          >
            {GPU_COUNTS.map(n => {
              const offer = family?.offers.find(o => o.gpuCount === n);
              return (
                <button
                  key={n}
                  type="button"
                  role="radio"
                  aria-checked={form.gpuCount === n}
                  title={
                    family
                      ? offer
                        ? `${n} × ${family.id}: from ${formatRate(offer.pricePerHourCents)}`
                        : `No ${n}-GPU ${family.id} machine is on offer right now`
                      : undefined
                  }
                  className={`jp-GpuOutlet-segment${form.gpuCount === n ? ' jp-mod-active' : ''}${family && !offer ? ' jp-mod-none' : ''}`}
                  onClick={() => model.updateForm({ gpuCount: n })}
                >
                  {n}
                </button>
              );
            })}
          </div>
        </div>
        <FieldError id="gpuoutlet-count-error" text={problem('gpuCount')} />

        <TemplateField model={model} error={problem('templateId')} />

        <Field label="Region" errorId="gpuoutlet-region-error" error={problem('region')}>
          <select
            className="jp-mod-styled"
            name="region"
            value={form.region}
            onChange={e => model.updateForm({ region: e.target.value })}
          >
            <option value="">Any (cheapest)</option>
            {form.region && !regions.some(r => r.code === form.region) && (
              <option value={form.region}>{form.region}</option>
            )}
            {regions.map(r => (
              <option key={r.code} value={r.code}>
                {r.label}
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

        {(idleDefault !== null || form.idleStopMinutes.trim() !== '') && (
          <Field
            label="…unless a GPU is busier than (%)"
            errorId="gpuoutlet-gpu-util-error"
            error={problem('idleGpuUtil')}
            hint={
              <div id="gpuoutlet-gpu-util-hint" className="jp-GpuOutlet-hint">
                Idle only if its GPUs also stayed under this utilisation (a job started over plain
                ssh then keeps it). Empty: this server&apos;s default (
                {gpuDefault === null ? 'GPUs do not count' : `${gpuDefault} %`}); 0: GPUs do not
                count.
              </div>
            }
          >
            <input
              className="jp-mod-styled"
              type="number"
              min="0"
              max="100"
              step="any"
              placeholder={gpuDefault === null ? 'default: off' : `default: ${gpuDefault}`}
              aria-describedby="gpuoutlet-gpu-util-hint gpuoutlet-gpu-util-error"
              {...bind('idleGpuUtil')}
            />
          </Field>
        )}

        <QuoteBox model={model} />

        {model.launchNote && !model.launchError && (
          <Notice level="info" code="create_note" className="jp-GpuOutlet-launchNote">
            {model.launchNote}
          </Notice>
        )}

        {model.launchError && model.launchError.kind !== 'session_expired' && (
          <ErrorBox
            error={model.launchError}
            className="jp-GpuOutlet-launchError"
            onDismiss={() => model.dismissLaunchError()}
            onSuggestion={id => model.updateForm({ familyId: id })}
          />
        )}

        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-GpuOutlet-primary"
          disabled={!model.canLaunch}
        >
          {model.launching
            ? 'Renting…'
            : price !== undefined
              ? `Rent GPU · ${formatRate(price)}`
              : 'Rent GPU'}
        </button>
      </form>
    </section>
  );
}

/**
 * The regions a create of this family and count can name: ISO country codes (what the API's
 * `region` takes), each with the display regions of its offers ("US: US-East, US-West").
 */
export function regionChoices(
  family: IFamilyView | null,
  gpuCount: number
): { code: string; label: string }[] {
  if (!family) {
    return [];
  }
  const offer = family.offers.find(o => o.gpuCount === gpuCount);
  const of = (regions: string[], code: string) =>
    regions.filter(r => r.toUpperCase().startsWith(`${code.toUpperCase()}-`));
  const choices: { code: string; label: string }[] = [];
  for (const code of family.regionCodes) {
    const named = of(offer ? offer.regions : family.regions, code);
    // A country none of this count's offers is in would only get `model_unavailable`.
    if (offer && named.length === 0 && of(family.regions, code).length > 0) {
      continue;
    }
    choices.push({ code, label: named.length ? `${code}: ${named.join(', ')}` : code });
  }
  return choices;
}
