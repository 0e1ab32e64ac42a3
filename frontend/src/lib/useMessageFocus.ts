import { nextTick, watch, type Ref } from 'vue'
import { useRoute } from 'vue-router'
import './messageFocus.css'

const HIGHLIGHT_MS = 4000

/** A chat opened from search (`?m=<message id>`): once that message is on the page, scroll it
 * to the middle and highlight it for a moment. Runs after the view's own scroll to the bottom. */
export function useMessageFocus(scroller: Ref<HTMLElement | null>, messageCount: () => number): void {
  const route = useRoute()
  let done = ''
  watch(
    () => [route.query.m, route.params.chatId, messageCount()] as const,
    async ([wanted, chatId]) => {
      if (typeof wanted !== 'string' || `${chatId}/${wanted}` === done) return
      await nextTick()
      const element = scroller.value?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(wanted)}"]`)
      if (!element) return
      done = `${chatId}/${wanted}`
      requestAnimationFrame(() => {
        element.scrollIntoView({ block: 'center' })
        element.classList.add('search-focus')
        setTimeout(() => element.classList.remove('search-focus'), HIGHLIGHT_MS)
      })
    },
    { immediate: true },
  )
}
