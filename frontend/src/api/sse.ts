// Server-sent events over fetch: unlike EventSource it lets us send `Last-Event-ID` on our own
// reconnects, choose the backoff, and notice a silent connection (no heartbeat) and drop it.

export interface SseFrame {
  id: string | null
  event: string
  data: string
}

/** Incremental parser of the `text/event-stream` format (WHATWG HTML, "Parsing an event stream"). */
export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | null = null
  /** Set at each frame's end, data or not: an id-only frame moves it without an event. */
  lastEventId: string | null = null
  /** The last `retry:` the server sent, in ms. */
  retryMs: number | null = null

  feed(chunk: string): SseFrame[] {
    this.buffer += chunk
    const frames: SseFrame[] = []
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer)
      if (!match) break
      // A lone '\r' at the end may be the first half of '\r\n': wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break
      const line = this.buffer.slice(0, match.index)
      this.buffer = this.buffer.slice(match.index + match[0].length)
      const frame = this.line(line)
      if (frame) frames.push(frame)
    }
    return frames
  }

  private line(line: string): SseFrame | null {
    if (line === '') {
      this.lastEventId = this.id
      if (this.data.length === 0) {
        this.event = ''
        return null
      }
      const frame = { id: this.id, event: this.event || 'message', data: this.data.join('\n') }
      this.data = []
      this.event = ''
      return frame
    }
    if (line.startsWith(':')) return null
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) this.id = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        break
    }
    return null
  }
}

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface StreamOptions {
  url: string
  onFrame: (frame: SseFrame) => void
  /** Each successful (re)connect: the caller reloads state it may have missed. */
  onOpen?: () => void
  onState?: (state: StreamState, detail: { attempt: number; delayMs: number }) => void
  /** 401/403/404: retrying cannot help, the stream stops. */
  onFatal?: (status: number) => void
  lastEventId?: string | null
  initialDelayMs?: number
  maxDelayMs?: number
  /** No bytes (not even a heartbeat) for this long: the connection is dead, reconnect. */
  idleTimeoutMs?: number
  /** A connection that lived this long counts as healthy, so the backoff starts over. */
  healthyAfterMs?: number
  fetch?: typeof fetch
  random?: () => number
}

export interface StreamHandle {
  close(): void
  /** Skip the backoff wait (network back, tab visible again). */
  reconnectNow(): void
  readonly state: StreamState
  readonly lastEventId: string | null
}

export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** attempt)
  // "Equal jitter": half fixed, half random, so many tabs do not reconnect in step.
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}

export function openEventStream(options: StreamOptions): StreamHandle {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  const random = options.random ?? Math.random
  const initialDelay = options.initialDelayMs ?? 500
  const maxDelay = options.maxDelayMs ?? 15_000
  const idleTimeout = options.idleTimeoutMs ?? 45_000
  const healthyAfter = options.healthyAfterMs ?? 5_000

  let lastEventId = options.lastEventId ?? null
  let state: StreamState = 'connecting'
  let closed = false
  let controller: AbortController | null = null
  let wakeUp: (() => void) | null = null
  let serverRetryMs: number | null = null

  const setState = (next: StreamState, attempt = 0, delayMs = 0) => {
    state = next
    options.onState?.(next, { attempt, delayMs })
  }

  async function connectOnce(): Promise<{ healthy: boolean }> {
    controller = new AbortController()
    const abort = controller
    const headers: Record<string, string> = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' }
    if (lastEventId) headers['Last-Event-ID'] = lastEventId
    let idleTimer: ReturnType<typeof setTimeout> | undefined
    const armIdle = () => {
      clearTimeout(idleTimer)
      idleTimer = setTimeout(() => abort.abort(), idleTimeout)
    }
    const started = Date.now()
    let gotEvent = false
    try {
      armIdle()
      const response = await doFetch(options.url, {
        headers,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: abort.signal,
      })
      if ([401, 403, 404].includes(response.status)) {
        closed = true
        setState('closed')
        options.onFatal?.(response.status)
        return { healthy: false }
      }
      if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`)
      setState('open')
      options.onOpen?.()
      const parser = new SseParser()
      const reader = response.body.getReader()
      const decoder = new TextDecoder()
      for (;;) {
        armIdle()
        const { value, done } = await reader.read()
        if (done || closed) break
        for (const frame of parser.feed(decoder.decode(value, { stream: true }))) {
          gotEvent = true
          options.onFrame(frame)
        }
        if (parser.lastEventId !== null) lastEventId = parser.lastEventId
        if (parser.retryMs !== null) serverRetryMs = parser.retryMs
      }
    } catch {
      // Aborted, network error or bad answer: the loop below decides what next.
    } finally {
      clearTimeout(idleTimer)
      controller = null
    }
    return { healthy: gotEvent || Date.now() - started >= healthyAfter }
  }

  async function run() {
    let attempt = 0
    setState('connecting')
    while (!closed) {
      const { healthy } = await connectOnce()
      if (closed) break
      if (healthy) attempt = 0
      const delay = Math.max(serverRetryMs ?? 0, backoffDelay(attempt, initialDelay, maxDelay, random()))
      attempt += 1
      setState('reconnecting', attempt, delay)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        wakeUp = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wakeUp = null
      if (!closed) setState('connecting', attempt)
    }
  }

  void run()

  return {
    close() {
      if (closed) return
      closed = true
      controller?.abort()
      wakeUp?.()
      setState('closed')
    },
    reconnectNow() {
      if (closed) return
      if (wakeUp) wakeUp()
    },
    get state() {
      return state
    },
    get lastEventId() {
      return lastEventId
    },
  }
}
