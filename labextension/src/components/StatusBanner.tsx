import * as React from 'react';

import { IErrorInfo } from '../errors';
import { formatInstant } from '../format';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

export interface IStatusBannerProps {
  model: GpuOutletModel;
}

/**
 * What the server extension says about itself: the rentals API's URL, or why the sidebar
 * cannot work (no extension, no session, cannot start).
 */
export function StatusBanner({ model }: IStatusBannerProps): React.ReactElement | null {
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
      code: status.sidConfigured ? 'not_started' : 'not_configured',
      title: status.sidConfigured
        ? 'The gpuoutlet extension cannot start'
        : 'No gpuoutlet session is configured',
      message:
        status.problem ??
        'Set GPUOUTLET_SID in the environment of the Jupyter server and restart it.'
    };
    return <ErrorBox error={error} />;
  }
  const apiProblem = model.apiProblem;
  const since = model.apiProblemSince;
  return (
    <>
      <div className="jp-GpuOutlet-muted jp-GpuOutlet-api" title={`Session: ${status.sidSource}`}>
        {status.apiUrl}
      </div>
      {apiProblem && (
        // The one place that says it: the wallet, the form and the list below stay quiet.
        <ErrorBox error={apiProblem} className="jp-GpuOutlet-apiProblem">
          <div className="jp-GpuOutlet-muted jp-GpuOutlet-stale">
            {since !== null ? `Not answering since ${formatInstant(since)}. ` : ''}
            What is shown below is what it said last; running rentals go on costing money.
          </div>
        </ErrorBox>
      )}
      {status.stateProblems.length > 0 && (
        <Notice
          level="warn"
          code="state_problems"
          title="Some saved rentals could not be read at start"
        >
          <p>The rentals state file of this Jupyter server was damaged when it started:</p>
          <ul className="jp-GpuOutlet-stateProblems">
            {status.stateProblems.map(problem => (
              <li key={problem}>{problem}</li>
            ))}
          </ul>
        </Notice>
      )}
    </>
  );
}
