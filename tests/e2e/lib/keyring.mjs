// A private Secret Service for one test: its own D-Bus session bus and an
// unlocked gnome-keyring whose files live in a temp XDG_DATA_HOME, so the
// real keychain code path runs without touching anyone's own keyrings.
import { mkdir } from 'node:fs/promises';
import { run, start } from './proc.mjs';
import { tempDir } from './tmp.mjs';

/**
 * Start dbus-daemon + gnome-keyring-daemon. Returns {env, lookup(attrs), search(attrs), stop()}:
 * `env` points child processes at this keyring; `lookup` is `secret-tool lookup`.
 */
export async function startKeyring() {
  const home = await tempDir('spor-keyring-');
  const bus = await start('dbus-daemon', ['--session', '--nofork', '--print-address=1', '--nopidfile'], {
    name: 'dbus-daemon',
    ready: /^(unix:.+)$/,
    timeoutMs: 10_000,
  });
  const runtime = `${home}/run`;
  await mkdir(runtime, { mode: 0o700 });
  const env = {
    DBUS_SESSION_BUS_ADDRESS: bus.ready[1],
    XDG_DATA_HOME: `${home}/data`,
    XDG_RUNTIME_DIR: runtime,
  };
  // --unlock reads the login password from stdin; --foreground keeps the
  // daemon our child, so stop() ends it.
  const daemon = await start('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
    name: 'gnome-keyring-daemon',
    env,
    stdin: 'pipe',
  });
  daemon.child.stdin.end('pw');
  try {
    // Ready once it owns the Secret Service name on this bus (asking
    // secret-tool earlier could D-Bus-activate a second, locked daemon).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
        'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets'], { env, timeoutMs: 5_000 });
      if (r.code === 0 && /boolean true/.test(r.stdout)) break;
      if (daemon.exited || Date.now() > deadline) throw new Error(`gnome-keyring-daemon did not take org.freedesktop.secrets\n${daemon.tail()}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } catch (err) {
    await daemon.kill({ graceMs: 1_000 });
    await bus.kill({ graceMs: 1_000 });
    throw err;
  }
  const attrs = (a) => Object.entries(a).flat();
  return {
    env,
    async lookup(a) {
      const r = await run('secret-tool', ['lookup', ...attrs(a)], { env, timeoutMs: 10_000 });
      return r.code === 0 ? r.stdout : null;
    },
    async search(a) {
      const r = await run('secret-tool', ['search', '--all', ...attrs(a)], { env, timeoutMs: 10_000 });
      return `${r.stdout}${r.stderr}`;
    },
    async stop() {
      await daemon.kill({ graceMs: 2_000 });
      await bus.kill({ graceMs: 2_000 });
    },
  };
}
