// Typed calls of the backend's REST API.
import { API_BASE, ApiError, NetworkError, notifyUnauthorized, request } from './http'
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
  Upload,
  User,
  ImportAnswer,
  SearchPage,
  ShareCreated,
  SharedChat,
  ShareLink,
  AdminUser,
  AdminUserChanges,
  AdminUserPage,
  AuditPage,
  AuthOptions,
  Invite,
  InviteCreated,
  LoginSessionInfo,
  OneTimeLink,
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
  send: (chatId: string, content: string, attachments: string[] = []) =>
    request<SendAnswer>(`${chatPath(chatId)}/messages`, {
      method: 'POST',
      body: attachments.length ? { content, role: 'user', attachments } : { content, role: 'user' },
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

  /** A question after `parentId` (a reply of the chat; null: a new first question). */
  sendAfter: (chatId: string, content: string, parentId: string | null) =>
    request<SendAnswer>(`${chatPath(chatId)}/messages`, {
      method: 'POST',
      body: { content, role: 'user', parent_id: parentId },
    }),
  /** Shows the branch through `messageId`; answers that branch, oldest first. */
  setActive: (chatId: string, messageId: string) =>
    request<Message[]>(`${chatPath(chatId)}/active`, { method: 'POST', body: { message_id: messageId } }),
}

export const eventsUrl = (chatId: string) => `/api${chatPath(chatId)}/events`

// Search, export and import, share links.
export const chatExportUrl = (chatId: string, format: 'markdown' | 'json') =>
  `/api${chatPath(chatId)}/export?format=${format}`
export const exportAllUrl = '/api/export'

/** POST /api/import as multipart (request() sends JSON only); errors as request() throws them. */
async function uploadImport(file: File): Promise<ImportAnswer> {
  const form = new FormData()
  form.append('file', file)
  let response: Response
  try {
    response = await fetch('/api/import', { method: 'POST', body: form, credentials: 'same-origin' })
  } catch {
    throw new NetworkError()
  }
  const data: unknown = await response.json().catch(() => null)
  if (!response.ok) {
    if (response.status === 401) notifyUnauthorized()
    const detail = data && typeof data === 'object' && 'detail' in data ? (data as { detail: unknown }).detail : null
    throw new ApiError(response.status, detail ?? `The server answered ${response.status}.`)
  }
  return data as ImportAnswer
}

export const shareApi = {
  search: (q: string, limit = 20, signal?: AbortSignal) =>
    request<SearchPage>(`/search?${new URLSearchParams({ q, limit: String(limit) })}`, { signal }),
  importFile: uploadImport,
  listShares: (chatId: string) => request<ShareLink[]>(`${chatPath(chatId)}/share`),
  createShare: (chatId: string) => request<ShareCreated>(`${chatPath(chatId)}/share`, { method: 'POST' }),
  revokeShare: (chatId: string, shareId: string) =>
    request<void>(`${chatPath(chatId)}/share/${encodeURIComponent(shareId)}`, { method: 'DELETE' }),
  shared: (token: string) => request<SharedChat>(`/shared/${encodeURIComponent(token)}`, { quiet401: true }),
}

// Teams (docs/CONTRACTS.md, "Teams").
const userPath = (userId: string) => `/admin/users/${encodeURIComponent(userId)}`

export const teamsApi = {
  authOptions: () => request<AuthOptions>('/auth/options'),
  registerWithInvite: (email: string, password: string, invite: string) =>
    request<User>('/auth/register', { method: 'POST', body: { email, password, invite }, quiet401: true }),
  resetPassword: (token: string, newPassword: string) =>
    request<void>('/auth/reset', { method: 'POST', body: { token, new_password: newPassword }, quiet401: true }),
  sessions: () => request<LoginSessionInfo[]>('/auth/sessions'),
  revokeSession: (sessionId: string) =>
    request<void>(`/auth/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' }),
  deleteMe: (password: string | null) =>
    request<void>('/auth/me', { method: 'DELETE', body: password ? { password } : {} }),

  users: (q: string, limit: number, before: string | null) => {
    const query = new URLSearchParams({ limit: String(limit) })
    if (q) query.set('q', q)
    if (before) query.set('before', before)
    return request<AdminUserPage>(`/admin/users?${query}`)
  },
  updateUser: (userId: string, changes: AdminUserChanges) =>
    request<AdminUser>(userPath(userId), { method: 'PATCH', body: changes }),
  deleteUser: (userId: string) => request<void>(userPath(userId), { method: 'DELETE' }),
  resetLink: (userId: string) => request<OneTimeLink>(`${userPath(userId)}/reset-link`, { method: 'POST' }),
  invites: () => request<Invite[]>('/admin/invites'),
  createInvite: (email: string | null, expiresHours: number | null) =>
    request<InviteCreated>('/admin/invites', {
      method: 'POST',
      body: { ...(email ? { email } : {}), ...(expiresHours ? { expires_hours: expiresHours } : {}) },
    }),
  deleteInvite: (inviteId: string) =>
    request<void>(`/admin/invites/${encodeURIComponent(inviteId)}`, { method: 'DELETE' }),
  audit: (limit: number, before: number | null) => {
    const query = new URLSearchParams({ limit: String(limit) })
    if (before) query.set('before', String(before))
    return request<AuditPage>(`/admin/audit?${query}`)
  },
}

export const usageApi = {
  own: (days = 30) => request<UsageReport>(`/usage?days=${days}`),
  everyone: (groupBy: UsageGroupBy, days = 30) =>
    request<AdminUsageReport>(`/admin/usage?days=${days}&group_by=${groupBy}`),
}

/** POST /api/uploads with upload progress (fetch reports none), cancellable. */
export function uploadFile(
  file: File,
  onProgress: (fraction: number) => void,
): { done: Promise<Upload>; abort: () => void } {
  const xhr = new XMLHttpRequest()
  const done = new Promise<Upload>((resolve, reject) => {
    xhr.open('POST', `${API_BASE}/uploads`)
    xhr.withCredentials = true
    xhr.setRequestHeader('Accept', 'application/json')
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total)
    }
    xhr.onload = () => {
      let body: unknown = null
      try {
        body = JSON.parse(xhr.responseText)
      } catch {
        body = null
      }
      if (xhr.status === 201) return resolve(body as Upload)
      if (xhr.status === 401) notifyUnauthorized()
      const detail = body && typeof body === 'object' && 'detail' in body ? (body as { detail: unknown }).detail : null
      reject(new ApiError(xhr.status, detail ?? `HTTP ${xhr.status}`))
    }
    xhr.onerror = () => reject(new NetworkError())
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'))
    const form = new FormData()
    form.append('file', file, file.name)
    xhr.send(form)
  })
  return { done, abort: () => xhr.abort() }
}

/** DELETE /api/uploads/{id}: an upload not attached yet (409 once it is). */
export const deleteUpload = (uploadId: string) =>
  request<void>(`/uploads/${encodeURIComponent(uploadId)}`, { method: 'DELETE' })

export const uploadUrl = (uploadId: string) => `${API_BASE}/uploads/${encodeURIComponent(uploadId)}`
export const thumbnailUrl = (uploadId: string) => `${uploadUrl(uploadId)}/thumbnail`
