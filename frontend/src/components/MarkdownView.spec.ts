import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import MarkdownView from './MarkdownView.vue'

describe('MarkdownView', () => {
  it('copies a code block with its button', async () => {
    const writeText = vi.fn().mockResolvedValue(undefined)
    vi.stubGlobal('navigator', { ...navigator, clipboard: { writeText } })
    const wrapper = mount(MarkdownView, { props: { source: 'Try:\n\n```bash\necho "hi" && ls\n```' } })
    const button = wrapper.get('button[data-copy-code]')
    await button.trigger('click')
    await flushPromises()
    expect(writeText).toHaveBeenCalledWith('echo "hi" && ls\n')
    expect(button.text()).toBe('Copied')
    vi.unstubAllGlobals()
  })

  it('updates as streamed text grows, staying sanitised', async () => {
    const wrapper = mount(MarkdownView, { props: { source: 'Echo: <b' } })
    await wrapper.setProps({ source: 'Echo: <b onmouseover="x()">bold</b> **yes**' })
    expect(wrapper.find('b').exists()).toBe(false)
    expect(wrapper.get('strong').text()).toBe('yes')
    expect(wrapper.text()).toContain('<b onmouseover="x()">bold</b>')
  })
})
