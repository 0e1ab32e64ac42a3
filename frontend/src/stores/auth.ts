import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, ApiError, teamsApi, type User } from '@/api'

export const useAuthStore = defineStore('auth', () => {
  const user = ref<User | null>(null)
  /** True once the start-up session check has answered. */
  const checked = ref(false)

  const signedIn = computed(() => user.value !== null)
  const isAdmin = computed(() => user.value?.is_admin === true)

  /** Restores the session from the cookie; a 401 simply means nobody is signed in. */
  async function restore(): Promise<void> {
    try {
      user.value = await api.me()
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) throw err
      user.value = null
    } finally {
      checked.value = true
    }
  }

  async function signIn(email: string, password: string): Promise<void> {
    const answer = await api.login(email, password)
    user.value = answer.user
  }

  async function signUp(email: string, password: string, invite: string | null = null): Promise<void> {
    if (invite) await teamsApi.registerWithInvite(email, password, invite)
    else await api.register(email, password)
    await signIn(email, password)
  }

  async function signOut(): Promise<void> {
    try {
      await api.logout()
    } finally {
      user.value = null
    }
  }

  /** Ends every session of this user, on every device, this one included. */
  async function signOutEverywhere(): Promise<void> {
    await api.logoutAll()
    user.value = null
  }

  /** The other sessions end on the server; this one stays signed in. */
  async function changePassword(currentPassword: string, newPassword: string): Promise<void> {
    await api.changePassword(currentPassword, newPassword)
  }

  /** The session ended on the server (401 from any call). */
  function forget(): void {
    user.value = null
  }

  return {
    user,
    checked,
    signedIn,
    isAdmin,
    restore,
    signIn,
    signUp,
    signOut,
    signOutEverywhere,
    changePassword,
    forget,
  }
})
