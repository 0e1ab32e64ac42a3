// Attachments in the browser (issue 15): a real PNG and a real PDF picked with the paperclip
// reach "Gemini" byte for byte (the stand-in answers with the SHA-256 of the inline data it
// received), later turns send them again, an image pasted and a file dropped on the chat join
// the composer, the message shows a thumbnail that enlarges and a file chip that downloads, and
// too large, wrong type and quota full read as such. Screenshots of the composer with files and
// of a message with files. Run: node --test e2e/attach.test.mjs
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ROOT, launchBrowser, signUp, squash, stackDown, stackUp, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')
const FIXTURES = resolve(ROOT, 'frontend/e2e/fixtures')
const PNG_PATH = resolve(FIXTURES, 'chart.png')
const PDF_PATH = resolve(FIXTURES, 'report.pdf')
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

let stack
let browser
let context
let page
let url
let chatPath
let png
let pdf
const problems = []

const chips = (p = page) => p.locator('[data-test=attachment-chip]')
const composer = (p = page) => p.locator('[data-test=composer]')
const questions = (p = page) => p.locator('[data-test=message-user]')
const replies = (p = page) => p.locator('[data-test=message-assistant]')

/** Picks files with the paperclip's input and waits until `ready` chips are ready. */
async function pick(paths, ready, p = page) {
  await p.locator('[data-test=attach-input]').setInputFiles(paths)
  await waitUntil(
    async () => (await p.locator('[data-test=attachment-chip][data-state=ready]').count()) === ready,
    `${ready} uploaded file(s) in the composer`,
  )
}

/** Sends what the composer holds; the reply's completed text. */
async function sendAndRead(text) {
  const count = await replies().count()
  await composer().fill(text)
  await composer().press('Enter')
  await waitUntil(async () => (await replies().count()) > count, `the reply to "${text}"`)
  const reply = replies().last()
  await waitUntil(async () => (await reply.getAttribute('data-status')) === 'completed', 'the reply to complete', 30_000)
  return squash(await reply.locator('[data-test=message-text]').innerText())
}

/** Hands the page a file as a paste into the composer or a drop onto the chat would. */
async function dispatchFile(kind, name, type, base64) {
  return page.evaluate(
    async ({ kind, name, type, base64 }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
      const transfer = new DataTransfer()
      transfer.items.add(new File([bytes], name, { type }))
      if (kind === 'paste') {
        const box = document.querySelector('[data-test=composer]')
        box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }))
        return null
      }
      // A drag over the chat outlines it until the drop.
      const chat = document.querySelector('.conversation')
      const drag = (name) => chat.dispatchEvent(new DragEvent(name, { dataTransfer: transfer, bubbles: true, cancelable: true }))
      const painted = () => new Promise((done) => requestAnimationFrame(() => done()))
      drag('dragenter')
      drag('dragover')
      await painted()
      const outlined = chat.classList.contains('dropping')
      drag('drop')
      await painted()
      return { outlined, afterDrop: chat.classList.contains('dropping') }
    },
    { kind, name, type, base64 },
  )
}

before(async () => {
  // Small limits, so that "too large" and "quota full" can be reached with small files.
  stack = await stackUp({ MAX_UPLOAD_MB: '1', USER_UPLOAD_QUOTA_MB: '2' })
  url = stack.url
  png = await readFile(PNG_PATH)
  pdf = await readFile(PDF_PATH)
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: DESKTOP })
  page = await context.newPage()
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('attachments', () => {
  test('a PNG and a PDF reach Gemini byte for byte', async () => {
    await signUp(page, url, 'files@example.com')

    await pick([PNG_PATH, PDF_PATH], 2)
    const names = (await chips().allInnerTexts()).map(squash)
    assert.match(names[0], /chart\.png.*2\.2 KB/)
    assert.match(names[1], /report\.pdf.*551 B/)
    // The image shows its thumbnail before it is sent.
    assert.equal(await chips().first().locator('img.chip-thumb').count(), 1)

    const answer = await sendAndRead('What is in these files?')
    chatPath = new URL(page.url()).pathname
    assert.ok(answer.includes(`file image/png ${png.length} bytes sha256:${sha256(png)}`), answer)
    assert.ok(answer.includes(`file application/pdf ${pdf.length} bytes sha256:${sha256(pdf)}`), answer)
    assert.equal(await chips().count(), 0, 'the composer is empty again')
  })

  test('the message shows a thumbnail that enlarges and a file that downloads', async () => {
    const question = questions().first()
    await question.locator('[data-test=attachment-thumb]').click()
    const lightbox = page.locator('[data-test=lightbox]')
    await lightbox.waitFor()
    const width = await waitUntil(
      () => lightbox.locator('img').evaluate((img) => img.complete && img.naturalWidth),
      'the enlarged image to load',
    )
    assert.equal(width, 480, 'the enlarged image is the original')
    await page.keyboard.press('Escape') // the opened image has the focus
    await lightbox.waitFor({ state: 'detached' })

    const file = question.locator('[data-test=attachment-file]')
    assert.match(squash(await file.innerText()), /report\.pdf/)
    const [download] = await Promise.all([page.waitForEvent('download'), file.click()])
    assert.equal(download.suggestedFilename(), 'report.pdf')
    assert.equal(sha256(await readFile(await download.path())), sha256(pdf))
  })

  test('a later turn sends the files again', async () => {
    const answer = await sendAndRead('And the totals?')
    assert.match(answer, /\(inline files in the request: 2\)/)
    await page.reload()
    await questions().first().locator('[data-test=attachment-thumb]').waitFor()
  })

  test('an image pasted and a file dropped join the composer', async () => {
    await dispatchFile('paste', 'screenshot.png', 'image/png', png.toString('base64'))
    const notes = Buffer.from('# Notes\n\nhello\n')
    const outline = await dispatchFile('drop', 'notes.md', 'text/markdown', notes.toString('base64'))
    assert.deepEqual(outline, { outlined: true, afterDrop: false }, 'the chat is outlined while files are dragged over it')
    await waitUntil(
      async () => (await page.locator('[data-test=attachment-chip][data-state=ready]').count()) === 2,
      'the pasted and the dropped file to upload',
    )
    const answer = await sendAndRead('Pasted and dropped')
    assert.ok(answer.includes(`file image/png ${png.length} bytes sha256:${sha256(png)}`), answer)
    assert.ok(answer.includes(`bytes sha256:${sha256(notes)}`), answer)
  })

  test('too large, wrong type and quota full are explained', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    await page.locator('[data-test=attach-input]').setInputFiles([
      { name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(1_100_000, 'a') },
      { name: 'logo.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) },
    ])
    const errors = page.locator('[data-test=attachment-error]')
    await waitUntil(async () => (await errors.count()) === 2, 'both uploads to be refused')
    const texts = (await errors.allInnerTexts()).map(squash)
    assert.match(texts[0], /^Too large: the file is larger than the 1 MB limit/)
    assert.match(texts[1], /^Wrong type: only images, PDFs and UTF-8 text files/)
    // The refused ones go with their remove buttons.
    for (let i = 0; i < 2; i++) await chips().first().locator('[data-test=attachment-remove]').click()
    assert.equal(await chips().count(), 0)

    // Two files of 0.9 MB fill most of the 2 MB quota; the third does not fit.
    const big = (name) => ({ name, mimeType: 'text/plain', buffer: Buffer.alloc(900_000, 'b') })
    await pick([big('one.txt'), big('two.txt')], 2)
    await page.locator('[data-test=attach-input]').setInputFiles([big('three.txt')])
    await waitUntil(async () => (await errors.count()) === 1, 'the upload past the quota to be refused')
    assert.match(squash(await errors.first().innerText()), /^Storage full: your storage quota is full/)
    for (;;) {
      const remove = chips().first().locator('[data-test=attachment-remove]')
      if (!(await remove.count())) break
      await remove.click()
    }
    assert.deepEqual(problems, [])
  })

  test('screenshots: the composer with files, and a message with files', async () => {
    const storageState = await context.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = await shotContext.newPage()
        await p.goto(`${url}${chatPath}`)
        await questions(p).first().locator('[data-test=attachment-thumb] img').waitFor()
        await waitUntil(
          () => questions(p).first().locator('[data-test=attachment-thumb] img').evaluate((img) => img.complete && img.naturalWidth > 0),
          'the thumbnail to load',
        )
        await questions(p).first().scrollIntoViewIfNeeded()
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-attachments-message.png` })
        await pick([PNG_PATH, PDF_PATH], 2, p)
        await composer(p).fill('Compare the chart with the report')
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-attachments-composer.png` })
        await shotContext.close()
      }
    }
  })
})
