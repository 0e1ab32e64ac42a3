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

export interface PoolKey {
  id: string
  label: string
  state: KeyState
  used_last_minute: number
  cooldown_until: string | number | null
  failures: number
  requests_total: number
  last_error: string | null
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
  error: string | { code?: string; message?: string } | null
}

export interface CompletedEvent {
  message: Message
}

export interface ResetEvent {
  message_id: string
}
