// Failure diagnostics: process logs, page text and a screenshot under
// tests/e2e/artifacts/<name>/ (git-ignored), plus the tails in the error.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ARTIFACTS_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../artifacts');

/**
 * Run `fn`; if it throws, save diagnostics for `procs` and `page` and rethrow
 * with the process tails appended to the message.
 */
export async function withDiagnostics(name, { procs = () => [], page = () => undefined }, fn) {
  try {
    return await fn();
  } catch (err) {
    const dir = join(ARTIFACTS_DIR, name.replace(/[^A-Za-z0-9._-]+/g, '_'));
    const notes = [];
    try {
      await mkdir(dir, { recursive: true });
      for (const p of procs()) {
        if (!p) continue;
        await writeFile(join(dir, `${p.name}.log`), p.output.map((o) => `[${o.stream}] ${o.line}`).join('\n') + '\n');
        notes.push(`--- ${p.name} (last lines; full log in ${join(dir, `${p.name}.log`)}) ---\n${p.tail(30)}`);
      }
      const pg = page();
      if (pg && !pg.isClosed()) {
        const url = pg.url();
        const text = await pg.locator('body').innerText({ timeout: 2_000 }).catch(() => '(no body)');
        await writeFile(join(dir, 'page.txt'), `${url}\n\n${text}\n`);
        await pg.screenshot({ path: join(dir, 'page.png'), fullPage: true, timeout: 5_000 }).catch(() => {});
        notes.push(`--- browser page ${url} ---\n${text.slice(0, 2_000)}`);
      }
    } catch (e) {
      notes.push(`(could not save diagnostics: ${e.message})`);
    }
    if (err && typeof err === 'object' && notes.length) {
      try { err.message = `${err.message}\n\n${notes.join('\n\n')}`; } catch { /* read-only message */ }
    }
    throw err;
  }
}
