// The official OpenAI Node client against `pictor serve` (started by run.sh with tiny models and an API
// key): every call an OpenAI user would make for images and vision chat, with the SDK's own parsing.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import OpenAI, { toFile } from 'openai';

import { encodePng, isJpeg, isPng, pngSize, pngTextKeys } from './png.mjs';

const SERVER = process.env.PICTOR_URL;
const API_KEY = process.env.PICTOR_API_KEY || 'unused';
assert.ok(SERVER, 'PICTOR_URL is not set: run through tests/e2e/run.sh');

const client = new OpenAI({ baseURL: `${SERVER}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 300_000 });
// Pictor extensions (steps, seed) ride along in the body; small sizes and 2 steps keep each call short.
const FAST = { size: '64x64', steps: 2 };

let sdModel = '';
let vlmModel = '';
let generatedPng = null;

async function fetchBytes(url) {
  const absolute = new URL(url, SERVER).toString();
  const response = await fetch(absolute, { headers: { Authorization: `Bearer ${API_KEY}` } });
  assert.equal(response.status, 200, `GET ${absolute}`);
  return Buffer.from(await response.arrayBuffer());
}

// Opaque image, left half of the mask transparent (= repaint).
const MASK_PNG = encodePng(64, 64, (x) => (x < 32 ? [0, 0, 0, 0] : [0, 0, 0, 255]));
const SOURCE_PNG = encodePng(64, 64, (x, y) => [x * 4, y * 4, 128, 255]);

before(async () => {
  const models = [];
  for await (const model of client.models.list()) models.push(model);
  sdModel = models.find((m) => m.kind === 'text-to-image')?.id;
  vlmModel = models.find((m) => m.kind === 'image-to-text')?.id;
});

test('models.list names both tiny models with their kinds', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id).sort();
  assert.deepEqual(ids, ['tiny-sd', 'tiny-vlm']);
  for (const m of page.data) {
    assert.equal(m.object, 'model');
    assert.equal(m.owned_by, 'pictor');
    assert.equal(typeof m.created, 'number');
  }
  assert.equal(sdModel, 'tiny-sd');
  assert.equal(vlmModel, 'tiny-vlm');
  assert.deepEqual(page.data.find((m) => m.id === 'tiny-vlm').input_modalities.sort(), ['image', 'text']);
});

test('images.generate returns b64_json PNGs with their metadata', async () => {
  const result = await client.images.generate({
    model: sdModel,
    prompt: 'a red apple on a wooden table',
    n: 2,
    response_format: 'b64_json',
    seed: 1234,
    ...FAST,
  });
  assert.equal(typeof result.created, 'number');
  assert.equal(result.data.length, 2);
  for (const image of result.data) {
    const png = Buffer.from(image.b64_json, 'base64');
    assert.ok(isPng(png), 'PNG signature');
    assert.deepEqual(pngSize(png), { width: 64, height: 64 });
    assert.ok(pngTextKeys(png).includes('parameters'), 'A1111 parameters text chunk');
  }
  assert.notDeepEqual(result.data[0].b64_json, result.data[1].b64_json, 'image k uses seed + k');
  generatedPng = Buffer.from(result.data[0].b64_json, 'base64');

  // Same seed, same bytes: generation is deterministic.
  const again = await client.images.generate({
    model: sdModel,
    prompt: 'a red apple on a wooden table',
    response_format: 'b64_json',
    seed: 1234,
    ...FAST,
  });
  assert.equal(again.data[0].b64_json, result.data[0].b64_json);
});

test('images.generate returns a URL the server serves', async () => {
  const result = await client.images.generate({ model: sdModel, prompt: 'a lighthouse', response_format: 'url', ...FAST });
  assert.equal(result.data.length, 1);
  assert.match(result.data[0].url, /\/v1\/files\/images\/img_[A-Za-z0-9_-]+\.png$/);
  const png = await fetchBytes(result.data[0].url);
  assert.ok(isPng(png));
  assert.deepEqual(pngSize(png), { width: 64, height: 64 });
});

test('images.generate with output_format jpeg returns a JPEG', async () => {
  const result = await client.images.generate({
    model: sdModel,
    prompt: 'a blue boat',
    response_format: 'b64_json',
    output_format: 'jpeg',
    ...FAST,
  });
  assert.ok(isJpeg(Buffer.from(result.data[0].b64_json, 'base64')), 'JPEG signature');
});

test('images.edit with an image and a mask (multipart upload)', async () => {
  const result = await client.images.edit({
    model: sdModel,
    image: await toFile(generatedPng ?? SOURCE_PNG, 'image.png', { type: 'image/png' }),
    mask: await toFile(MASK_PNG, 'mask.png', { type: 'image/png' }),
    prompt: 'a green apple',
    response_format: 'b64_json',
    ...FAST,
  });
  const png = Buffer.from(result.data[0].b64_json, 'base64');
  assert.ok(isPng(png));
  assert.deepEqual(pngSize(png), { width: 64, height: 64 });
});

test('images.createVariation of an uploaded image', async () => {
  const result = await client.images.createVariation({
    model: sdModel,
    image: await toFile(SOURCE_PNG, 'source.png', { type: 'image/png' }),
    n: 1,
    response_format: 'b64_json',
    ...FAST,
  });
  const png = Buffer.from(result.data[0].b64_json, 'base64');
  assert.ok(isPng(png));
  assert.deepEqual(pngSize(png), { width: 64, height: 64 });
});

const imageMessage = (text) => [
  {
    role: 'user',
    content: [
      { type: 'text', text },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${SOURCE_PNG.toString('base64')}` } },
    ],
  },
];

test('chat.completions.create describes an image given as a data URI', async () => {
  const completion = await client.chat.completions.create({
    model: vlmModel,
    messages: imageMessage('What is in this image?'),
    max_tokens: 12,
    temperature: 0,
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, vlmModel);
  assert.equal(completion.choices.length, 1);
  const choice = completion.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(['stop', 'length'].includes(choice.finish_reason), choice.finish_reason);
  assert.ok(completion.usage.prompt_tokens > 0);
  assert.ok(completion.usage.completion_tokens > 0 && completion.usage.completion_tokens <= 12);
});

test('streaming chat: chunks assemble to the same answer and the stream ends', async () => {
  const request = { model: vlmModel, messages: imageMessage('Describe the colours.'), max_tokens: 10, temperature: 0 };
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    chunks++;
    const choice = chunk.choices[0];
    if (!choice) continue; // a usage-only chunk
    text += choice.delta?.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.ok(chunks >= 2, `got ${chunks} chunks`);
  assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  assert.equal(text.trim(), whole.choices[0].message.content.trim());
});

test('a bad size is a 400 APIError naming the size parameter', async () => {
  await assert.rejects(
    client.images.generate({ model: sdModel, prompt: 'x', size: 'big', steps: 2 }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, `${err}`);
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'size');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    },
  );
});

test('a wrong API key is an AuthenticationError', async () => {
  const intruder = new OpenAI({ baseURL: `${SERVER}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(intruder.models.list(), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `${err}`);
    assert.equal(err.status, 401);
    return true;
  });
});
