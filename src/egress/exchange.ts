import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { classifyNetworkError } from './egress.js';
import { EgressError } from './egress-error.js';

/** One request as the connector pipeline sends it: origin and path already vetted and resolved. */
export interface ExchangeRequest {
  /** `scheme://host[:port]` of a URL that passed `Egress.checkUrl` (or a vetted base URL). */
  readonly origin: string;
  /** `host[:port]`, for failure messages. */
  readonly host: string;
  /** Path and query, percent-encoded. */
  readonly path: string;
  readonly method: string;
  /** Field list `[name, value, name, value, …]`, as undici takes it without another copy. */
  readonly headers: readonly string[];
  readonly body: string | Buffer | Readable | null;
}

/** Status and fields of an answer; names lower-cased, repeated fields as arrays (undici's parse). */
export interface ResponseHead {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Told each part of an answer's body, in order. */
export interface BodyReceiver {
  /** A chunk; `false` asks for a pause until {@link UpstreamExchange.resume}. */
  chunk(data: Buffer): boolean;
  /**
   * The body is complete. `last`: its final chunk, when the body had already ended before the
   * receiver was attached (a small answer arrives with its head) — the proxy then writes it and
   * ends its own answer in one call.
   */
  end(last?: Buffer): void;
  /** The body could not be read to the end (connection lost, deadline, too slow). */
  fail(error: EgressError): void;
}

/** Body bytes held for a receiver that is not attached yet, before the connection is paused. */
const HELD_BEFORE_PAUSE = 64 * 1024;

type Phase = 'head' | 'body' | 'done';

/**
 * One HTTP exchange on an undici dispatcher, driven by undici's handler callbacks rather than by
 * `request()`: no async resource, no body stream and no promise per chunk stand between the
 * socket and whoever takes the answer (the proxy writes chunks straight to its caller's socket).
 *
 * The deadline covers the whole exchange: waiting for a connection, connecting, TLS, sending,
 * the response head and the body. It is a timer of its own because undici only honours an abort
 * once a connection is ready — a `signal` that fires while a TLS handshake hangs is noticed when
 * the connect timeout (10 s) ends it, so a 300 ms connector timeout took 10.5 s. When the deadline
 * (or {@link abort}) comes first, the request is marked so undici drops it before a byte is
 * written if a connection turns up later: the API never sees a call whose caller was already
 * answered.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  /** Resolves with the answer's head, or rejects with an EgressError when none comes. */
  readonly head: Promise<ResponseHead>;
  readonly #host: string;
  #phase: Phase = 'head';
  #controller: Dispatcher.DispatchController | null = null;
  /** Set when the exchange was ended from our side before undici handed over its controller. */
  #cancelled: Error | null = null;
  #timer: NodeJS.Timeout | null;
  #resolveHead!: (head: ResponseHead) => void;
  #rejectHead!: (error: EgressError) => void;
  #receiver: BodyReceiver | null = null;
  /** Chunks that came before a receiver was attached, and whether the body already ended or failed. */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  #ended = false;
  #failure: EgressError | null = null;

  constructor(dispatcher: Dispatcher, request: ExchangeRequest, deadlineAt: number) {
    this.#host = request.host;
    this.head = new Promise<ResponseHead>((resolve, reject) => {
      this.#resolveHead = resolve;
      this.#rejectHead = reject;
    });
    const left = deadlineAt - Date.now();
    if (left <= 0) {
      // Past the deadline already (a retry's pause, a slow credential): nothing is sent.
      this.#timer = null;
      this.#fail(new EgressError('timeout', this.#host, `${this.#host} did not answer in time`));
      return;
    }
    this.#timer = setTimeout(() => this.#expire(), left);
    try {
      dispatcher.dispatch(
        {
          origin: request.origin,
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers: request.headers as string[],
          body: request.body,
        },
        this,
      );
    } catch (error) {
      this.#fail(classifyNetworkError(error, this.#host));
    }
  }

  /**
   * Starts delivering the body to `receiver` (chunks held so far first). Called once, after
   * `head` resolved.
   */
  receive(receiver: BodyReceiver): void {
    this.#receiver = receiver;
    let more = true;
    const held = this.#held;
    // A complete body hands its last chunk over with the end.
    const last = held !== null && this.#ended ? held.pop() : undefined;
    if (held !== null) {
      this.#held = null;
      this.#heldBytes = 0;
      for (const chunk of held) more = receiver.chunk(chunk) && more;
      // The receiver gave up on the body while taking what was held (`discard` past its limit).
      if (this.#receiver !== receiver) return;
    }
    if (this.#failure !== null) receiver.fail(this.#failure);
    else if (this.#ended) receiver.end(last);
    else if (more) this.#controller?.resume();
    else this.#controller?.pause();
  }

  /** Continues after a receiver asked for a pause. */
  resume(): void {
    this.#controller?.resume();
  }

  /**
   * Ends the exchange from our side (the caller went away, or the body is not wanted): the
   * connection is closed unless the answer was complete. With a `failure`, whoever takes the body
   * (attached now or later) is told it; without one, no receiver is told (the body is not wanted).
   */
  abort(failure?: EgressError): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#clearTimer();
    const receiver = this.#receiver;
    this.#receiver = null;
    const reason = failure ?? new EgressError('other', this.#host, 'the exchange was abandoned');
    // Settled, so that nothing waits on a head that will not come.
    this.#rejectHead(reason);
    this.head.catch(() => {});
    if (this.#controller !== null) this.#controller.abort(reason);
    else this.#cancelled = reason;
    if (failure !== undefined) {
      this.#failure = failure;
      receiver?.fail(failure);
    }
  }

  /**
   * Reads the rest of an unwanted body of at most `limit` bytes so its connection goes back to
   * the pool; a longer one is cut (its connection closed), as reading it would cost more.
   */
  discard(limit: number): void {
    let read = 0;
    this.receive({
      chunk: (data) => {
        read += data.length;
        if (read > limit) this.abort();
        return true;
      },
      end: () => {},
      fail: () => {},
    });
  }

  // undici's handler callbacks (Dispatcher.DispatchHandler).

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#cancelled !== null) {
      controller.abort(this.#cancelled);
      return;
    }
    this.#controller = controller;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx (103 Early Hints): informational, the final answer follows (RFC 9110 §15.2).
    if (statusCode < 200 || this.#phase !== 'head') return;
    this.#phase = 'body';
    this.#controller = controller;
    this.#resolveHead({ status: statusCode, headers });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const receiver = this.#receiver;
    if (receiver !== null) {
      if (!receiver.chunk(chunk)) controller.pause();
      return;
    }
    if (this.#phase === 'done') return;
    if (this.#held === null) this.#held = [chunk];
    else this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes > HELD_BEFORE_PAUSE) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#clearTimer();
    this.#ended = true;
    this.#receiver?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#fail(classifyNetworkError(error, this.#host));
  }

  #expire(): void {
    this.#timer = null;
    const error = new EgressError('timeout', this.#host, `${this.#host} did not answer in time`);
    // The timer may fire while undici still connects: answer now, and have the request dropped
    // unsent if a connection turns up later.
    if (this.#controller === null) this.#cancelled = error;
    else this.#controller.abort(error);
    this.#fail(error);
  }

  #fail(error: EgressError): void {
    if (this.#phase === 'done') return;
    const before = this.#phase;
    this.#phase = 'done';
    this.#clearTimer();
    if (before === 'head') {
      this.#rejectHead(error);
      return;
    }
    this.#failure = error;
    this.#receiver?.fail(error);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
