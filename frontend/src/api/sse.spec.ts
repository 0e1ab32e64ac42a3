import { afterEach, describe, expect, it, vi } from 'vitest'
import { backoffDelay, openEventStream, SseParser, type SseFrame, type StreamHandle } from './sse'
import { FakeBackend } from '@/test/fakeBackend'

describe('SseParser', () => {
  it('assembles frames split anywhere across chunks, with CRLF and comments', () => {
    const parser = new SseParser()
    const frames = [
      ...parser.feed('id: 1-0\r\nevent: message.delta\r\nda'),
      ...parser.feed('ta: {"seq":0}\r\n\r'),
      ...parser.feed('\n: heartbeat\n\nid: 2-0\nevent: message.reset\ndata: {}\n\n'),
    ]
    expect(frames).toEqual([
      { id: '1-0', event: 'message.delta', data: '{"seq":0}' },
      { id: '2-0', event: 'message.reset', data: '{}' },
    ])
  })

  it('joins multi-line data and remembers the last id and retry', () => {
    const parser = new SseParser()
    const frames = parser.feed('retry: 3000\nid: 7-1\ndata: a\ndata: b\n\ndata: c\n\n')
    expect(frames).toEqual([
      { id: '7-1', event: 'message', data: 'a\nb' },
      { id: '7-1', event: 'message', data: 'c' },
    ])
    expect(parser.retryMs).toBe(3000)
  })
})

describe('backoffDelay', () => {
  it('doubles up to the ceiling, jittered within its upper half', () => {
    expect(backoffDelay(0, 500, 15000, 0)).toBe(250)
    expect(backoffDelay(0, 500, 15000, 1)).toBe(500)
    expect(backoffDelay(3, 500, 15000, 1)).toBe(4000)
    expect(backoffDelay(10, 500, 15000, 1)).toBe(15000)
    expect(backoffDelay(10, 500, 15000, 0)).toBe(7500)
  })
})

describe('openEventStream', () => {
  let handle: StreamHandle | null = null
  afterEach(() => handle?.close())

  it('reconnects after a drop and resumes with Last-Event-ID', async () => {
    const server = new FakeBackend().install()
    const frames: SseFrame[] = []
    const opens = vi.fn()
    handle = openEventStream({ url: '/api/chats/c1/events', onFrame: (f) => frames.push(f), onOpen: opens, initialDelayMs: 10 })
    const first = await server.waitForStreams(1)
    expect(first.lastEventId).toBeNull()
    first.send('message.delta', { seq: 0 }, '5-0')
    first.send('message.delta', { seq: 1 }, '6-0')
    await vi.waitFor(() => expect(frames).toHaveLength(2))
    first.end()

    const second = await server.waitForStreams(2)
    expect(second.lastEventId).toBe('6-0')
    expect(opens).toHaveBeenCalledTimes(2)
  })

  it('resumes from an id-only frame, which dispatches no event', async () => {
    const server = new FakeBackend().install()
    const frames: SseFrame[] = []
    handle = openEventStream({ url: '/api/chats/c1/events', onFrame: (f) => frames.push(f), initialDelayMs: 10 })
    const first = await server.waitForStreams(1)
    first.resumeAt('9-0')
    first.end()

    const second = await server.waitForStreams(2)
    expect(second.lastEventId).toBe('9-0')
    expect(frames).toHaveLength(0)
  })

  it('drops a silent connection and reconnects', async () => {
    const server = new FakeBackend().install()
    handle = openEventStream({ url: '/api/chats/c1/events', onFrame: () => undefined, idleTimeoutMs: 50, initialDelayMs: 10 })
    const first = await server.waitForStreams(1)
    await server.waitForStreams(2)
    expect(first.closed).toBe(true)
  })

  it('keeps a connection that sends heartbeats', async () => {
    const server = new FakeBackend().install()
    handle = openEventStream({ url: '/api/chats/c1/events', onFrame: () => undefined, idleTimeoutMs: 80, initialDelayMs: 10 })
    const first = await server.waitForStreams(1)
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 30))
      first.comment()
    }
    expect(server.streams).toHaveLength(1)
    expect(first.closed).toBe(false)
  })

  it('backs off between failed attempts and stops for good on 404', async () => {
    const server = new FakeBackend().install()
    server.streamStatus = 503
    const states: string[] = []
    const fatal = vi.fn()
    handle = openEventStream({
      url: '/api/chats/c1/events',
      onFrame: () => undefined,
      onState: (s, d) => states.push(`${s}:${d.attempt}`),
      onFatal: fatal,
      initialDelayMs: 5,
      random: () => 1,
    })
    await vi.waitFor(() => expect(states).toContain('reconnecting:3'))
    server.streamStatus = 404
    await vi.waitFor(() => expect(fatal).toHaveBeenCalledWith(404))
    expect(handle.state).toBe('closed')
  })

  it('reconnectNow skips the backoff wait', async () => {
    const server = new FakeBackend().install()
    handle = openEventStream({ url: '/api/chats/c1/events', onFrame: () => undefined, initialDelayMs: 60_000 })
    const first = await server.waitForStreams(1)
    first.end()
    await vi.waitFor(() => expect(handle?.state).toBe('reconnecting'))
    handle.reconnectNow()
    await server.waitForStreams(2)
  })
})
