/**
 * The sidebar's Lumino widget: a ReactWidget around the `Sidebar` component (src/components/).
 * All state lives in GpuOutletModel; the components only read it and call its methods.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { OpenNotebook } from './components/RentalCard';
import { Sidebar } from './components/Sidebar';
import { gpuIcon } from './icon';
import { GpuOutletModel } from './model';

export namespace GpuOutletPanel {
  export interface IOptions {
    model: GpuOutletModel;
    /** Open a new notebook with this kernelspec (the "Open a notebook on this GPU" button). */
    openNotebook: OpenNotebook;
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

  private _openNotebook: OpenNotebook;
}
