import { isRedirect } from '../egress/egress.js';
import type { EgressFailureKind } from '../egress/egress-error.js';
import { retryAfterMs } from '../egress/retry-after.js';
import {
  backoffMs,
  IDEMPOTENT_METHODS,
  isSafeToRetry,
  type RedirectPolicy,
  type RetryPolicy,
} from './call-policy.js';
import type { RefusalVerdict } from './credential-source.js';

/** Where a call stands after an attempt: what it has already used up. */
export interface CallProgress {
  /** Requests sent so far, the one just answered included. */
  readonly attempts: number;
  /** Retries made after failures and retryable statuses. */
  readonly retries: number;
  readonly redirects: number;
  /** The credential was already replaced once in this call (never twice: no loops). */
  readonly credentialReplaced: boolean;
}

/** What the pipeline knows about the call itself. */
export interface CallShape {
  readonly method: string;
  /** The body can be sent again (see REPLAYABLE_BODY_BYTES). */
  readonly replayable: boolean;
  /** Time left before the call's deadline. */
  readonly msLeft: number;
}

/** The rules of one entry point (execute and test, or the proxy). */
export interface CallRules {
  readonly retry: RetryPolicy;
  readonly redirects: RedirectPolicy;
}

/** An attempt that got no answer. */
export interface FailedOutcome {
  readonly kind: 'failed';
  readonly failure: EgressFailureKind;
}

/** An attempt the API answered. */
export interface AnsweredOutcome {
  readonly kind: 'answered';
  readonly status: number;
  /** Set when the answer refused the credential sent (a status of `refreshOn`), with the source's verdict. */
  readonly refusal: RefusalVerdict | null;
  readonly location: string | undefined;
  readonly retryAfter: string | undefined;
}

/** What happened to an attempt. */
export type AttemptOutcome = FailedOutcome | AnsweredOutcome;

/** Send again after a pause. */
export interface RetryDecision {
  readonly kind: 'retry';
  readonly afterMs: number;
}

/** After a failure: send again, or the failure is the result. */
export type FailureDecision = RetryDecision | { readonly kind: 'give-up' };

/** After an answer: an answer is always delivered in the end, never given up on. */
export type AnswerDecision =
  /** Hand the answer to the caller. `replaceCredential`: fetch a fresh credential for the next call meanwhile. */
  | { readonly kind: 'deliver'; readonly replaceCredential: boolean }
  /** The credential was refused: drop it, get another, send the same request again. */
  | { readonly kind: 'replace-credential' }
  | RetryDecision
  /** Follow the redirect to `location`. */
  | { readonly kind: 'follow'; readonly location: string };

export type Decision = FailureDecision | AnswerDecision;

const DELIVER: AnswerDecision = { kind: 'deliver', replaceCredential: false };

/**
 * What to do after an attempt — a pure function of the outcome, what the call has used up and the
 * entry point's rules, so each rule is a tested value rather than a branch in a loop:
 *
 * 1. a connection failure is retried when it is safe (`isSafeToRetry`) and the backoff fits the
 *    deadline; otherwise the call fails;
 * 2. a refused credential is replaced once per call when the source allows it, and the request
 *    sent again if its body can be; a body that cannot be replayed is answered as it is, and the
 *    credential replaced for the calls that follow;
 * 3. a redirect is followed when the policy follows the method;
 * 4. a retryable status of an idempotent call is retried after its Retry-After (or the backoff)
 *    when that fits both the policy and the deadline;
 * 5. anything else is the answer.
 */
export function decide(
  outcome: FailedOutcome,
  progress: CallProgress,
  call: CallShape,
  rules: CallRules,
  random?: () => number,
): FailureDecision;
export function decide(
  outcome: AnsweredOutcome,
  progress: CallProgress,
  call: CallShape,
  rules: CallRules,
  random?: () => number,
): AnswerDecision;
export function decide(
  outcome: AttemptOutcome,
  progress: CallProgress,
  call: CallShape,
  rules: CallRules,
  random?: () => number,
): Decision;
export function decide(
  outcome: AttemptOutcome,
  progress: CallProgress,
  call: CallShape,
  rules: CallRules,
  random: () => number = Math.random,
): Decision {
  const { retry, redirects } = rules;
  if (outcome.kind === 'failed') {
    if (!isSafeToRetry(outcome.failure, call.method, call.replayable) || progress.retries >= retry.retries) {
      return { kind: 'give-up' };
    }
    const wait = backoffMs(retry, progress.retries, random);
    return wait < call.msLeft ? { kind: 'retry', afterMs: wait } : { kind: 'give-up' };
  }

  const { status, refusal } = outcome;
  if (refusal?.mayReplace && !progress.credentialReplaced) {
    return call.replayable ? { kind: 'replace-credential' } : { kind: 'deliver', replaceCredential: true };
  }
  if (
    isRedirect(status) &&
    outcome.location !== undefined &&
    redirects.methods.has(call.method) &&
    progress.redirects < redirects.maxRedirects
  ) {
    return { kind: 'follow', location: outcome.location };
  }
  if (
    retry.statuses.has(status) &&
    IDEMPOTENT_METHODS.has(call.method) &&
    call.replayable &&
    progress.retries < retry.retries
  ) {
    const wait = retryAfterMs(outcome.retryAfter) ?? backoffMs(retry, progress.retries, random);
    if (wait <= retry.maxRetryAfterMs && wait < call.msLeft) return { kind: 'retry', afterMs: wait };
  }
  return DELIVER;
}
