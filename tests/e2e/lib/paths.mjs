// Where the binaries under test are: $SPOR_COMPANIOND / $SPOR_SANDBOX, or the
// workspace's target/debug.
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
export const REPO_ROOT = resolve(here, '../../..');

export const COMPANIOND = process.env.SPOR_COMPANIOND ?? resolve(REPO_ROOT, 'target/debug/spor-companiond');
export const SANDBOX = process.env.SPOR_SANDBOX ?? resolve(REPO_ROOT, 'target/debug/spor-sandbox');
// A companion whose document fetcher reaches a local HTTPS server (an
// example built with the tests: crates/companion/examples/cimd_companion.rs).
export const CIMD_COMPANION = process.env.SPOR_CIMD_COMPANION ?? resolve(REPO_ROOT, 'target/debug/examples/cimd_companion');
