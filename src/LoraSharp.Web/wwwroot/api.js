// Talking to the server: JSON GET/POST that turn {error} answers into exceptions, and a reader for server-sent
// events in a fetch response (EventSource cannot POST). The access cookie travels by itself (same origin).

export async function getJson(url) {
  return answer(await fetch(url, { headers: { Accept: 'application/json' } }));
}

export async function postJson(url, body, signal) {
  return answer(await fetch(url, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body ?? {}), signal,
  }));
}

export async function upload(url, file) {
  return answer(await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: file }));
}

async function answer(response) {
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) throw new Error(data?.error ?? `${response.status} ${response.statusText}`);
  return data;
}

// Calls onEvent(name, data) for every event of a text/event-stream response until it ends.
export async function readEvents(response, onEvent) {
  if (!response.ok) await answer(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}
