// The Claude Desktop extension (.mcpb) as the official tooling sees it: the
// pinned `mcpb` CLI (tests/install/package.json) unpacks, describes and
// validates it. Shared by the installed-package test and the bridge e2e.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAllFiles } from '../e2e/lib/companion.mjs';
import { run } from '../e2e/lib/proc.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
export const MCPB = resolve(here, 'node_modules/.bin/mcpb');

/** What a .mcpb holds: {file, bytes, dir (unpacked), manifest, files: [relative paths]}. */
export async function readExtension(file, workDir) {
  const dir = join(workDir, 'unpacked');
  const unpacked = await run(MCPB, ['unpack', file, dir], { timeoutMs: 30_000 });
  assert.equal(unpacked.code, 0, `mcpb unpack: ${unpacked.stdout}${unpacked.stderr}`);
  const files = (await readAllFiles(dir)).map((f) => f.path.slice(dir.length + 1)).sort();
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  return { file, bytes: await readFile(file), dir, manifest, files };
}

/**
 * The checks every extension we write must pass: exactly a manifest and a
 * PNG icon; `mcpb validate` and `mcpb info` accept it; a binary server run
 * as `<program> bridge http://127.0.0.1:PORT/mcp`; Claude Desktop's fields
 * set; no secret in the archive or in what it unpacks to.
 */
export async function checkExtension(ext, { secrets }) {
  assert.deepEqual(ext.files, ['icon.png', 'manifest.json']);
  const icon = await readFile(join(ext.dir, 'icon.png'));
  assert.deepEqual([...icon.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'icon.png is a PNG');

  const validated = await run(MCPB, ['validate', ext.dir], { timeoutMs: 30_000 });
  assert.equal(validated.code, 0, `mcpb validate: ${validated.stdout}${validated.stderr}`);
  assert.match(validated.stdout, /Manifest schema validation passes!/);
  const info = await run(MCPB, ['info', ext.file], { timeoutMs: 30_000 });
  assert.equal(info.code, 0, `mcpb info: ${info.stdout}${info.stderr}`);

  const m = ext.manifest;
  assert.equal(m.manifest_version, '0.2');
  assert.equal(m.name, 'spor-companion');
  assert.equal(m.display_name, 'Spor Companion');
  assert.ok(m.description && m.author?.name && m.version, JSON.stringify(m));
  assert.equal(m.icon, 'icon.png');
  assert.deepEqual(m.compatibility.platforms, ['darwin', 'win32', 'linux']);
  assert.equal(m.server.type, 'binary');
  const cfg = m.server.mcp_config;
  assert.equal(cfg.args[0], 'bridge');
  assert.match(cfg.args[1], /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  assert.equal(m.server.entry_point, cfg.command);
  assert.match(cfg.platform_overrides.darwin.command, /^\/Applications\/Spor Companion\.app\/Contents\/MacOS\/spor-companion$/);
  assert.match(cfg.platform_overrides.win32.command, /\\Spor Companion\\spor-companion\.exe$/);
  for (const os of ['darwin', 'win32']) assert.deepEqual(cfg.platform_overrides[os].args, cfg.args.slice(0, 2));

  const unpacked = await readAllFiles(ext.dir);
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(value && value.length > 8, `secret ${name} to look for`);
    assert.equal(ext.bytes.includes(Buffer.from(value)), false, `${name} is not in the .mcpb`);
    for (const f of unpacked) assert.equal(f.bytes.includes(Buffer.from(value)), false, `${name} is not in ${f.path}`);
  }
}
