/** `/api`, `/proxy` and `/metrics` need an API key; the rest is public (API.md "Access"). */
export function isProtected(path: string): boolean {
  return (
    path === '/api' ||
    path.startsWith('/api/') ||
    path.startsWith('/proxy/') ||
    path === '/metrics' ||
    path.startsWith('/metrics/')
  );
}
