import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api, type Chat, type ChatChanges } from '@/api'

const PAGE_SIZE = 30

/** The sidebar: the user's chats, newest activity first, fetched a page at a time. */
export const useChatsStore = defineStore('chats', () => {
  const items = ref<Chat[]>([])
  const next = ref<string | null>(null)
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<string | null>(null)

  let generation = 0

  async function loadFirstPage(): Promise<void> {
    const mine = ++generation
    loading.value = true
    error.value = null
    try {
      const page = await api.listChats(PAGE_SIZE, null)
      if (mine !== generation) return
      items.value = page.items
      next.value = page.next
      loaded.value = true
    } catch (err) {
      if (mine === generation) error.value = (err as Error).message
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function loadMore(): Promise<void> {
    if (loading.value || !next.value) return
    const mine = generation
    loading.value = true
    try {
      const page = await api.listChats(PAGE_SIZE, next.value)
      if (mine !== generation) return
      const known = new Set(items.value.map((c) => c.id))
      items.value.push(...page.items.filter((c) => !known.has(c.id)))
      next.value = page.next
    } catch (err) {
      error.value = (err as Error).message
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  function upsert(chat: Chat, toTop = false): void {
    const index = items.value.findIndex((c) => c.id === chat.id)
    if (index !== -1) items.value.splice(index, 1)
    if (toTop || index === -1) items.value.unshift(chat)
    else items.value.splice(index, 0, chat)
  }

  async function create(fields: ChatChanges): Promise<Chat> {
    const chat = await api.createChat(fields)
    upsert(chat, true)
    return chat
  }

  async function update(chatId: string, changes: ChatChanges): Promise<Chat> {
    const chat = await api.updateChat(chatId, changes)
    upsert(chat)
    return chat
  }

  async function remove(chatId: string): Promise<void> {
    await api.deleteChat(chatId)
    items.value = items.value.filter((c) => c.id !== chatId)
  }

  /** A message was sent: the chat now has the newest activity (and maybe its automatic title). */
  async function refreshChat(chatId: string): Promise<void> {
    try {
      upsert(await api.getChat(chatId), true)
    } catch {
      // The list catches up at the next load; nothing the user needs to act on.
    }
  }

  function reset(): void {
    generation++
    items.value = []
    next.value = null
    loaded.value = false
    loading.value = false
    error.value = null
  }

  return { items, next, loaded, loading, error, loadFirstPage, loadMore, upsert, create, update, remove, refreshChat, reset }
})
