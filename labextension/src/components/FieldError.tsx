import * as React from 'react';

export interface IFieldErrorProps {
  /** The element id the field's `aria-describedby` names. */
  id: string;
  text?: string;
}

/** What is wrong with one field of the launch form; nothing when it is fine. */
export function FieldError({ id, text }: IFieldErrorProps): React.ReactElement | null {
  return text ? (
    <div id={id} className="jp-GpuOutlet-fieldError" role="alert">
      {text}
    </div>
  ) : null;
}
