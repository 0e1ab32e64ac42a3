import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api, type Models, type PublicConfig } from '@/api'

/** What the backend says about itself: sign-up open or not, the message limit, the models. */
export const useSettingsStore = defineStore('settings', () => {
  const config = ref<PublicConfig>({ allow_registration: true, max_message_chars: 16000 })
  const configLoaded = ref(false)
  const models = ref<Models | null>(null)

  async function loadConfig(): Promise<void> {
    config.value = await api.config()
    configLoaded.value = true
  }

  async function loadModels(): Promise<Models> {
    if (!models.value) models.value = await api.models()
    return models.value
  }

  return { config, configLoaded, models, loadConfig, loadModels }
})
