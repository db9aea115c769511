import { EgressError } from '../egress/egress-error.js';
import { DEFAULT_TOKEN_TIMEOUT_MS, type TokenRequestOptions } from './client-config.js';

/** The host (and port) of a URL, safe to show; '' when it is none. */
export function hostOf(url: string | undefined): string {
  if (url === undefined) return '';
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** The timeout of one OAuth request (token, revocation, metadata), with the caller's own signal. */
export interface RequestTimeout {
  /** What to send the request with: aborts at the timeout, or when the caller aborts. */
  readonly signal: AbortSignal;
  /** Whether the caller aborted: its abort is its own, passed on unchanged and not diagnosed. */
  callerAborted(): boolean;
  /**
   * What a failed request threw, as the failure to diagnose: when this timeout fired (and the
   * caller did not abort), an `EgressError` of kind `timeout` naming the host, since a fetch only
   * says "aborted"; anything else as it was.
   */
  failure(error: unknown): unknown;
}

export function requestTimeout(
  url: string,
  options: Pick<TokenRequestOptions, 'timeoutMs' | 'signal'>,
  message = 'The endpoint did not answer in time.',
): RequestTimeout {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS);
  const caller = options.signal;
  const callerAborted = (): boolean => caller?.aborted === true;
  return {
    signal: caller === undefined ? timeout : AbortSignal.any([timeout, caller]),
    callerAborted,
    failure(error) {
      if (!timeout.aborted || callerAborted() || error instanceof EgressError) return error;
      return new EgressError('timeout', hostOf(url), message, { cause: error });
    },
  };
}
