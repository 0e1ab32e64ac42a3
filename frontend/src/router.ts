import { createRouter, createWebHistory, type Router } from 'vue-router'
import { useAuthStore } from './stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    admin?: boolean
    title?: string
  }
}

export function createAppRouter(): Router {
  const router = createRouter({
    history: createWebHistory(),
    routes: [
      { path: '/signin', name: 'signin', component: () => import('./views/AuthView.vue'), props: { mode: 'signin' }, meta: { public: true, title: 'Sign in' } },
      { path: '/signup', name: 'signup', component: () => import('./views/AuthView.vue'), props: { mode: 'signup' }, meta: { public: true, title: 'Sign up' } },
      { path: '/reset', name: 'reset', component: () => import('./views/ResetPasswordView.vue'), meta: { public: true, title: 'New password' } },
      {
        path: '/',
        component: () => import('./views/ChatLayout.vue'),
        children: [
          { path: '', name: 'new', component: () => import('./views/ConversationView.vue') },
          { path: 'c/:chatId', name: 'chat', component: () => import('./views/ConversationView.vue'), props: true },
          { path: 'account', name: 'account', component: () => import('./views/AccountView.vue'), meta: { title: 'Account' } },
          { path: 'admin/users', name: 'admin-users', component: () => import('./views/AdminUsersView.vue'), meta: { admin: true, title: 'Users' } },
          { path: 'admin', name: 'admin', component: () => import('./views/AdminView.vue'), meta: { admin: true, title: 'Key pool' } },
          { path: 'usage', name: 'usage', component: () => import('./views/UsageView.vue'), meta: { title: 'Usage' } },
          { path: 'admin/usage', name: 'admin-usage', component: () => import('./views/AdminUsageView.vue'), meta: { admin: true, title: 'Usage dashboard' } },
        ],
      },
      { path: '/s/:token', name: 'shared', component: () => import('./views/SharedView.vue'), props: true, meta: { public: true, title: 'Shared chat' } },
      { path: '/:rest(.*)*', name: 'notfound', component: () => import('./views/NotFoundView.vue'), meta: { public: true, title: 'Not found' } },
    ],
  })

  router.beforeEach(async (to) => {
    const auth = useAuthStore()
    if (!auth.checked) {
      try {
        await auth.restore()
      } catch {
        // Backend unreachable: treat as signed out; the sign-in page says what went wrong.
      }
    }
    if (to.meta.public) {
      if (auth.signedIn && (to.name === 'signin' || to.name === 'signup')) return { name: 'new' }
      return true
    }
    if (!auth.signedIn) return { name: 'signin', query: to.fullPath === '/' ? {} : { next: to.fullPath } }
    if (to.meta.admin && !auth.isAdmin) return { name: 'new' }
    return true
  })

  // Chat pages name themselves after the chat (ConversationView).
  router.afterEach((to) => {
    if (to.meta.title) document.title = `${to.meta.title} · Gemini Chat`
  })

  return router
}
