import * as React from 'react';

import { GpuOutletModel } from '../model';
import { ITemplateView } from '../types';
import { Field } from './Field';

export interface ITemplateFieldProps {
  model: GpuOutletModel;
  error?: string;
}

/** The six templates in a dropdown, and what the picked one holds and which ports it serves. */
export function TemplateField({ model, error }: ITemplateFieldProps): React.ReactElement {
  const templates = model.templates ?? [];
  const value = model.form.templateId;
  const picked = model.template;
  return (
    <Field
      label="Template"
      errorId="gpuoutlet-template-error"
      error={error}
      hint={
        picked && (
          <div id="gpuoutlet-template-hint" className="jp-GpuOutlet-hint jp-GpuOutlet-templateInfo">
            {picked.contents}. {portsText(picked)}
          </div>
        )
      }
    >
      <select
        className="jp-mod-styled jp-GpuOutlet-templateSelect"
        name="templateId"
        value={value}
        aria-invalid={!!error}
        aria-describedby="gpuoutlet-template-hint gpuoutlet-template-error"
        onChange={e => model.updateForm({ templateId: e.target.value })}
      >
        {!templates.some(t => t.id === value) && (
          <option value={value}>{value || 'Loading templates…'}</option>
        )}
        {templates.map(t => (
          <option key={t.id} value={t.id}>
            {t.title} ({t.id}){t.default ? ' · default' : ''}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** "Serves port 7860 (reach it through SSH).", "No web ports.", or what gpuoutlet says. */
export function portsText(template: ITemplateView): string {
  if (template.ports.length > 0) {
    const ports = template.ports.join(', ');
    return `Serves port${template.ports.length === 1 ? '' : 's'} ${ports} (reach ${template.ports.length === 1 ? 'it' : 'them'} through SSH).`;
  }
  if (template.portsNote) {
    return `Ports: ${template.portsNote}.`;
  }
  return 'No web ports.';
}
