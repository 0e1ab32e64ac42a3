// Typed calls of the backend's REST API.
import { request } from './http'
import type {
  Chat,
  ChatChanges,
  KeyError,
  KeySeries,
  PoolStatus,
  SeriesWindow,
  ChatPage,
  LoginAnswer,
  Message,
  Models,
  PoolKey,
  PublicConfig,
  SendAnswer,
  User,
  AdminUsageReport,
  UsageGroupBy,
  UsageReport,
} from './types'

export { ApiError, NetworkError, describeDetail, notifyUnauthorized, onUnauthorized } from './http'
export * from './types'

const chatPath = (chatId: string) => `/chats/${encodeURIComponent(chatId)}`

export const api = {
  config: () => request<PublicConfig>('/config'),
  models: () => request<Models>('/models'),

  register: (email: string, password: string) =>
    request<User>('/auth/register', { method: 'POST', body: { email, password }, quiet401: true }),
  login: (email: string, password: string) =>
    request<LoginAnswer>('/auth/login', { method: 'POST', body: { email, password }, quiet401: true }),
  logout: () => request<void>('/auth/logout', { method: 'POST', quiet401: true }),
  logoutAll: () => request<void>('/auth/logout-all', { method: 'POST', quiet401: true }),
  changePassword: (currentPassword: string, newPassword: string) =>
    request<void>('/auth/password', {
      method: 'POST',
      body: { current_password: currentPassword, new_password: newPassword },
    }),
  me: () => request<User>('/auth/me', { quiet401: true }),

  listChats: (limit: number, before: string | null) => {
    const query = new URLSearchParams({ limit: String(limit) })
    if (before) query.set('before', before)
    return request<ChatPage>(`/chats?${query}`)
  },
  createChat: (fields: ChatChanges) => request<Chat>('/chats', { method: 'POST', body: fields }),
  getChat: (chatId: string) => request<Chat>(chatPath(chatId)),
  updateChat: (chatId: string, changes: ChatChanges) =>
    request<Chat>(chatPath(chatId), { method: 'PATCH', body: changes }),
  deleteChat: (chatId: string) => request<void>(chatPath(chatId), { method: 'DELETE' }),

  messages: (chatId: string, signal?: AbortSignal) =>
    request<Message[]>(`${chatPath(chatId)}/messages`, { signal }),
  send: (chatId: string, content: string) =>
    request<SendAnswer>(`${chatPath(chatId)}/messages`, {
      method: 'POST',
      body: { content, role: 'user' },
    }),
  cancel: (chatId: string, messageId: string) =>
    request<Message>(`${chatPath(chatId)}/messages/${encodeURIComponent(messageId)}/cancel`, {
      method: 'POST',
    }),
  retry: (chatId: string, messageId: string) =>
    request<Message>(`${chatPath(chatId)}/messages/${encodeURIComponent(messageId)}/retry`, {
      method: 'POST',
    }),

  adminKeys: () => request<PoolKey[]>('/admin/keys'),
  adminPool: () => request<PoolStatus>('/admin/pool'),
  addKey: (key: string, label: string | null) =>
    request<PoolKey>('/admin/keys', { method: 'POST', body: label ? { key, label } : { key } }),
  updateKey: (keyId: string, changes: { label?: string; disabled?: boolean }) =>
    request<PoolKey>(`/admin/keys/${encodeURIComponent(keyId)}`, { method: 'PATCH', body: changes }),
  removeKey: (keyId: string) => request<void>(`/admin/keys/${encodeURIComponent(keyId)}`, { method: 'DELETE' }),
  keyErrors: (keyId: string) => request<KeyError[]>(`/admin/keys/${encodeURIComponent(keyId)}/errors`),
  keySeries: (window: SeriesWindow, keyId: string | null) => {
    const query = new URLSearchParams({ window })
    if (keyId) query.set('key_id', keyId)
    return request<KeySeries>(`/admin/keys/series?${query}`)
  },
}

export const eventsUrl = (chatId: string) => `/api${chatPath(chatId)}/events`

export const usageApi = {
  own: (days = 30) => request<UsageReport>(`/usage?days=${days}`),
  everyone: (groupBy: UsageGroupBy, days = 30) =>
    request<AdminUsageReport>(`/admin/usage?days=${days}&group_by=${groupBy}`),
}
