// Pictor web page: the Create tab (generate, watch progress, the session timeline and actions on an
// image) and the Describe tab (streamed image descriptions). Plain ES modules, no build step.
import {
  ApiError,
  displayableUrl,
  fileToDataUri,
  getJson,
  openEventStream,
  postJson,
  readEventStream,
  authHeaders,
  request,
  setIdentity,
} from './api.js';
import { MaskPainter } from './mask.js';
import { renderTimeline } from './timeline.js';

const $ = (id) => document.getElementById(id);

// The preset prompts of `pictor describe --style` (docs/DESCRIBE.md), sent with the style so a server
// that only reads the message text still asks the right question.
const STYLE_PROMPTS = {
  alt: 'Write alt text for this image: one short sentence that says what it shows, for someone who cannot see it. Do not begin with "Image of" or "A picture of".',
  caption: 'Write a one-line caption for this image.',
  detailed:
    'Describe this image in detail, in a few paragraphs: the main subject, the setting and background, colours and lighting, and any visible text.',
  product:
    'Describe the product in this image for a shop listing. Use exactly this structure:\nTitle: a short product title\nFeatures:\n- one visible feature per line\nColours and materials: only what can be seen in the image\nDo not invent brand names, sizes or prices.',
};

const state = {
  sessionId: '',
  session: null, // {id, title, nodes:[...], heads:{}}
  selectedId: '',
  sessionStream: null,
  jobStreams: new Map(), // job id → stream
  trackedJob: '', // the job whose progress the progress area shows
  streamedText: new Map(), // node id → text streamed so far (describe nodes)
  describeAbort: null,
};

// ---------------------------------------------------------------- status + identity

function showStatus(message, kind = 'info') {
  const el = $('status');
  el.textContent = message;
  el.className = `status-banner ${message ? kind : ''}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function reportError(e) {
  console.error(e);
  const where = e instanceof ApiError && e.param ? ` (${e.param})` : '';
  showStatus(`${e.message}${where}`, 'error');
}

function currentUser() {
  return $('user-name').value.trim() || 'anonymous';
}

function initIdentity() {
  $('user-name').value = localStorage.getItem('pictor.user') || '';
  // The key stays in sessionStorage only: it is gone when the tab closes.
  $('api-key').value = sessionStorage.getItem('pictor.apiKey') || '';
  const apply = () => {
    localStorage.setItem('pictor.user', $('user-name').value.trim());
    sessionStorage.setItem('pictor.apiKey', $('api-key').value.trim());
    setIdentity($('user-name').value, $('api-key').value);
  };
  apply();
  $('user-name').addEventListener('change', () => {
    apply();
    rerender();
  });
  $('api-key').addEventListener('change', () => {
    apply();
    loadModels();
    if (state.sessionId) openSession(state.sessionId);
  });
}

// ---------------------------------------------------------------- tabs

function initTabs() {
  const tabs = [$('tab-create'), $('tab-describe')];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
    tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
        select(next);
        e.preventDefault();
      }
    });
  });
}

// ---------------------------------------------------------------- models

async function loadModels() {
  try {
    const list = await getJson('/v1/models');
    const fill = (select, kind) => {
      const previous = select.value;
      select.replaceChildren();
      for (const m of list.data.filter((m) => m.kind === kind)) {
        const option = document.createElement('option');
        option.value = option.textContent = m.id;
        select.append(option);
      }
      if ([...select.options].some((o) => o.value === previous)) select.value = previous;
      if (!select.options.length) {
        const option = document.createElement('option');
        option.value = '';
        option.textContent = `no ${kind} model installed`;
        select.append(option);
      }
    };
    fill($('model'), 'text-to-image');
    fill($('describe-model'), 'image-to-text');
  } catch (e) {
    reportError(e);
  }
}

// ---------------------------------------------------------------- sessions

function sessionFromHash() {
  const m = /(?:^#|&)session=([A-Za-z0-9_-]+)/.exec(location.hash);
  return m ? m[1] : '';
}

function nodeById(id) {
  return state.session?.nodes.find((n) => n.id === id) || null;
}

function upsertNode(node) {
  if (!state.session || node.session !== state.session.id) return;
  const i = state.session.nodes.findIndex((n) => n.id === node.id);
  if (i < 0) state.session.nodes.push(node);
  else state.session.nodes[i] = node;
  if (['queued', 'running'].includes(node.state) && node.job && node.author === currentUser()) watchJob(node);
}

async function openSession(id) {
  state.sessionStream?.close();
  state.sessionStream = null;
  state.session = null;
  state.selectedId = '';
  state.sessionId = id;
  $('session-id').textContent = id ? `Session ${id}` : '';
  if (!id) {
    rerender();
    return;
  }
  try {
    state.session = await getJson(`/v1/sessions/${encodeURIComponent(id)}`);
  } catch (e) {
    reportError(e);
    rerender();
    return;
  }
  const head = state.session.heads?.[currentUser()];
  state.selectedId = head || state.session.nodes.at(-1)?.id || '';
  for (const node of state.session.nodes) upsertNode(node);
  rerender();
  // Collaborators' nodes appear live. Asking for changes since the newest revision loaded closes the gap
  // between the GET above and the stream's start.
  const revisions = state.session.nodes.map((n) => n.revision).filter((r) => Number.isInteger(r));
  const revision = Number.isInteger(state.session.revision) ? state.session.revision : Math.max(-1, ...revisions);
  const since = revision >= 0 ? `?since=${revision}` : '';
  state.sessionStream = openEventStream(
    `/v1/sessions/${encodeURIComponent(id)}/events${since}`,
    (name, data) => {
      if (name === 'node' && typeof data === 'object') {
        upsertNode(data);
        rerender();
      }
    },
    () => {},
  );
}

async function refreshSession() {
  if (!state.sessionId) return;
  try {
    const fresh = await getJson(`/v1/sessions/${encodeURIComponent(state.sessionId)}`);
    if (fresh.id === state.sessionId) {
      state.session = fresh;
      rerender();
    }
  } catch (e) {
    reportError(e);
  }
}

async function ensureSession(title) {
  if (state.sessionId && state.session) return state.sessionId;
  const session = await postJson('/v1/sessions', { title: title.slice(0, 80) });
  location.hash = `session=${session.id}`; // hashchange would reopen it: open it here first
  await openSession(session.id);
  return session.id;
}

async function createNode(body) {
  const id = await ensureSession(body.prompt || 'Untitled');
  showStatus('');
  const node = await postJson(`/v1/sessions/${encodeURIComponent(id)}/nodes`, body);
  upsertNode(node);
  state.pendingSelect = node.id; // select it once it is done, unless the user picks another node
  rerender();
  return node;
}

function setHead(nodeId) {
  if (!state.sessionId) return;
  postJson(`/v1/sessions/${encodeURIComponent(state.sessionId)}/head`, { node: nodeId || null })
    .then((r) => {
      if (state.session) state.session.heads = { ...(state.session.heads || {}), [currentUser()]: r.head };
      rerender();
    })
    .catch(reportError);
}

function selectNode(node, { moveHead = true } = {}) {
  state.selectedId = node ? node.id : '';
  state.pendingSelect = '';
  if (moveHead) setHead(state.selectedId);
  rerender();
}

// ---------------------------------------------------------------- job progress

function watchJob(node) {
  const jobId = node.job;
  if (state.jobStreams.has(jobId)) return;
  state.trackedJob = jobId;
  const stream = openEventStream(
    `/v1/jobs/${encodeURIComponent(jobId)}/events`,
    (name, data) => onJobEvent(node.id, jobId, name, data),
    (err) => {
      state.jobStreams.delete(jobId);
      if (err) reportError(err);
    },
  );
  state.jobStreams.set(jobId, stream);
  showProgress({ state: node.state, step: 0, total: 0 }, jobId);
}

function onJobEvent(nodeId, jobId, name, data) {
  if (name === 'state' || name === 'progress') {
    showProgress(data, jobId);
  } else if (name === 'text') {
    state.streamedText.set(nodeId, (state.streamedText.get(nodeId) || '') + (data.delta || ''));
    if (state.selectedId === nodeId) renderSelected();
  } else if (name === 'done') {
    state.jobStreams.get(jobId)?.close();
    state.jobStreams.delete(jobId);
    if (data.state === 'failed') showStatus(`Job failed: ${data.error || 'unknown error'}`, 'error');
    if (state.trackedJob === jobId) hideProgress(data);
    refreshSession().then(() => {
      if (state.pendingSelect === nodeId) selectNode(nodeById(nodeId));
    });
  }
}

function showProgress(p, jobId) {
  if (jobId !== state.trackedJob) return;
  $('progress-area').hidden = false;
  const text = $('progress-text');
  const bar = $('progress-bar');
  if (p.state === 'queued') {
    text.textContent = p.queue_position ? `Queued (position ${p.queue_position})` : 'Queued';
    bar.removeAttribute('value');
  } else if (p.total) {
    const eta = p.eta_s > 0 ? ` · ETA ${p.eta_s < 10 ? p.eta_s.toFixed(1) : Math.round(p.eta_s)} s` : '';
    text.textContent = `Step ${p.step}/${p.total}${eta}`;
    bar.max = p.total;
    bar.value = p.step;
  } else if (p.state === 'running' || !p.state) {
    text.textContent = 'Starting…';
    bar.removeAttribute('value');
  }
  if (p.preview_url) {
    displayableUrl(p.preview_url)
      .then((u) => {
        $('preview').src = u;
        $('preview').hidden = false;
      })
      .catch(() => {});
  }
}

function hideProgress(job) {
  const text = $('progress-text');
  text.textContent =
    job.state === 'succeeded' ? `Done (${job.total || job.step || ''} steps)`.replace(' ( steps)', '') : `Job ${job.state}`;
  $('progress-bar').value = $('progress-bar').max;
  $('cancel-job').disabled = true;
  state.trackedJob = '';
  setTimeout(() => {
    if (!state.trackedJob) {
      $('progress-area').hidden = true;
      $('preview').hidden = true;
      $('cancel-job').disabled = false;
    }
  }, 1500);
}

// ---------------------------------------------------------------- rendering

function rerender() {
  const session = state.session;
  $('timeline-empty').hidden = !!session?.nodes.length;
  $('undo').disabled = !session || !session.heads?.[currentUser()];
  renderTimeline($('timeline'), session, {
    selectedId: state.selectedId,
    user: currentUser(),
    imageUrl: displayableUrl,
    onSelect: (node) => selectNode(node),
  });
  renderSelected();
}

let shownImageFor = '';
function renderSelected() {
  const node = nodeById(state.selectedId);
  $('selected').hidden = !node;
  if (!node) return;
  // A describe node acts on its parent's image.
  const imageNode = node.images?.length ? node : nodeById(node.parent);
  const image = imageNode?.images?.[0];
  const meta = $('selected-meta');
  meta.replaceChildren();
  const add = (term, value) => {
    if (value === undefined || value === null || value === '') return;
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.testid = `meta-${term.toLowerCase().replace(/\s+/g, '-')}`;
    meta.append(dt, dd);
  };
  add('Operation', node.operation.replace('_', ' '));
  add('Author', node.author);
  add('State', node.state);
  add('Prompt', node.prompt);
  add('Seed', node.seed);
  add('Model', node.model);
  const p = node.params || {};
  if (p.width) add('Size', `${p.width}x${p.height}`);
  add('Steps', p.steps);
  add('Sampler', p.sampler);
  if (node.error) add('Error', node.error);

  const textEl = $('selected-text');
  const text = node.text || state.streamedText.get(node.id) || '';
  textEl.hidden = node.operation !== 'describe';
  textEl.textContent = text || (node.state === 'failed' ? '' : 'Describing…');

  if (document.activeElement !== $('edit-prompt') && $('edit-prompt').dataset.for !== node.id) {
    $('edit-prompt').value = node.prompt || imageNode?.prompt || '';
    $('edit-prompt').dataset.for = node.id;
  }

  const img = $('selected-image');
  const hasImage = !!image;
  for (const id of ['regenerate', 'variation', 'img2img', 'inpaint', 'describe-node', 'paint-mask']) {
    $(id).disabled = !hasImage || node.state !== 'succeeded' && node.operation !== 'describe';
  }
  $('download').hidden = !hasImage;
  if (!hasImage) {
    img.removeAttribute('src');
    img.alt = '';
    shownImageFor = '';
    return;
  }
  img.alt = imageNode.prompt ? `Generated image: ${imageNode.prompt}` : 'Generated image';
  if (shownImageFor !== image.url) {
    shownImageFor = image.url;
    displayableUrl(image.url)
      .then((u) => {
        img.src = u;
        $('download').href = u;
      })
      .catch(reportError);
    $('download').setAttribute('download', `pictor-${image.id}.${image.url.split('.').pop()}`);
    painter.setEnabled(false);
    $('paint-mask').setAttribute('aria-pressed', 'false');
    painter.painted = false;
    $('mask-canvas').hidden = true;
  }
}

// ---------------------------------------------------------------- Create tab actions

function formNumber(id) {
  const v = $(id).value.trim();
  return v === '' ? undefined : Number(v);
}

function withoutEmpty(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== ''));
}

function initCreate() {
  $('seed-random').addEventListener('change', () => {
    $('seed').disabled = $('seed-random').checked;
    if (!$('seed-random').checked && $('seed').value === '') {
      const seed = nodeById(state.selectedId)?.seed;
      if (seed !== undefined && seed !== null) $('seed').value = seed;
    }
  });

  $('generate-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const prompt = $('prompt').value.trim();
    if (!prompt) {
      $('prompt').focus();
      return;
    }
    $('generate').disabled = true;
    try {
      await createNode(
        withoutEmpty({
          parent: state.selectedId || null,
          operation: 'generate',
          prompt,
          negative_prompt: $('negative-prompt').value.trim(),
          model: $('model').value,
          size: $('size').value,
          steps: formNumber('steps'),
          guidance_scale: formNumber('guidance'),
          sampler: $('sampler').value,
          seed: $('seed-random').checked ? undefined : formNumber('seed'),
        }),
      );
    } catch (err) {
      reportError(err);
    } finally {
      $('generate').disabled = false;
    }
  });

  $('cancel-job').addEventListener('click', () => {
    if (state.trackedJob) request('DELETE', `/v1/jobs/${encodeURIComponent(state.trackedJob)}`).catch(reportError);
  });

  $('undo').addEventListener('click', async () => {
    try {
      const r = await postJson(`/v1/sessions/${encodeURIComponent(state.sessionId)}/undo`, {});
      state.session.heads = { ...(state.session.heads || {}), [currentUser()]: r.head };
      selectNode(nodeById(r.head), { moveHead: false });
    } catch (err) {
      reportError(err);
    }
  });

  const act = (operation, extra = () => ({})) => async () => {
    const node = nodeById(state.selectedId);
    if (!node) return;
    try {
      await createNode({ parent: node.id, operation, ...extra() });
    } catch (err) {
      reportError(err);
    }
  };
  const editedPrompt = () => $('edit-prompt').value.trim();
  $('regenerate').addEventListener('click', act('prompt_edit', () => ({ prompt: editedPrompt() })));
  $('variation').addEventListener('click', act('variation'));
  $('img2img').addEventListener(
    'click',
    act('img2img', () => ({ prompt: editedPrompt(), strength: Number($('strength').value) })),
  );
  $('strength').addEventListener('input', () => ($('strength-value').value = Number($('strength').value).toFixed(2)));
  $('describe-node').addEventListener('click', act('describe', () => ({ style: $('node-style').value })));

  $('paint-mask').addEventListener('click', () => {
    const on = $('paint-mask').getAttribute('aria-pressed') !== 'true';
    const img = $('selected-image');
    if (on && !painter.painted) painter.reset(img.naturalWidth || 64, img.naturalHeight || 64);
    painter.setEnabled(on);
    $('paint-mask').setAttribute('aria-pressed', String(on));
    if (on) $('mask-canvas').focus();
  });
  $('brush').addEventListener('input', () => (painter.brush = Number($('brush').value)));
  $('clear-mask').addEventListener('click', () => painter.clear());
  $('inpaint').addEventListener('click', async () => {
    if (!painter.painted) {
      showStatus('Paint the area to repaint first (Paint mask).', 'error');
      return;
    }
    await act('inpaint', () => ({ prompt: editedPrompt(), mask: painter.toDataUri() }))();
    painter.clear();
    painter.setEnabled(false);
    $('paint-mask').setAttribute('aria-pressed', 'false');
  });

  $('new-session').addEventListener('click', () => {
    history.replaceState(null, '', location.pathname + location.search);
    openSession('');
  });
}

// ---------------------------------------------------------------- Describe tab

let describeImage = '';

async function setDescribeFile(file) {
  if (!file || !file.type.startsWith('image/')) {
    showStatus('Choose a PNG, JPEG or WebP image.', 'error');
    return;
  }
  describeImage = await fileToDataUri(file);
  $('describe-preview').src = describeImage;
  $('describe-preview').alt = `The image to describe: ${file.name}`;
  $('describe-preview').hidden = false;
}

function initDescribe() {
  $('describe-file').addEventListener('change', () => setDescribeFile($('describe-file').files[0]));
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    setDescribeFile(e.dataTransfer.files[0]);
  });

  $('stop-describe').addEventListener('click', () => state.describeAbort?.abort());

  $('describe-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!describeImage) {
      showStatus('Choose an image to describe first.', 'error');
      $('describe-file').focus();
      return;
    }
    const question = $('question').value.trim();
    const style = document.querySelector('input[name="style"]:checked').value;
    const body = {
      model: $('describe-model').value || undefined,
      stream: true,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: question || STYLE_PROMPTS[style] },
            { type: 'image_url', image_url: { url: describeImage } },
          ],
        },
      ],
    };
    if (!question) body.style = style;
    const out = $('describe-output');
    out.textContent = '';
    $('describe-state').textContent = 'Describing…';
    delete $('describe-state').dataset.done;
    $('describe').disabled = true;
    $('stop-describe').disabled = false;
    state.describeAbort = new AbortController();
    try {
      const response = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
        signal: state.describeAbort.signal,
      });
      if (!response.ok) {
        let errBody = null;
        try {
          errBody = await response.json();
        } catch {
          /* not JSON */
        }
        throw new ApiError(response.status, errBody);
      }
      let finish = '';
      await readEventStream(response, (name, data) => {
        if (data === '[DONE]') return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk);
        const choice = chunk.choices?.[0];
        if (choice?.delta?.content) out.textContent += choice.delta.content;
        if (choice?.finish_reason) finish = choice.finish_reason;
      });
      $('describe-state').textContent = finish === 'length' ? 'Done (stopped at the token limit).' : 'Done.';
      $('describe-state').dataset.done = 'true';
    } catch (err) {
      if (err.name === 'AbortError') $('describe-state').textContent = 'Stopped.';
      else {
        $('describe-state').textContent = '';
        reportError(err);
      }
    } finally {
      $('describe').disabled = false;
      $('stop-describe').disabled = true;
      state.describeAbort = null;
    }
  });
}

// ---------------------------------------------------------------- start

const painter = new MaskPainter($('mask-canvas'));

initIdentity();
initTabs();
initCreate();
initDescribe();
loadModels();
window.addEventListener('hashchange', () => {
  const id = sessionFromHash();
  if (id !== state.sessionId) openSession(id);
});
openSession(sessionFromHash());
document.body.dataset.ready = 'true';
