import * as React from 'react';

import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

export interface IKeyWarningProps {
  model: GpuOutletModel;
}

/**
 * The SSH key check, before any create: gpuoutlet copies the account's keys into a pod only
 * when it is created, so a pod made while this server's key is not on the account would never
 * let it in. "Add this key" posts the public key through the server (which reads the file).
 */
export function KeyWarning({ model }: IKeyWarningProps): React.ReactElement | null {
  const local = model.keys?.local;
  if (model.keyMissing && local) {
    return (
      <Notice
        level="warn"
        code="key_not_on_account"
        title="Your SSH key is not on your gpuoutlet account"
        className="jp-GpuOutlet-keyWarning"
      >
        <p>
          A pod lets in only the keys the account has when it is created, so you could not reach a
          GPU rented now. Add this server&apos;s key first (only the public half is sent):
        </p>
        <p className="jp-GpuOutlet-keyId">
          <code>{local.fingerprint}</code> ({local.algorithm}
          {local.comment ? `, ${local.comment}` : ''}) from <code>{local.publicKeyFile}</code>
        </p>
        <button
          type="button"
          className="jp-GpuOutlet-button jp-GpuOutlet-addKey"
          disabled={model.addingKey}
          onClick={() => void model.addKey()}
        >
          {model.addingKey ? 'Adding…' : 'Add this key'}
        </button>
        {model.addKeyError && <ErrorBox error={model.addKeyError} />}
      </Notice>
    );
  }
  if (model.addKeyNote && local?.onAccount) {
    return (
      <Notice level="info" code="key_added" className="jp-GpuOutlet-keyAdded">
        {model.addKeyNote}
      </Notice>
    );
  }
  return null;
}
