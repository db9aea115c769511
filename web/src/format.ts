import { KINDS } from '../../src/services/catalogue/index.js';
import type { AuthenticationStatus, AuthenticationView, GrantType } from './api-client.js';

export const grantTypeLabels: Record<GrantType, string> = {
  client_credentials: 'Client Credentials',
  password: 'Password Grant',
  authorization_code: 'Authorization Code',
  jwt_bearer: 'JWT Bearer',
};

/** "OAuth 2.0 · Client Credentials", "API Key", "Basic Auth": what an authentication is, in a few words. */
export function kindLabel(view: Pick<AuthenticationView, 'type' | 'grantType'>): string {
  const kind = KINDS[view.type].label;
  return view.grantType === undefined ? kind : `${kind} · ${grantTypeLabels[view.grantType]}`;
}

export const statusLabels: Record<AuthenticationStatus, string> = {
  ready: 'Ready',
  connected: 'Connected',
  needs_authorization: 'Needs authorization',
  error: 'Error',
};

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatDateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "in 59 minutes", "3 minutes ago": how a person reads an expiry at a glance. */
export function formatRelative(iso: string, now: number = Date.now()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const seconds = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  // Thresholds as people round: 59 minutes reads "in 1 hour", 23 hours reads "tomorrow".
  if (abs < 45) return relative.format(seconds, 'second');
  if (abs < 45 * 60) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 22 * 3600) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

export function formatExpiry(expiresAt: string | null | undefined): string {
  if (expiresAt === undefined) return '—';
  if (expiresAt === null) return 'No expiry given';
  const expired = new Date(expiresAt).getTime() <= Date.now();
  // An expired token is not a problem: say what happens next, not only that it is old.
  return expired
    ? `Expired ${formatRelative(expiresAt)}; a new one is fetched on the next call`
    : `Expires ${formatRelative(expiresAt)}`;
}

export function prettyJson(value: unknown): string {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  if (value === undefined) return '';
  return JSON.stringify(value, null, 2);
}
