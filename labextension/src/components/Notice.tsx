import * as React from 'react';

export interface INoticeProps {
  /** `warn`: act soon; `info`: for the record. */
  level: 'warn' | 'info';
  /** A stable name for tests and styles (`open_invoices`, `key_not_on_account`, ...). */
  code: string;
  title?: string;
  children: React.ReactNode;
  className?: string;
}

/** A warning or a note that is not an error: a coloured edge, a headline, the text, buttons. */
export function Notice({
  level,
  code,
  title,
  children,
  className
}: INoticeProps): React.ReactElement {
  return (
    <div
      className={`jp-GpuOutlet-notice jp-mod-${level} ${className ?? ''}`}
      role={level === 'warn' ? 'alert' : 'status'}
      data-notice={code}
    >
      {title && <div className="jp-GpuOutlet-noticeTitle">{title}</div>}
      <div className="jp-GpuOutlet-noticeText">{children}</div>
    </div>
  );
}
