// Writes schemas/policy.schema.json from the zod schema (run after `npx tsc -p .`).
// test/policy.test.ts fails when the checked-in file is stale.
import { writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../dist/src/policy/schema.js';
writeFileSync(new URL('../schemas/policy.schema.json', import.meta.url), `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
