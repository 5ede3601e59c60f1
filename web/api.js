// Talking to the Pictor server: JSON requests with the caller's identity, OpenAI-shaped errors, and
// server-sent event streams read with fetch. EventSource is not used because it cannot send headers, and
// a protected server needs `Authorization: Bearer KEY` on every request (the X-Pictor-User name too).

const identity = { user: '', apiKey: '' };

export function setIdentity(user, apiKey) {
  identity.user = (user || '').trim();
  identity.apiKey = (apiKey || '').trim();
}

export function authHeaders(extra = {}) {
  const headers = { ...extra };
  if (identity.apiKey) headers['Authorization'] = `Bearer ${identity.apiKey}`;
  if (identity.user) headers['X-Pictor-User'] = identity.user;
  return headers;
}

// An error the server reported in the OpenAI shape {"error":{"message","type","param","code"}}.
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.type = err.type || '';
    this.param = err.param || '';
    this.code = err.code || '';
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { error: { message: `${response.status} ${response.statusText}` } };
  }
  return new ApiError(response.status, body);
}

export async function request(method, path, body, { signal } = {}) {
  const init = { method, headers: authHeaders(), signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

export const getJson = (path, opts) => request('GET', path, undefined, opts);
export const postJson = (path, body, opts) => request('POST', path, body ?? {}, opts);

// Parses a text/event-stream body incrementally. Calls onEvent(eventName, dataString) per event; resolves
// when the stream ends or `signal` aborts. Lines are split on \n, \r\n or \r as the SSE spec says.
export async function readEventStream(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data = [];
  const dispatch = () => {
    if (data.length) onEvent(event || 'message', data.join('\n'));
    event = '';
    data = [];
  };
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (e.name === 'AbortError') return;
      throw e;
    }
    if (chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let match;
    while ((match = /\r\n|\r|\n/.exec(buffer))) {
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        dispatch();
        continue;
      }
      if (line.startsWith(':')) continue;  // comment / keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
  }
  dispatch();
}

// GET an event stream with the identity headers; returns {close()}; onEvent(name, parsedJsonOrText).
// onEnd(error|null) is called once when the stream ends for any reason other than close().
export function openEventStream(path, onEvent, onEnd = () => {}) {
  const controller = new AbortController();
  let closed = false;
  (async () => {
    try {
      const response = await fetch(path, {
        headers: authHeaders({ Accept: 'text/event-stream' }),
        signal: controller.signal,
      });
      if (!response.ok) throw await errorFrom(response);
      await readEventStream(response, (name, text) => {
        let value = text;
        try {
          value = JSON.parse(text);
        } catch {
          /* plain text event */
        }
        if (!closed) onEvent(name, value);
      });
      if (!closed) onEnd(null);
    } catch (e) {
      if (!closed && e.name !== 'AbortError') onEnd(e);
    }
  })();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

// Stored images (/v1/files/images/<id>.<ext>) are capability URLs the server serves without a key (the
// ids are long random strings), so an <img src> can show them even on a protected server. Kept as a
// promise-returning hook so the timeline does not care how a URL becomes displayable.
export async function displayableUrl(url) {
  return url;
}

export function fileToDataUri(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
