import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The UI is built into static files that Grantry serves at `/`, on the same origin as its API, so
 * the browser never needs CORS and the OAuth redirect page can `postMessage` to its opener.
 * `npm run dev` users can point the dev server's proxy at a running Grantry with GRANTRY_URL.
 */
const grantry = process.env.GRANTRY_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/api': grantry,
      '/oauth': grantry,
    },
  },
});
