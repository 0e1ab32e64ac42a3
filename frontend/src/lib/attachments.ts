// The files waiting in the composer: uploaded as soon as they are picked, dropped or pasted,
// sent with the next message by id. One tray for the composer, shared by the components that
// add to it (paperclip, drop on the chat, paste) and the one that sends.
import { computed, reactive } from 'vue'
import { ApiError, NetworkError, deleteUpload, describeDetail, uploadFile, type Upload } from '@/api'

export interface PendingFile {
  key: number
  name: string
  size: number
  /** 0..1 while uploading. */
  progress: number
  state: 'uploading' | 'ready' | 'failed'
  error: string | null
  upload: Upload | null
  /** An object URL of the picked image, shown before sending. */
  preview: string | null
  abort: () => void
}

const items = reactive<PendingFile[]>([])
let nextKey = 0

export function describeUploadError(err: unknown): string {
  if (err instanceof ApiError) {
    const detail = describeDetail(err.detail)
    if (err.status === 413) return detail.startsWith('your storage quota') ? `Storage full: ${detail}` : `Too large: ${detail}`
    if (err.status === 415) return 'Wrong type: only images, PDFs and UTF-8 text files can be attached'
    if (err.status === 422) return `Cannot use this file: ${detail}`
    return detail || `Upload failed (HTTP ${err.status})`
  }
  if (err instanceof NetworkError) return 'Upload failed: cannot reach the server'
  return (err as Error).message || 'Upload failed'
}

function add(files: Iterable<File>): void {
  for (const file of files) {
    const entry = reactive<PendingFile>({
      key: nextKey++,
      name: file.name || 'pasted image',
      size: file.size,
      progress: 0,
      state: 'uploading',
      error: null,
      upload: null,
      preview: file.type.startsWith('image/') ? URL.createObjectURL(file) : null,
      abort: () => undefined,
    })
    items.push(entry)
    const { done, abort } = uploadFile(file, (fraction) => {
      entry.progress = fraction
    })
    entry.abort = abort
    done.then(
      (upload) => {
        entry.upload = upload
        entry.state = 'ready'
        entry.progress = 1
      },
      (err: unknown) => {
        if (err instanceof DOMException && err.name === 'AbortError') return
        entry.state = 'failed'
        entry.error = describeUploadError(err)
      },
    )
  }
}

function forget(entry: PendingFile): void {
  if (entry.preview) URL.revokeObjectURL(entry.preview)
  const at = items.indexOf(entry)
  if (at >= 0) items.splice(at, 1)
}

/** The remove button: stops an upload in progress, or deletes the uploaded file so that it
 * stops counting against the quota (should that fail, the server removes it after a day). */
function remove(key: number): void {
  const entry = items.find((e) => e.key === key)
  if (!entry) return
  if (entry.state === 'uploading') entry.abort()
  if (entry.state === 'ready' && entry.upload) void deleteUpload(entry.upload.id).catch(() => undefined)
  forget(entry)
}

/** After a send: the tray starts empty again. */
function clear(): void {
  for (const entry of [...items]) forget(entry)
}

const readyIds = computed(() => items.filter((e) => e.state === 'ready').map((e) => e.upload!.id))
const busy = computed(() => items.some((e) => e.state === 'uploading'))

export function useAttachments() {
  return { items, readyIds, busy, add, remove, clear }
}

export function pastedFiles(list: DataTransferItemList | null | undefined): File[] {
  return Array.from(list ?? [])
    .filter((item) => item.kind === 'file')
    .map((item) => item.getAsFile())
    .filter((file): file is File => file !== null)
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}
