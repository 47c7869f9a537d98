// Temp dirs that after() hooks remove (kept when SPOR_E2E_KEEP_TMP is set).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs = new Set();

export async function tempDir(prefix = 'spor-e2e-') {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export async function removeTempDirs() {
  if (process.env.SPOR_E2E_KEEP_TMP) {
    for (const d of dirs) process.stderr.write(`keeping ${d}\n`);
    return;
  }
  await Promise.all([...dirs].map((d) => rm(d, { recursive: true, force: true })));
  dirs.clear();
}
