import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import MessageAttachments from './MessageAttachments.vue'
import { message } from '@/test/fakeBackend'
import { ApiError } from '@/api'
import { describeUploadError, formatSize } from '@/lib/attachments'

const files = [
  { id: 'u1', name: 'chart.png', mime_type: 'image/png', size: 2303 },
  { id: 'u2', name: 'report.pdf', mime_type: 'application/pdf', size: 551 },
]

describe('MessageAttachments', () => {
  it('shows images as thumbnails that enlarge, and other files as downloads', async () => {
    const wrapper = mount(MessageAttachments, { props: { message: message({ id: 'q1', role: 'user', attachments: files }) } })
    expect(wrapper.get('[data-test=attachment-thumb] img').attributes('src')).toBe('/api/uploads/u1/thumbnail')
    const file = wrapper.get('[data-test=attachment-file]')
    expect(file.attributes('href')).toBe('/api/uploads/u2')
    expect(file.attributes('download')).toBe('report.pdf')
    expect(file.text()).toContain('551 B')
    await wrapper.get('[data-test=attachment-thumb]').trigger('click')
    expect(wrapper.get('[data-test=lightbox] img').attributes('src')).toBe('/api/uploads/u1')
    await wrapper.get('[data-test=lightbox]').trigger('keydown', { key: 'Escape' })
    expect(wrapper.find('[data-test=lightbox]').exists()).toBe(false)
    await wrapper.get('[data-test=attachment-thumb]').trigger('click')
    await wrapper.get('[data-test=lightbox]').trigger('click')
    expect(wrapper.find('[data-test=lightbox]').exists()).toBe(false)
  })

  it('says on a reply how many older files were left out', () => {
    const wrapper = mount(MessageAttachments, { props: { message: message({ id: 'r1', attachments_omitted: 2 }) } })
    expect(wrapper.get('[data-test=attachments-omitted]').text()).toMatch(/^2 older files were left out/)
    const none = mount(MessageAttachments, { props: { message: message({ id: 'r2', attachments_omitted: 0 }) } })
    expect(none.find('[data-test=attachments-omitted]').exists()).toBe(false)
  })
})

describe('upload errors', () => {
  it('read as too large, wrong type, quota full or a damaged file', () => {
    expect(describeUploadError(new ApiError(413, 'the file is larger than the 20 MB limit'))).toBe(
      'Too large: the file is larger than the 20 MB limit',
    )
    expect(describeUploadError(new ApiError(413, 'your storage quota is full: 500.0 MB of 500 MB used'))).toMatch(
      /^Storage full: your storage quota is full/,
    )
    expect(describeUploadError(new ApiError(415, 'image/svg+xml is not allowed'))).toMatch(/^Wrong type: /)
    expect(describeUploadError(new ApiError(422, 'the image is damaged or truncated'))).toBe(
      'Cannot use this file: the image is damaged or truncated',
    )
  })

  it('sizes read as people write them', () => {
    expect(formatSize(551)).toBe('551 B')
    expect(formatSize(2303)).toBe('2.2 KB')
    expect(formatSize(15 * 1024 * 1024)).toBe('15.0 MB')
  })
})
