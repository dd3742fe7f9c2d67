// The API client: the bearer token lives in sessionStorage (gone when the tab closes).
const KEY = 'fleetbrain.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(`${status} ${body?.error ?? ''}: ${body?.message ?? 'request failed'}`);
    this.status = status;
    this.body = body;
  }
}

/** Calls the API with the session's token; JSON in, JSON out; errors carry the API's error body. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (res.status === 401 && path !== '/me') {
    token.clear();
    location.hash = '#/signin';
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/**
 * Server-sent events over fetch (EventSource cannot send an Authorization header). Calls onEvent
 * with each event's parsed data until the stream ends or `signal` aborts.
 */
export async function streamEvents(path, onEvent, signal) {
  const res = await fetch(path, {
    headers: { authorization: `Bearer ${token.get()}`, accept: 'text/event-stream' },
    signal,
  });
  if (!res.ok || !res.body) throw new ApiError(res.status, null);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = chunk
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (data) onEvent(JSON.parse(data));
      i = buf.indexOf('\n\n');
    }
  }
}
