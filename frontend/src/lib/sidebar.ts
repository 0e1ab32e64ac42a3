import type { InjectionKey } from 'vue'

/** Lets a page's header open the sidebar drawer on narrow screens. */
export const sidebarKey: InjectionKey<{ open: () => void }> = Symbol('sidebar')
