// The one place that talks HTTP to the backend. Auth rides on the httpOnly session cookie
// (same origin through nginx), so no token is ever kept where page scripts could read it.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: unknown,
    readonly retryAfter: number | null = null,
  ) {
    super(describeDetail(detail) || `HTTP ${status}`)
    this.name = 'ApiError'
  }
}

/** The network itself failed (offline, DNS, connection refused): nothing reached the backend. */
export class NetworkError extends Error {
  constructor() {
    super('Cannot reach the server. Check your connection.')
    this.name = 'NetworkError'
  }
}

/** Turns FastAPI's `detail` (a string, or a list of validation errors) into one readable line. */
export function describeDetail(detail: unknown): string {
  if (typeof detail === 'string') return detail
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        if (item && typeof item === 'object' && 'msg' in item) {
          const msg = String((item as { msg: unknown }).msg)
          return msg.replace(/^Value error, /, '')
        }
        return String(item)
      })
      .join('; ')
  }
  if (detail && typeof detail === 'object' && 'message' in detail) {
    return String((detail as { message: unknown }).message)
  }
  return ''
}

type Listener = () => void
const unauthorizedListeners = new Set<Listener>()

/** Called when any call answers 401, so the app can send the user to sign in. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

export function notifyUnauthorized(): void {
  unauthorizedListeners.forEach((l) => l())
}

export const API_BASE = '/api'

export interface RequestOptions {
  method?: string
  body?: unknown
  signal?: AbortSignal
  /** Do not broadcast a 401 (sign-in and the start-up session check expect it). */
  quiet401?: boolean
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const init: RequestInit = {
    method: options.method ?? 'GET',
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    signal: options.signal,
  }
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body)
    init.headers = { ...init.headers, 'Content-Type': 'application/json' }
  }
  let response: Response
  try {
    response = await fetch(API_BASE + path, init)
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new NetworkError()
  }
  if (response.status === 204) return undefined as T
  const text = await response.text()
  let data: unknown = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = null
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !options.quiet401) notifyUnauthorized()
    const detail =
      data && typeof data === 'object' && 'detail' in data
        ? (data as { detail: unknown }).detail
        : fallbackDetail(response.status)
    const retryAfterHeader = response.headers.get('Retry-After')
    const retryAfter = retryAfterHeader ? Number.parseInt(retryAfterHeader, 10) : NaN
    throw new ApiError(response.status, detail, Number.isFinite(retryAfter) ? retryAfter : null)
  }
  return data as T
}

function fallbackDetail(status: number): string {
  if (status === 502 || status === 503 || status === 504) {
    return 'The server is unavailable right now. Try again in a moment.'
  }
  return `The server answered ${status}.`
}
