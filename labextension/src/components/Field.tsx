import * as React from 'react';

import { FieldError } from './FieldError';

export interface IFieldProps {
  /** What the label says (text, or text with a counter). */
  label: React.ReactNode;
  /** The id of the error line below the field. */
  errorId: string;
  /** What is wrong with the value, if anything. */
  error?: string;
  /** A line between the field and its error (a hint). */
  hint?: React.ReactNode;
  /** The control: an input or a select (with its datalist, if any). */
  children: React.ReactNode;
}

/** One labelled field of the launch form, then its hint and its error. */
export function Field({ label, errorId, error, hint, children }: IFieldProps): React.ReactElement {
  return (
    <>
      <label className="jp-GpuOutlet-field">
        <span className="jp-GpuOutlet-label">{label}</span>
        {children}
      </label>
      {hint}
      <FieldError id={errorId} text={error} />
    </>
  );
}
