import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { createAppRouter } from './router'
import { onUnauthorized } from './api'
import { useAuthStore } from './stores/auth'
import { useChatsStore } from './stores/chats'
import { useConversationStore } from './stores/conversation'
import './styles.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
const router = createAppRouter()
app.use(router)

// The session ended (expired, signed out in another tab): back to the sign-in page.
onUnauthorized(() => {
  const auth = useAuthStore()
  if (!auth.signedIn) return
  auth.forget()
  useConversationStore().close()
  useChatsStore().reset()
  void router.push({ name: 'signin', query: { next: router.currentRoute.value.fullPath } })
})

app.mount('#app')
