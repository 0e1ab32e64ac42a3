// Shapes of the backend's REST API (DESIGN.md "REST API", docs/CONTRACTS.md).

export interface User {
  id: string
  email: string
  is_admin: boolean
  created_at: string
}

export interface LoginAnswer {
  access_token: string
  token_type: 'bearer'
  user: User
}

export interface Chat {
  id: string
  title: string
  model: string
  /** The model new replies use: `model`, or the default once the server no longer offers it. */
  model_in_use: string
  system_prompt: string | null
  created_at: string
  updated_at: string
}

export interface ChatPage {
  items: Chat[]
  next: string | null
}

export interface ChatChanges {
  title?: string
  model?: string
  system_prompt?: string | null
}

export type MessageStatus =
  | 'pending'
  | 'queued'
  | 'streaming'
  | 'retrying'
  | 'completed'
  | 'failed'
  | 'cancelled'

const FINAL_STATUSES: readonly MessageStatus[] = ['completed', 'failed', 'cancelled']

export function isFinal(status: MessageStatus): boolean {
  return FINAL_STATUSES.includes(status)
}

export interface Message {
  id: string
  chat_id: string
  role: 'user' | 'assistant'
  content: string
  status: MessageStatus
  error: string | null
  attempt: number
  model: string | null
  prompt_tokens: number | null
  completion_tokens: number | null
  created_at: string
  completed_at: string | null
  /** When the next automatic attempt is due, while `retrying`. */
  next_attempt_at: string | null
  /** While `queued` (events only): place in the key pool's line and expected start (epoch ms). */
  queue_position?: number | null
  expected_start_at?: number | null
}

export interface SendAnswer {
  user_message: Message
  assistant_message: Message
}

export interface Models {
  default: string
  models: string[]
}

export interface PublicConfig {
  allow_registration: boolean
  max_message_chars: number
  /** Optional: lets the UI say "attempt 2 of 4". */
  max_retries?: number
}

export type KeyState = 'active' | 'cooling' | 'disabled'

export interface PoolKeyModel {
  model: string
  state: KeyState
  /** cooling: rpm, rpd, tpm or 429; disabled: the key's reason. */
  reason: string | null
  used_last_minute: number
  limit_per_minute: number | null
  used_today: number
  limit_per_day: number | null
  tokens_last_minute: number
  limit_tokens_per_minute: number | null
  cooldown_until: string | null
  cooldown_remaining_seconds: number
  requests_total: number
}

export interface PoolKey {
  id: string
  label: string
  source?: 'env' | 'admin'
  state: KeyState
  /** disabled: admin_disabled, key_invalid, api_not_enabled, region, billing, permission_denied. */
  reason?: string | null
  used_last_minute: number
  cooldown_until: string | number | null
  failures: number
  requests_total: number
  last_error: string | null
  disabled_at?: string | null
  recheck_at?: string | null
  added_at?: string | null
  models?: PoolKeyModel[]
}

export interface KeyError {
  at: string
  model: string | null
  code: string | null
  status: number | null
  message: string
}

export type SeriesWindow = 'hour' | 'day'

export interface KeySeries {
  window: SeriesWindow
  step_seconds: number
  points: { at: string; calls: number; rate_limited: number; errors: number }[]
}

export interface PoolStatus {
  throttled_until: string | null
  limits: Record<string, { rpm: number | null; rpd: number | null; tpm: number | null }>
  capacity: Record<string, { per_minute: number; waiting: number; next_free_at: string | null; updated_at: string | null }>
}

// Event stream payloads (CONTRACTS.md "Event stream").
export interface DeltaEvent {
  message_id: string
  seq: number
  text: string
}

export interface StatusEvent {
  message_id: string
  status: MessageStatus
  attempt: number
  next_attempt_at: string | null
  /** `queued` only (CONTRACTS.md "Key pool v2"). */
  queue_position?: number | null
  eta_seconds?: number | null
  error: string | { code?: string; message?: string } | null
}

export interface CompletedEvent {
  message: Message
}

export interface ResetEvent {
  message_id: string
}

// Message tree (CONTRACTS.md "Message tree"): these merge into the interfaces above.
export interface Message {
  /** The message this one follows; null for a chat's first question (and its edits). */
  parent_id: string | null
  /** The messages sharing this one's parent, oldest first, this one included. */
  sibling_ids: string[]
}

export interface StatusEvent {
  /** Set by the backend's events; the worker's (`streaming`, `queued`) leave it out. */
  parent_id?: string | null
}

export interface ResetEvent {
  parent_id?: string | null
}

// Search, export and import, share links (CONTRACTS.md, "Search, export, share").

/** One hit of GET /api/search: `highlights` are [start, end) offsets into `snippet`, in
 * UTF-16 code units (JavaScript string indexes). A title hit has no message_id. */
export interface SearchHit {
  chat_id: string
  chat_title: string
  message_id: string | null
  role: 'user' | 'assistant' | null
  snippet: string
  highlights: [number, number][]
  created_at: string
}

export interface SearchPage {
  items: SearchHit[]
  next: string | null
}

export interface ImportAnswer {
  imported: number
  chats: { id: string; title: string }[]
}

export interface ShareLink {
  id: string
  title: string
  shared_at: string
  message_count: number
}

/** The token and url are shown this once: the server keeps only a hash. */
export interface ShareCreated extends Omit<ShareLink, 'title'> {
  token: string
  url: string
}

export interface SharedChat {
  title: string
  messages: { role: 'user' | 'assistant'; content: string; created_at: string }[]
  shared_at: string
}

// Teams: user administration, invites, the audit log, account settings (docs/CONTRACTS.md, "Teams").
export interface UserLimits {
  messages_per_day: number | null
  tokens_per_day: number | null
}

export interface AdminUser {
  id: string
  email: string
  is_admin: boolean
  disabled: boolean
  sso: boolean
  created_at: string
  last_seen_at: string | null
  usage_today: { messages: number; tokens: number }
  limits: UserLimits
}

export interface AdminUserPage {
  items: AdminUser[]
  next: string | null
}

export interface AdminUserChanges {
  is_admin?: boolean
  disabled?: boolean
  limits?: Partial<UserLimits>
}

export interface OneTimeLink {
  token: string
  url: string
  expires_at: string
}

export interface InviteCreated extends OneTimeLink {
  id: string
  email: string | null
}

export interface Invite {
  id: string
  email: string | null
  created_at: string
  expires_at: string
  used_at: string | null
  used_by: string | null
  status: 'open' | 'used' | 'expired'
}

export interface AuditEntry {
  id: number
  actor_email: string
  action: string
  target: string | null
  detail: Record<string, unknown>
  created_at: string
}

export interface AuditPage {
  items: AuditEntry[]
  next: number | null
}

export interface LoginSessionInfo {
  id: string
  device: string | null
  created_at: string
  last_seen_at: string | null
  current: boolean
}

export interface AuthOptions {
  registration: 'true' | 'false' | 'invite'
  password_login: boolean
  sso: boolean
}

// Quotas and usage (CONTRACTS.md "Quotas and usage"). Days are UTC, `date` is YYYY-MM-DD.
export interface UsageDay {
  date: string
  model: string
  messages: number
  prompt_tokens: number
  completion_tokens: number
}

export interface UsageLimits {
  /** null: no limit. */
  messages_per_day: number | null
  tokens_per_day: number | null
}

export interface UsageReport {
  days: UsageDay[]
  today: { messages: number; tokens: number }
  limits: UsageLimits
  /** The next 00:00 UTC, when the daily counts start again. */
  resets_at: string
}

export type UsageGroupBy = 'user' | 'model' | 'key'

export interface AdminUsageDay extends UsageDay {
  user_id?: string | null
  email?: string | null
  /** group_by=key: `messages` counts the replies that key gave. */
  key_id?: string | null
}

export interface AdminUsageReport {
  group_by: UsageGroupBy
  days: AdminUsageDay[]
  resets_at: string
}

/** A stored reply's time to answer (not in every Message the events carry). */
export interface MessageTiming {
  latency_ms?: number | null
}

// Generation settings, thoughts and generated titles (CONTRACTS.md "Rendering and settings").
/** Sent to Gemini as `generationConfig`; null or absent: the model's default. */
export interface GenerationSettings {
  temperature?: number | null
  top_p?: number | null
  max_output_tokens?: number | null
  /** 2.5 models only: -1 lets the model decide, 0 turns thinking off where the model allows. */
  thinking_budget?: number | null
  include_thoughts?: boolean | null
  stop_sequences?: string[] | null
}

/** A model's accepted ranges, `[low, high]`, from `GET /api/models`. */
export interface ModelRanges {
  temperature: [number, number]
  top_p: [number, number]
  max_output_tokens: [number, number]
  /** null: the model does not think. */
  thinking_budget: [number, number] | null
  thinking_off: boolean
  max_stop_sequences: number
}

export interface Chat {
  settings?: GenerationSettings
}

export interface ChatChanges {
  settings?: GenerationSettings | null
}

export interface Message {
  /** The model's thought summaries, when the chat's settings ask for them. */
  thoughts?: string | null
}

export interface Models {
  ranges?: Record<string, ModelRanges>
}

export interface ThoughtEvent {
  message_id: string
  seq: number
  text: string
}

export interface ChatTitleEvent {
  chat_id: string
  title: string
}

// Attachments (CONTRACTS.md "Attachments").
export interface Upload {
  id: string
  name: string
  mime_type: string
  size: number
  sha256: string
  width?: number | null
  height?: number | null
  pages?: number | null
}

export interface Attachment {
  id: string
  name: string
  mime_type: string
  size: number
}

// Declared again here (interfaces merge) so the attachment fields stay in this section.
export interface Message {
  /** A user message's files. */
  attachments?: Attachment[]
  /** A reply: older attachments left out of its request (Gemini's request-size limit). */
  attachments_omitted?: number | null
}
