/**
 * gpuoutlet-jupyter: a JupyterLab sidebar to rent GPUs through the gpuoutlet server extension.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  ISessionContextDialogs,
  Notification,
  SessionContextDialogs
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ReadonlyJSONObject } from '@lumino/coreutils';

import { pickAndStop } from './actions';
import { gpuIcon } from './icon';
import { confirmShutDown, openReattached } from './kernelActions';
import { KernelsModel } from './kernels';
import { RentalKernelWatch } from './endedKernels';
import { DEFAULT_LONG_POLL_SECONDS, DEFAULT_REFRESH_INTERVAL, GpuOutletModel } from './model';
import { requestAPI } from './request';
import { IRentalsView } from './types';
import { formFromArgs } from './validation';

export { formFromArgs };
import { GpuOutletPanel } from './widget';

export const PLUGIN_ID = 'gpuoutlet-jupyter:plugin';

export namespace CommandIDs {
  export const rent = 'gpuoutlet:rent';
  export const stop = 'gpuoutlet:stop';
  export const openNotebook = 'gpuoutlet:open-notebook';
}

const CATEGORY = 'GPU Outlet';

/** The arguments of "Rent a GPU…": fill in the launch form (nothing is rented by the command). */
const RENT_ARGS: ReadonlyJSONObject = {
  type: 'object',
  properties: {
    familyId: { type: 'string', description: 'GPU family, e.g. rtx-4090' },
    gpuCount: { type: 'number', description: 'GPUs: 1, 2, 4 or 8' },
    templateId: { type: 'string', description: 'One of the six templates, e.g. pytorch' },
    region: { type: 'string', description: 'ISO country code or broad region (us, eu, apac)' },
    name: { type: 'string', description: 'A label, at most 64 characters' }
  }
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Rent a GPU from JupyterLab: launch form, wallet, live rentals, SSH and kernels.',
  autoStart: true,
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer, ILabShell, ISessionContextDialogs],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    sessionDialogs: ISessionContextDialogs | null
  ) => {
    const model = new GpuOutletModel({
      request: (path, init, endpoint) => requestAPI(path, init, endpoint),
      refreshInterval: DEFAULT_REFRESH_INTERVAL,
      longPollSeconds: DEFAULT_LONG_POLL_SECONDS,
      // The panel starts hidden in the sidebar; it tells the model when it is shown.
      visible: false
    });
    // The rentals' remote kernels: one long-poll, shown under the cards.
    const kernels = new KernelsModel({
      request: (path, init, endpoint) => requestAPI(path, init, endpoint),
      longPollSeconds: DEFAULT_LONG_POLL_SECONDS,
      visible: false
    });
    const panel = new GpuOutletPanel({
      model,
      openNotebook: kernel => app.commands.execute(CommandIDs.openNotebook, { kernel }),
      kernels: {
        model: kernels,
        openReattached: reply => openReattached(app, reply),
        confirmShutDown
      }
    });
    app.shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, 'gpuoutlet-sidebar');

    app.commands.addCommand(CommandIDs.rent, {
      label: 'Rent a GPU…',
      caption:
        'Open the GPU rentals sidebar on its launch form (optionally filled in: familyId, ' +
        'gpuCount, templateId, region, name)',
      icon: gpuIcon,
      describedBy: { args: RENT_ARGS },
      execute: args => {
        const prefill = formFromArgs(args);
        if (prefill) {
          model.updateForm(prefill);
        }
        app.shell.activateById(panel.id);
        void model.refreshNow();
        window.requestAnimationFrame(() => panel.focusLaunchForm());
      }
    });
    app.commands.addCommand(CommandIDs.stop, {
      label: 'Stop a GPU rental…',
      caption: 'Pick one of your running GPU rentals and stop it',
      execute: () => pickAndStop(model)
    });
    app.commands.addCommand(CommandIDs.openNotebook, {
      label: 'Open a notebook on this GPU',
      execute: async args => {
        const kernel = String(args.kernel ?? '');
        if (!kernel) {
          return;
        }
        // The kernelspec was written when the rental came up: make sure the page knows it.
        await app.serviceManager.kernelspecs.refreshSpecs();
        return app.commands.execute('notebook:create-new', { kernelName: kernel });
      }
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.rent, category: CATEGORY });
      palette.addItem({ command: CommandIDs.stop, category: CATEGORY });
    }

    // A notebook whose kernel ran on a rental that ended is told so (src/endedKernels.ts).
    const dialogs = sessionDialogs ?? new SessionContextDialogs();
    const endedWatch = new RentalKernelWatch({
      listRentals: () => requestAPI<IRentalsView>('rentals', {}, 'rentals'),
      selectKernel: context => dialogs.selectKernel(context),
      notify: (message, select) => {
        Notification.warning(message, {
          autoClose: false,
          actions: [{ label: 'Pick another kernel…', callback: select, displayType: 'accent' }]
        });
      }
    });
    const watchMain = () => endedWatch.watchAll(app.shell.widgets('main'));
    labShell?.layoutModified.connect(watchMain);
    void app.restored.then(watchMain);

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        model.configure({
          refreshInterval: settings.get('refreshInterval').composite as number,
          longPollSeconds: settings.get('longPollSeconds').composite as number
        });
        kernels.configure({ longPollSeconds: settings.get('longPollSeconds').composite as number });
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('gpuoutlet-jupyter: could not load the settings.', reason);
        });
    }
  }
};

export default plugin;
