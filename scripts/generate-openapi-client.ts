import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLIENT_TYPES_FILE, generateClientTypes, servedOpenApiDocument } from './openapi-client.js';

// npm run openapi:client — rewrites the console's API types from the document this code serves.
writeFileSync(CLIENT_TYPES_FILE, await generateClientTypes(await servedOpenApiDocument()));
process.stdout.write(`${fileURLToPath(CLIENT_TYPES_FILE)} written\n`);
