import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import AttachmentTray from './AttachmentTray.vue'
import { useAttachments } from '@/lib/attachments'
import { FakeBackend } from '@/test/fakeBackend'

/** The browser's XMLHttpRequest for POST /api/uploads, driven by the test (progress, answer). */
class FakeUpload {
  static last: FakeUpload
  upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = {
    onprogress: null,
  }
  onload: (() => void) | null = null
  onerror: (() => void) | null = null
  onabort: (() => void) | null = null
  status = 0
  responseText = ''
  withCredentials = false
  url = ''
  constructor() {
    FakeUpload.last = this
  }
  open(_method: string, url: string) {
    this.url = url
  }
  setRequestHeader() {}
  send() {}
  abort() {
    this.onabort?.()
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total })
  }
  answer(status: number, body: unknown) {
    this.status = status
    this.responseText = JSON.stringify(body)
    this.onload?.()
  }
}

function pick(wrapper: ReturnType<typeof mount>, file: File) {
  const input = wrapper.get('[data-test=attach-input]').element as HTMLInputElement
  Object.defineProperty(input, 'files', { value: [file], configurable: true })
  return wrapper.get('[data-test=attach-input]').trigger('change')
}

describe('AttachmentTray', () => {
  afterEach(() => {
    useAttachments().clear()
    vi.unstubAllGlobals()
  })

  it('shows a chip with name, size and progress, then the uploaded file; remove deletes it', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeUpload)
    const backend = new FakeBackend().route('DELETE', '/api/uploads/up1', () => new Response(null, { status: 204 })).install()
    const wrapper = mount(AttachmentTray)
    await pick(wrapper, new File(['x'.repeat(3000)], 'notes.txt', { type: 'text/plain' }))
    const chip = wrapper.get('[data-test=attachment-chip]')
    expect(chip.text()).toContain('notes.txt')
    expect(chip.text()).toContain('2.9 KB')
    expect(chip.attributes('data-state')).toBe('uploading')
    expect(FakeUpload.last.url).toBe('/api/uploads')

    FakeUpload.last.progress(1500, 3000)
    await flushPromises()
    expect((wrapper.get('progress').element as HTMLProgressElement).value).toBe(0.5)

    FakeUpload.last.answer(201, { id: 'up1', name: 'notes.txt', mime_type: 'text/plain', size: 3000, sha256: 'ab' })
    await flushPromises()
    expect(wrapper.get('[data-test=attachment-chip]').attributes('data-state')).toBe('ready')
    expect(wrapper.find('progress').exists()).toBe(false)
    expect(useAttachments().readyIds.value).toEqual(['up1'])

    await wrapper.get('[data-test=attachment-remove]').trigger('click')
    await flushPromises()
    expect(wrapper.find('[data-test=attachment-chip]').exists()).toBe(false)
    expect(backend.calls.map((c) => `${c.method} ${c.url}`)).toContain('DELETE /api/uploads/up1')
  })

  it('says why a file was refused', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeUpload)
    const wrapper = mount(AttachmentTray)
    await pick(wrapper, new File(['<svg/>'], 'logo.svg', { type: 'image/svg+xml' }))
    FakeUpload.last.answer(415, { detail: 'this file type is not supported' })
    await flushPromises()
    expect(wrapper.get('[data-test=attachment-chip]').attributes('data-state')).toBe('failed')
    expect(wrapper.get('[data-test=attachment-error]').text()).toMatch(/^Wrong type: /)
  })
})
