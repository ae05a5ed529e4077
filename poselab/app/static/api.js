// Talking to the app server: JSON requests that carry the session token (when the app runs
// off loopback), and URLs of images. Errors arrive as ApiError with the server's one line.

export const TOKEN = new URLSearchParams(location.search).get('token');

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  return TOKEN ? { ...extra, 'X-Poselab-Token': TOKEN } : extra;
}

export async function api(path, { method = 'GET', body } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'the poselab app server does not answer (stopped, or the SSH tunnel closed?)');
  }
  const text = await res.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`);
  return data;
}

export const post = (path, body = {}) => api(path, { method: 'POST', body });

// A link to another page of the app (or the labeler) that keeps the token.
export function withToken(url) {
  if (!TOKEN) return url;
  const [path, hash] = url.split('#');
  const sep = path.includes('?') ? '&' : '?';
  return `${path}${sep}token=${encodeURIComponent(TOKEN)}${hash !== undefined ? `#${hash}` : ''}`;
}

export const enc = encodeURIComponent;
export const projectPath = (pid) => `api/projects/${enc(pid)}`;
