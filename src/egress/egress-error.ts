/**
 * Why an outbound request failed before any HTTP response existed. Callers (oauth/, connectors/)
 * turn this into a diagnosis; `kind` is stable, `message` is safe to show.
 */
export type EgressFailureKind =
  | 'denied' // the egress policy refused the destination address (before any byte was sent)
  | 'insecure_url' // not https, and not an allowed loopback http URL
  | 'dns' // the host name did not resolve
  | 'refused' // connection refused
  | 'unreachable' // no route, host down, network unreachable
  | 'reset' // the connection closed or reset mid-request
  | 'tls' // certificate or TLS handshake failure
  | 'timeout' // connect, headers or body timeout
  | 'too_large' // the response exceeded the size cap
  | 'other';

export class EgressError extends Error {
  readonly kind: EgressFailureKind;
  /** Host (and port) the request was for, safe to show. */
  readonly host: string;

  constructor(kind: EgressFailureKind, host: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EgressError';
    this.kind = kind;
    this.host = host;
  }
}
