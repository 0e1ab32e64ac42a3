// A stand-in for the backend's HTTP for unit tests: answers REST calls from a route table and
// serves event streams the test writes to frame by frame. (The end-to-end suite uses the real one.)
import { vi } from 'vitest'
import type { Message } from '@/api'

export interface OpenStream {
  url: string
  lastEventId: string | null
  send(type: string, data: unknown, id?: string): void
  /** The id-only frame the backend opens a stream with when no Last-Event-ID was sent. */
  resumeAt(id: string): void
  comment(): void
  end(): void
  readonly closed: boolean
}

type Handler = (init: RequestInit, url: string) => Response | Promise<Response>

export function json(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(data), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  })
}

export class FakeBackend {
  readonly streams: OpenStream[] = []
  readonly calls: { method: string; url: string; body: unknown }[] = []
  private routes = new Map<string, Handler>()
  /** Status to answer the next event-stream connects with, instead of opening a stream. */
  streamStatus: number | null = null
  private waiters: (() => void)[] = []

  route(method: string, path: string, handler: Handler | unknown): this {
    this.routes.set(`${method} ${path}`, typeof handler === 'function' ? (handler as Handler) : () => json(handler))
    return this
  }

  install(): this {
    vi.stubGlobal('fetch', (input: string, init: RequestInit = {}) => this.fetch(input, init))
    return this
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    const method = init.method ?? 'GET'
    this.calls.push({ method, url, body: init.body ? JSON.parse(String(init.body)) : undefined })
    if (url.endsWith('/events')) return this.openStream(url, init)
    const path = url.split('?')[0] ?? url
    const handler = this.routes.get(`${method} ${path}`)
    if (!handler) return json({ detail: 'Not Found' }, 404)
    return handler(init, url)
  }

  private openStream(url: string, init: RequestInit): Response {
    if (this.streamStatus !== null) return json({ detail: 'nope' }, this.streamStatus)
    const headers = new Headers(init.headers)
    const encoder = new TextEncoder()
    let controller!: ReadableStreamDefaultController<Uint8Array>
    let closed = false
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c
      },
      cancel() {
        closed = true
      },
    })
    init.signal?.addEventListener('abort', () => {
      if (closed) return
      closed = true
      controller.error(new DOMException('aborted', 'AbortError'))
    })
    const stream: OpenStream = {
      url,
      lastEventId: headers.get('Last-Event-ID'),
      send(type, data, id) {
        if (closed) return
        controller.enqueue(encoder.encode(`${id ? `id: ${id}\n` : ''}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`))
      },
      resumeAt(id) {
        if (!closed) controller.enqueue(encoder.encode(`id: ${id}\n\n`))
      },
      comment() {
        if (!closed) controller.enqueue(encoder.encode(': ping\n\n'))
      },
      end() {
        if (closed) return
        closed = true
        controller.close()
      },
      get closed() {
        return closed
      },
    }
    this.streams.push(stream)
    this.waiters.splice(0).forEach((w) => w())
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
  }

  /** Resolves once `count` streams have been opened in all. */
  async waitForStreams(count: number): Promise<OpenStream> {
    await vi.waitFor(() => {
      if (this.streams.length < count) throw new Error(`${this.streams.length} of ${count} streams`)
    })
    return this.streams[count - 1] as OpenStream
  }
}

let counter = 0
export function message(fields: Partial<Message> & Pick<Message, 'id'>): Message {
  counter += 1
  return {
    chat_id: 'c1',
    role: 'assistant',
    content: '',
    status: 'completed',
    error: null,
    attempt: 0,
    model: 'gemini-2.5-flash',
    prompt_tokens: null,
    completion_tokens: null,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString(),
    completed_at: null,
    next_attempt_at: null,
    parent_id: null,
    sibling_ids: [fields.id],
    ...fields,
  }
}
