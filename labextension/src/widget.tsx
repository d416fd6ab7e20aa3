/**
 * The sidebar's Lumino widget: a ReactWidget around the `Sidebar` component (src/components/).
 * All state lives in GpuOutletModel; the components only read it and call its methods.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { OpenNotebook } from './components/RentalCard';
import { IKernelsContext, KernelsContext } from './components/RentalKernels';
import { Sidebar } from './components/Sidebar';
import { gpuIcon } from './icon';
import { GpuOutletModel } from './model';

export namespace GpuOutletPanel {
  export interface IOptions {
    model: GpuOutletModel;
    /** Open a new notebook with this kernelspec (the "Open a notebook on this GPU" button). */
    openNotebook: OpenNotebook;
    /** The rentals' remote kernels, shown under their cards (Reattach, Shut down). */
    kernels?: IKernelsContext;
  }
}

/** The sidebar panel. Shown or hidden, it tells the model, whose polls then stand by. */
export class GpuOutletPanel extends ReactWidget {
  constructor(options: GpuOutletPanel.IOptions) {
    super();
    this.model = options.model;
    this._openNotebook = options.openNotebook;
    this._kernels = options.kernels ?? null;
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
    this._kernels?.model.setVisible(true);
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.setVisible(false);
    this._kernels?.model.setVisible(false);
  }

  protected render(): React.ReactElement {
    return (
      <KernelsContext.Provider value={this._kernels}>
        <Sidebar model={this.model} openNotebook={this._openNotebook} />
      </KernelsContext.Provider>
    );
  }

  private _openNotebook: OpenNotebook;
  private _kernels: IKernelsContext | null;
}
