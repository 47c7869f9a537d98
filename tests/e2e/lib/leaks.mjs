// Leak checks: no secret in a process's output or in files on disk.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { readAllFiles } from './companion.mjs';

/** A label for a secret that does not reveal it in a failure message. */
function describeSecret(name, value) {
  return `${name} (${value.slice(0, 9)}…, ${value.length} chars)`;
}

/** Assert none of `secrets` ({name: value}) occurs in any output line of `proc`. */
export function assertNoSecretsInOutput(proc, secrets) {
  assert.ok(proc.output.length > 0 || proc.exited, `${proc.name}: no output captured at all`);
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(value && value.length >= 8, `secret ${name} is empty or too short to check`);
    const hits = proc.output.filter((o) => o.line.includes(value));
    assert.equal(hits.length, 0, `${describeSecret(name, value)} leaked in ${hits.length} line(s) of ${proc.name}'s ${hits[0]?.stream}`);
  }
}

/**
 * Assert none of `secrets` occurs in any file under `dir` (bytes, so SQLite
 * pages and WAL files count), except where `allowed(fileBasename, secretName)`.
 * Returns the files read.
 */
export async function assertNoSecretsInFiles(dir, secrets, allowed = () => false) {
  const files = await readAllFiles(dir);
  assert.ok(files.length > 0, `no files under ${dir}`);
  for (const [name, value] of Object.entries(secrets)) {
    const needle = Buffer.from(value, 'utf8');
    for (const f of files) {
      if (allowed(basename(f.path), name)) continue;
      assert.ok(!f.bytes.includes(needle), `${describeSecret(name, value)} found on disk in ${f.path}`);
    }
  }
  return files;
}
