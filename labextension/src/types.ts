/**
 * The sidebar's types. The REST replies of the server extension (`{base_url}gpuoutlet/api/`)
 * are generated from its pydantic models (src/generated/rest.ts, `jlpm rest-types`) and only
 * re-exported here; this file adds what is not a reply: the create body and the form.
 */
export type {
  IAddKeyReply,
  IApiProblemView,
  IAuthView,
  ICodeSentReply,
  ICreateReply,
  IErrorBody,
  IErrorReply,
  IFamiliesView,
  IFamilyView,
  IFieldProblem,
  IForwardsView,
  IForwardView,
  IGpuInfo,
  IGpuReading,
  IIdleStopView,
  IKernelShutDownReply,
  IKernelsView,
  IKernelView,
  IKeysView,
  IKeyView,
  ILocalKeyView,
  INotice,
  IOfferView,
  IPendingCreateView,
  IPortsView,
  IPreviewView,
  IProvisioningView,
  IQuoteView,
  IReattachReply,
  IRentalsView,
  IRentalView,
  ISaveSizeView,
  ISaveView,
  ISessionView,
  ISettleReply,
  ISignedInReply,
  ISignedOutReply,
  ISSHView,
  IStatusView,
  IStopReply,
  IStopView,
  ITelemetrySample,
  ITelemetryView,
  ITemplatesView,
  ITemplateView,
  ITransferReply,
  ITransferView,
  IWalletView
} from './generated/rest';

/** Rental statuses the API documents (others may come; they are shown as they are). */
export type RentalStatus = 'provisioning' | 'running' | 'failed' | 'stopping' | 'stopped' | string;

/**
 * The body of `POST rentals` and `POST rentals/preview` (camelCase, as the rentals API's own
 * create body, plus the server's `idleStopMinutes`).
 */
export interface ILaunchRequest {
  familyId: string;
  gpuCount: number;
  templateId?: string;
  region?: string;
  name?: string;
  autoStopAfterHours?: number;
  /** Minutes without activity before the server stops it; 0 = off; absent = server default. */
  idleStopMinutes?: number;
  /** GPU utilisation (percent) that counts as activity too; 0 = GPUs do not count. */
  idleGpuUtil?: number;
}

/** What the launch form holds; numbers stay strings until they are validated. */
export interface ILaunchForm {
  familyId: string;
  gpuCount: number;
  templateId: string;
  region: string;
  name: string;
  autoStopAfterHours: string;
  /** Empty: the server's default. */
  idleStopMinutes: string;
  /** Empty: the server's default. */
  idleGpuUtil: string;
}
