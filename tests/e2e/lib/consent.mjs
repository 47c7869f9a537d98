// The companion's consent page, driven in Chromium the way a person would:
// first time, paste the server URL and the PAT; then pick the organization and
// click Allow (or Deny). Used by the tests and by bin/browser-consent.mjs.
import assert from 'node:assert/strict';

/**
 * Open `authorizationUrl` in `page` and decide.
 *
 * Options:
 * - `org`: pick the Organization option whose text mentions this slug
 *   (default: leave the preselected one).
 * - `pat`, `serverUrl`: fill the first-time form if the page shows it
 *   (`serverUrl` only when the page asks for one: with none known it offers
 *   hosted Spor, and `serverUrl` opens the self-hosted field). Without `pat`
 *   a first-time page is an error.
 * - `clientName`: assert the page names the client asking.
 * - `nameTag`: assert the tag beside the name ('verified by HOST' or
 *   'name as stated by the app').
 * - `access`: 'read_only', or `{ tools: [NAME, …] }` (chosen tools: the page
 *   reads the list when the choice is made, then the boxes are ticked);
 *   default: leave Full.
 * - `decision`: 'allow' (default) or 'deny'.
 * - `waitForRedirect`: wait until the browser has loaded the client's
 *   redirect URI (the `redirect_uri` of the request) and return that URL.
 *   Only for redirect targets that answer; otherwise wait on the target.
 * - `onStep(name)`: progress callback, for logs.
 *
 * Returns {firstTime, options, redirectedTo}.
 */
export async function consentInBrowser(page, authorizationUrl, {
  org,
  pat,
  serverUrl,
  clientName,
  nameTag,
  access,
  decision = 'allow',
  waitForRedirect = false,
  timeoutMs = 20_000,
  onStep = () => {},
} = {}) {
  const url = new URL(String(authorizationUrl));
  const redirectUri = url.searchParams.get('redirect_uri');
  onStep('goto');
  await page.goto(url.href, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  assert.match(await page.title(), /Spor Companion/, `not a Spor Companion page: ${page.url()}`);

  const orgSelect = page.getByLabel('Organization');
  const patField = page.getByLabel('Personal access token');
  // Either the picker (an account exists) or the open first-time form.
  await orgSelect.or(patField).first().waitFor({ state: 'visible', timeout: timeoutMs });
  let firstTime = false;
  if (!(await orgSelect.isVisible())) {
    firstTime = true;
    assert.ok(pat, 'the consent page asks for a Personal access token, but no PAT was given');
    onStep('first-time');
    // With no server known the page offers hosted Spor; another server
    // goes under "My organization runs its own Spor server".
    const own = page.getByText('My organization runs its own Spor server');
    if (serverUrl && await own.isVisible()) await own.click();
    const serverField = page.getByLabel('Spor server URL');
    if (await serverField.isVisible()) {
      assert.ok(serverUrl, 'the consent page asks for the Spor server URL, but none was given');
      await serverField.fill(serverUrl);
    }
    await patField.fill(pat);
    // POST → 303 → the same consent page, now with the organization picker.
    await page.getByRole('button', { name: 'Add token' }).click();
    await orgSelect.waitFor({ state: 'visible', timeout: timeoutMs });
  }

  if (clientName) {
    assert.ok((await page.locator('body').innerText()).includes(clientName), `the consent page names the client ${clientName}`);
  }
  if (nameTag) {
    const tag = await page.locator('.lead .tag').innerText();
    assert.equal(tag.trim(), nameTag, 'the tag beside the client name');
  }
  const options = await orgSelect.locator('option').evaluateAll((os) =>
    os.map((o) => ({ value: o.value, text: o.textContent ?? '', disabled: o.disabled })));
  if (org) {
    const wanted = options.find((o) => !o.disabled && o.text.includes(`(${org})`));
    assert.ok(wanted, `an enabled Organization option for ${org}: ${JSON.stringify(options)}`);
    await orgSelect.selectOption(wanted.value);
  }
  if (access === 'read_only') {
    await page.locator('input[name=access][value=read_only]').check();
  } else if (access && access.tools) {
    onStep('tools');
    // Picking "Chosen tools" loads the page again with the account's list,
    // unless the companion has already seen it.
    const picked = await page.locator('select[name=account_id]').inputValue();
    const pending = await page.locator(`fieldset.tools[data-account="${picked}"][data-pending="true"]`).count();
    const check = page.locator('input[name=access][value=tools]').check();
    if (pending) await Promise.all([page.waitForURL((u) => u.searchParams.has('tools'), { timeout: timeoutMs }), check]);
    else await check;
    await page.locator('fieldset.tools:not([hidden]) input[type=checkbox]').first().waitFor({ state: 'visible', timeout: timeoutMs });
    for (const name of access.tools) await page.locator(`input[name="tool:${name}"]`).check();
  }
  onStep(decision);
  const button = page.getByRole('button', { name: decision === 'deny' ? 'Deny' : 'Allow' });
  let redirectedTo;
  if (waitForRedirect) {
    assert.ok(redirectUri, 'the authorization URL carries a redirect_uri');
    const target = new URL(redirectUri);
    // Port-agnostic for loopback would be wrong here: the client listens on
    // exactly the port it registered.
    const arrived = page.waitForURL(
      (u) => u.origin === target.origin && u.pathname === target.pathname,
      { waitUntil: 'load', timeout: timeoutMs },
    );
    await button.click();
    await arrived;
    redirectedTo = page.url();
    onStep('redirected');
  } else {
    await button.click();
  }
  return { firstTime, options, redirectedTo };
}
