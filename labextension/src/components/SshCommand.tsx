import * as React from 'react';

import { copyText } from '../actions';

export interface ISshCommandProps {
  command: string;
}

/** A running rental's SSH command, with a button that copies it (and says so for 2 s). */
export function SshCommand({ command }: ISshCommandProps): React.ReactElement {
  const [copied, setCopied] = React.useState(false);
  return (
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
  );
}
