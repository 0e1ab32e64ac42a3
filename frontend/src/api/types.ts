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
