import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import GenerationSettingsFields from './GenerationSettingsFields.vue'
import MessageItem from './MessageItem.vue'
import MarkdownView from './MarkdownView.vue'
import ChatSettings from './ChatSettings.vue'
import { FakeBackend, json, message } from '@/test/fakeBackend'
import type { GenerationSettings, Message, ModelRanges } from '@/api'
import { useConversationStore } from '@/stores/conversation'
import { useChatsStore } from '@/stores/chats'

const flash: ModelRanges = {
  temperature: [0, 2],
  top_p: [0, 1],
  max_output_tokens: [1, 65536],
  thinking_budget: [1, 24576],
  thinking_off: true,
  max_stop_sequences: 5,
}
const noThinking: ModelRanges = { ...flash, thinking_budget: null, thinking_off: false }

describe('ThinkingSection in a reply', () => {
  it('shows thoughts collapsed above the answer', () => {
    const wrapper = mount(MessageItem, {
      props: { message: message({ id: 'm1', content: 'It is 4.', thoughts: 'Adding **two** and two.' }), isLast: true },
    })
    const thinking = wrapper.get('[data-test=thinking]')
    expect(thinking.element.tagName).toBe('DETAILS')
    expect((thinking.element as HTMLDetailsElement).open).toBe(false)
    expect(thinking.get('summary').text()).toBe('Thoughts')
    expect(thinking.get('strong').text()).toBe('two')
    const html = wrapper.html()
    expect(html.indexOf('data-test="thinking"')).toBeLessThan(html.indexOf('It is 4.'))
  })

  it('says "Thinking…" while the reply is still coming, and nothing without thoughts', () => {
    const live = mount(MessageItem, { props: { message: message({ id: 'm1', status: 'streaming', content: '', thoughts: 'Hmm' }), isLast: true } })
    expect(live.get('[data-test=thinking] summary').text()).toBe('Thinking…')
    const plain = mount(MessageItem, { props: { message: message({ id: 'm2', content: 'Hi' }), isLast: true } })
    expect(plain.find('[data-test=thinking]').exists()).toBe(false)
  })
})

describe('code blocks', () => {
  it('wrap long lines when asked, and say so', async () => {
    const wrapper = mount(MarkdownView, { props: { source: '```\n' + 'x'.repeat(300) + '\n```' } })
    const button = wrapper.get('button[data-wrap-code]')
    await button.trigger('click')
    expect(wrapper.get('.code-block').classes()).toContain('wrap')
    expect(button.attributes('aria-pressed')).toBe('true')
    await button.trigger('click')
    expect(wrapper.get('.code-block').classes()).not.toContain('wrap')
    expect(button.attributes('aria-pressed')).toBe('false')
  })
})

describe('GenerationSettingsFields', () => {
  function mountFields(settings: GenerationSettings, ranges: ModelRanges) {
    let current = settings
    const wrapper = mount(GenerationSettingsFields, {
      props: {
        modelValue: settings,
        ranges,
        'onUpdate:modelValue': (value: GenerationSettings) => {
          current = value
          void wrapper.setProps({ modelValue: value })
        },
      },
    })
    return { wrapper, current: () => current }
  }

  it('edits each setting; an emptied field goes back to the default', async () => {
    const { wrapper, current } = mountFields({ temperature: 0.7 }, flash)
    expect((wrapper.get('[data-test=temperature]').element as HTMLInputElement).value).toBe('0.7')
    await wrapper.get('[data-test=temperature]').setValue('')
    await wrapper.get('[data-test=top-p]').setValue('0.9')
    await wrapper.get('[data-test=max-output-tokens]').setValue('2048')
    await wrapper.get('[data-test=thinking-budget]').setValue('-1')
    await wrapper.get('[data-test=include-thoughts]').setValue(true)
    await wrapper.get('[data-test=stop-sequences]').setValue('END\n\nSTOP\n')
    expect(current()).toEqual({
      temperature: null,
      top_p: 0.9,
      max_output_tokens: 2048,
      thinking_budget: -1,
      include_thoughts: true,
      stop_sequences: ['END', 'STOP'],
    })
    expect(wrapper.get('[data-test=temperature]').attributes('max')).toBe('2')
  })

  it('offers no thinking settings for a model that does not think', () => {
    const { wrapper } = mountFields({}, noThinking)
    expect(wrapper.find('[data-test=thinking-budget]').exists()).toBe(false)
    expect(wrapper.find('[data-test=include-thoughts]').exists()).toBe(false)
  })
})

describe('ChatSettings', () => {
  it('saves the generation settings with the model, minus what the model cannot take', async () => {
    const wrapper = mount(ChatSettings, {
      props: {
        models: ['gemini-2.5-flash', 'gemini-2.0-flash'],
        model: 'gemini-2.5-flash',
        systemPrompt: '',
        settings: { temperature: 0.2, thinking_budget: 512 },
        ranges: { 'gemini-2.5-flash': flash, 'gemini-2.0-flash': noThinking },
      },
      attachTo: document.body,
    })
    const form = document.querySelector('[data-test=settings]') as HTMLFormElement
    const select = form.querySelector('[data-test=model]') as HTMLSelectElement
    select.value = 'gemini-2.0-flash'
    select.dispatchEvent(new Event('change'))
    await wrapper.vm.$nextTick()
    form.dispatchEvent(new Event('submit'))
    const saved = wrapper.emitted('save')?.[0]?.[0]
    expect(saved).toEqual({
      model: 'gemini-2.0-flash',
      system_prompt: '',
      settings: { temperature: 0.2, thinking_budget: null, include_thoughts: null },
    })
    wrapper.unmount()
  })
})

describe('conversation store: thoughts and titles', () => {
  let server: FakeBackend
  let stored: Message[]

  beforeEach(() => {
    setActivePinia(createPinia())
    stored = [message({ id: 'u1', role: 'user', content: 'Hi' }), message({ id: 'a1', status: 'pending' })]
    server = new FakeBackend().route('GET', '/api/chats/c1/messages', () => json(stored)).install()
  })
  afterEach(() => useConversationStore().close())

  it('streams thoughts apart from the answer and forgets them on a reset', async () => {
    const store = useConversationStore()
    store.open('c1')
    const stream = await server.waitForStreams(1)
    await vi.waitFor(() => expect(store.loaded).toBe(true))
    const shown = () => store.messages.find((m) => m.id === 'a1')
    stream.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null }, '1-0')
    stream.send('message.thought', { message_id: 'a1', seq: 0, text: 'Let me ' }, '2-0')
    stream.send('message.thought', { message_id: 'a1', seq: 1, text: 'think.' }, '3-0')
    stream.send('message.thought', { message_id: 'a1', seq: 1, text: 'think.' }, '3-0') // replayed
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'Echo: Hi' }, '4-0')
    await vi.waitFor(() => expect(shown()?.content).toBe('Echo: Hi'))
    expect(shown()?.thoughts).toBe('Let me think.')
    stream.send('message.reset', { message_id: 'a1' }, '5-0')
    await vi.waitFor(() => expect(shown()?.content).toBe(''))
    expect(shown()?.thoughts).toBe('')
    const done = message({ id: 'a1', content: 'Echo: Hi', thoughts: 'Stored thoughts' })
    stream.send('message.completed', { message: done }, '6-0')
    await vi.waitFor(() => expect(shown()?.thoughts).toBe('Stored thoughts'))
  })

  it('shows a generated title in the chat list at once', async () => {
    const chats = useChatsStore()
    chats.upsert({ id: 'c1', title: 'Hi', model: 'm', model_in_use: 'm', system_prompt: null, created_at: '', updated_at: '' })
    const store = useConversationStore()
    store.open('c1')
    const stream = await server.waitForStreams(1)
    stream.send('chat.title', { chat_id: 'c1', title: 'A friendly greeting' }, '1-0')
    await vi.waitFor(() => expect(chats.items[0]?.title).toBe('A friendly greeting'))
  })
})
