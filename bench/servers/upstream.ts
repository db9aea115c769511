/**
 * The third-party API of the suite: test/support's API server (HTTPS with the test CA, or plain
 * HTTP with `--http`), accepting any bearer token, in a process of its own.
 */
import { startApiServer } from '../../test/support/api-server.js';
import { serveParent } from '../child-process.js';

const http = process.argv.includes('--http');
const api = await startApiServer({ verify: async () => true, http });
// The fixture records every request for tests; a benchmark sends hundreds of thousands.
setInterval(() => api.reset(), 500).unref();
serveParent({ url: api.url }, {}, () => api.close());
