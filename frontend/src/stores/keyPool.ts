import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, type KeyError, type KeySeries, type PoolKey, type PoolStatus, type SeriesWindow } from '@/api'

/** The admin's view of the key pool, refreshed every few seconds while the page is open. */
export const REFRESH_MS = 3000

export const useKeyPoolStore = defineStore('keyPool', () => {
  const keys = ref<PoolKey[] | null>(null)
  const pool = ref<PoolStatus | null>(null)
  const series = ref<KeySeries | null>(null)
  const seriesWindow = ref<SeriesWindow>('hour')
  /** The key whose errors (and chart) are shown; null: the whole pool's chart. */
  const selected = ref<string | null>(null)
  const errors = ref<KeyError[]>([])
  const loadError = ref<string | null>(null)
  const updatedAt = ref<number | null>(null)
  let timer: ReturnType<typeof setTimeout> | undefined
  let running = false

  async function refresh(): Promise<void> {
    clearTimeout(timer)
    try {
      const [list, status, chart, errs] = await Promise.all([
        api.adminKeys(),
        api.adminPool(),
        api.keySeries(seriesWindow.value, selected.value),
        selected.value ? api.keyErrors(selected.value) : Promise.resolve([] as KeyError[]),
      ])
      keys.value = list
      pool.value = status
      series.value = chart
      errors.value = errs
      updatedAt.value = Date.now()
      loadError.value = null
    } catch (err) {
      loadError.value = (err as Error).message
    }
    if (running) timer = setTimeout(() => void refresh(), REFRESH_MS)
  }

  function start(): void {
    running = true
    void refresh()
  }

  function stop(): void {
    running = false
    clearTimeout(timer)
  }

  async function select(keyId: string | null): Promise<void> {
    selected.value = selected.value === keyId ? null : keyId
    await refresh()
  }

  async function setWindow(window: SeriesWindow): Promise<void> {
    seriesWindow.value = window
    await refresh()
  }

  async function add(key: string, label: string | null): Promise<PoolKey> {
    const added = await api.addKey(key, label)
    await refresh()
    return added
  }

  async function update(keyId: string, changes: { label?: string; disabled?: boolean }): Promise<void> {
    await api.updateKey(keyId, changes)
    await refresh()
  }

  async function remove(keyId: string): Promise<void> {
    await api.removeKey(keyId)
    if (selected.value === keyId) selected.value = null
    await refresh()
  }

  const throttledUntil = computed(() => pool.value?.throttled_until ?? null)

  return {
    keys,
    pool,
    series,
    seriesWindow,
    selected,
    errors,
    loadError,
    updatedAt,
    throttledUntil,
    refresh,
    start,
    stop,
    select,
    setWindow,
    add,
    update,
    remove,
  }
})
