// The web page in Chromium (playwright-core driving the Debian browser; nothing is downloaded) against
// `pictor serve` with tiny models (started by run.sh): generate with live progress, refine with the same
// seed, paint a mask and inpaint, undo, a collaborator's node appearing live, and a streamed description.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

const SERVER = process.env.PICTOR_URL;
const ARTIFACTS = process.env.PICTOR_E2E_ARTIFACTS_DIR || tmpdir();
assert.ok(SERVER, 'PICTOR_URL is not set: run through tests/e2e/run.sh');

const STEP_TIMEOUT = 120_000;
let context;
let page;
let userDataDir;
const consoleErrors = [];
let shot = 0;

async function screenshot(name) {
  shot++;
  await page.screenshot({ path: path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const nodes = (p = page) => p.locator('[data-testid="timeline-node"]');

// Waits for the n-th timeline node (0-based) to have succeeded and returns its data attributes.
async function waitForNode(index, p = page) {
  const node = nodes(p).nth(index);
  await node.waitFor({ timeout: STEP_TIMEOUT });
  await p.waitForFunction(
    (i) => {
      const n = document.querySelectorAll('[data-testid="timeline-node"]')[i];
      if (!n) return false;
      if (n.dataset.state === 'failed') return true;
      const img = n.querySelector('img');
      return n.dataset.state === 'succeeded' && (n.dataset.operation === 'describe' || (img && img.complete && img.naturalWidth > 0));
    },
    index,
    { timeout: STEP_TIMEOUT },
  );
  const attrs = await node.evaluate((n) => ({ ...n.dataset }));
  assert.equal(attrs.state, 'succeeded', `node ${index} (${attrs.operation}) failed`);
  return attrs;
}

before(async () => {
  userDataDir = mkdtempSync(path.join(tmpdir(), 'pictor-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.PICTOR_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test('the page loads with its models and accessible controls', async () => {
  const response = await page.goto(SERVER + '/');
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'], /^text\/html/);
  await page.waitForSelector('body[data-ready="true"]');
  await page.getByLabel('Your name').fill('alice');
  await page.getByLabel('Your name').press('Tab'); // "change" stores it
  await page.waitForFunction(() => document.querySelector('#model option')?.value === 'tiny-sd');
  assert.equal(await page.locator('#describe-model').inputValue(), 'tiny-vlm');
  // Every form control has an accessible name.
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !el.closest('[hidden]'))
      .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim() || el.title))
      .map((el) => el.id || el.outerHTML.slice(0, 60)),
  );
  assert.deepEqual(unnamed, []);
  await screenshot('loaded');
});

test('generate: progress is shown and the image lands in the timeline', async () => {
  // Watch the progress text and the preview from the page itself: tiny models finish quickly.
  await page.evaluate(() => {
    window.__progress = [];
    window.__previews = 0;
    new MutationObserver(() => window.__progress.push(document.getElementById('progress-text').textContent)).observe(
      document.getElementById('progress-text'),
      { childList: true, characterData: true, subtree: true },
    );
    new MutationObserver(() => window.__previews++).observe(document.getElementById('preview'), {
      attributes: true,
      attributeFilter: ['src'],
    });
  });
  await page.getByTestId('prompt').fill('a red apple on a wooden table');
  await page.getByLabel('Size').selectOption('64x64');
  await page.getByLabel('Steps').fill('12');
  await page.getByTestId('seed-random').uncheck();
  await page.getByLabel('Seed value').fill('42');
  await page.getByTestId('generate').click();

  await page.waitForFunction(() => /session=/.test(location.hash), null, { timeout: STEP_TIMEOUT });
  const first = await waitForNode(0);
  assert.equal(first.operation, 'generate');
  assert.equal(first.author, 'alice');
  const progress = await page.evaluate(() => window.__progress);
  assert.ok(
    progress.some((t) => /^Step \d+\/12/.test(t)),
    `progress text seen: ${JSON.stringify(progress)}`,
  );
  const previews = await page.evaluate(() => window.__previews);
  console.log(`progress updates: ${progress.length}, preview images shown: ${previews}`);

  await page.getByTestId('selected').waitFor();
  assert.equal(await page.getByTestId('meta-seed').textContent(), '42');
  assert.equal(await page.getByTestId('meta-operation').textContent(), 'generate');
  const href = await page.getByTestId('download').getAttribute('href');
  assert.match(href, /\/v1\/files\/images\/img_.+\.png$/);
  const alt = await nodes().nth(0).locator('img').getAttribute('alt');
  assert.match(alt, /generate by alice: a red apple/);
  await screenshot('generated');
});

test('refine: edit the prompt and regenerate with the same seed', async () => {
  await page.getByTestId('edit-prompt').fill('a green apple on a wooden table');
  await page.getByTestId('regenerate').click();
  const second = await waitForNode(1);
  assert.equal(second.operation, 'prompt_edit');
  assert.equal(second.author, 'alice');
  await page.waitForFunction(() => document.querySelector('[data-testid="meta-operation"]')?.textContent === 'prompt edit');
  assert.equal(await page.getByTestId('meta-seed').textContent(), '42', 'same seed as the parent');
  assert.equal(await page.getByTestId('meta-prompt').textContent(), 'a green apple on a wooden table');
  // The timeline draws the parent link.
  assert.equal(await page.locator('[data-testid="timeline"] svg path').count(), 1);
  await screenshot('refined');
});

test('inpaint: paint a mask on the canvas and repaint that area', async () => {
  const sent = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && /\/nodes$/.test(req.url())) sent.push(req.postDataJSON());
  });
  await page.getByTestId('paint-mask').click();
  const canvas = page.getByTestId('mask-canvas');
  await canvas.waitFor();
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 8 });
  await page.mouse.up();
  await screenshot('mask-painted');
  await page.getByTestId('inpaint').click();
  const third = await waitForNode(2);
  assert.equal(third.operation, 'inpaint');

  const request = sent.find((b) => b.operation === 'inpaint');
  assert.ok(request, 'an inpaint node was requested');
  assert.match(request.mask, /^data:image\/png;base64,/);
  // Decode the mask in the page: same size as the image, painted pixels transparent, the rest opaque.
  const mask = await page.evaluate(async (uri) => {
    const img = new Image();
    img.src = uri;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    let transparent = 0;
    let opaque = 0;
    for (let i = 3; i < data.length; i += 4) {
      if (data[i] === 0) transparent++;
      else if (data[i] === 255) opaque++;
    }
    const at = (x, y) => data[(y * c.width + x) * 4 + 3];
    return {
      width: c.width,
      height: c.height,
      transparent,
      opaque,
      centreAlpha: at(Math.floor(c.width * 0.35), Math.floor(c.height * 0.35)),
      cornerAlpha: at(c.width - 1, c.height - 1),
    };
  }, request.mask);
  assert.equal(mask.width, 64);
  assert.equal(mask.height, 64);
  assert.ok(mask.transparent > 0 && mask.opaque > 0, JSON.stringify(mask));
  assert.equal(mask.centreAlpha, 0, 'the stroke is transparent (repaint)');
  assert.equal(mask.cornerAlpha, 255, 'unpainted pixels are opaque (keep)');
  await screenshot('inpainted');
});

test('undo moves the head back to the parent', async () => {
  const before = await page.locator('[data-testid="timeline-node"].selected').getAttribute('data-node-id');
  await page.getByTestId('undo').click();
  await page.waitForFunction(
    (id) => document.querySelector('[data-testid="timeline-node"].selected')?.dataset.nodeId !== id,
    before,
  );
  const selected = await page.locator('[data-testid="timeline-node"].selected').evaluate((n) => ({ ...n.dataset }));
  assert.equal(selected.operation, 'prompt_edit', 'the inpaint node’s parent is selected');
  await screenshot('undone');
});

test('a collaborator opening the session URL sees it, and their branch appears live', async () => {
  const url = page.url();
  const bob = await context.newPage();
  await bob.goto(url);
  await bob.waitForSelector('body[data-ready="true"]');
  await bob.getByLabel('Your name').fill('bob');
  await bob.getByLabel('Your name').press('Tab');
  await waitForNode(2, bob);
  assert.equal(await nodes(bob).count(), 3);
  // Bob branches from the first node.
  await nodes(bob).nth(0).locator('button').click();
  await bob.getByTestId('variation').click();
  const bobs = await waitForNode(3, bob);
  assert.equal(bobs.author, 'bob');
  assert.equal(bobs.operation, 'variation');
  // Alice's page gets Bob's node from the session event stream, without reloading.
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="timeline-node"]').length === 4, null, {
    timeout: STEP_TIMEOUT,
  });
  const onAlice = await nodes().nth(3).evaluate((n) => ({ ...n.dataset }));
  assert.equal(onAlice.author, 'bob');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="timeline"] svg path').length === 3);
  await bob.close();
  await screenshot('collaborator-branch');
});

test('describe tab: pick an image and read the streamed description', async () => {
  // The image to describe: the first generated image, downloaded through the page's own link.
  const href = await nodes().nth(0).locator('img').getAttribute('src');
  const bytes = Buffer.from(await (await fetch(new URL(href, SERVER))).arrayBuffer());
  await page.getByTestId('tab-describe').click();
  assert.equal(await page.getByTestId('tab-describe').getAttribute('aria-selected'), 'true');
  await page.getByTestId('describe-file').setInputFiles({ name: 'apple.png', mimeType: 'image/png', buffer: bytes });
  await page.getByTestId('describe-preview').waitFor();
  await page.getByLabel('caption', { exact: true }).check();
  await page.evaluate(() => {
    window.__answerUpdates = 0;
    new MutationObserver(() => window.__answerUpdates++).observe(document.getElementById('describe-output'), {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  await page.getByTestId('describe').click();
  // Done, or an error reported by the page (then fail at once with its message).
  await page.waitForFunction(
    () =>
      document.getElementById('describe-state').dataset.done === 'true' ||
      document.getElementById('status').classList.contains('error'),
    null,
    { timeout: STEP_TIMEOUT },
  );
  assert.equal(await page.getByTestId('status').textContent(), '', 'the page reported an error');
  const text = await page.getByTestId('describe-output').textContent();
  const updates = await page.evaluate(() => window.__answerUpdates);
  assert.ok(text.length > 0, 'some text was streamed');
  assert.ok(updates >= 1, `${updates} updates`);
  console.log(`description (${updates} streamed updates): ${JSON.stringify(text)}`);
  await screenshot('described');
});

test('keyboard: tabs switch with the arrow keys', async () => {
  await page.getByTestId('tab-describe').focus();
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.getByTestId('tab-create').getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('#panel-create').isVisible(), true);
});

test('no script errors in the console', () => {
  assert.deepEqual(consoleErrors, []);
});
