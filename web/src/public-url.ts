/**
 * GRANTRY_PUBLIC_URL as the server wrote it into the page (a meta tag): where the OAuth redirect
 * and its browser cookie live, so where Connect must be started from.
 */
export function publicUrl(): string | null {
  const content = document.querySelector('meta[name="grantry-public-url"]')?.getAttribute('content');
  if (!content) return null;
  try {
    return new URL(content).href.replace(/\/+$/, '');
  } catch {
    return null;
  }
}

/** True when this page was opened at another origin than the public URL (Connect cannot work here). */
export function openedElsewhere(): boolean {
  const url = publicUrl();
  return url !== null && new URL(url).origin !== window.location.origin;
}
