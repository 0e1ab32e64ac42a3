// The end-to-end harness: a whole stack from scripts/stack.py (nginx, backend, worker, the
// offline Gemini stand-in, the built front end, against the machine's PostgreSQL, Redis and
// RabbitMQ) and Debian's Chromium driven by playwright-core. No browser is ever downloaded.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium } from 'playwright-core'

const run = promisify(execFile)
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Starts a stack of its own (database, Redis prefix, queues, ports) and returns its state. */
export async function stackUp(env = {}) {
  const name = `e2e-${randomBytes(4).toString('hex')}`
  try {
    await run('python3', ['scripts/stack.py', 'up', '--name', name, '--frontend', 'built'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    })
  } catch (err) {
    await stackDown(name)
    throw new Error(`stack.py up failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`)
  }
  const state = JSON.parse(await readFile(join(ROOT, '.stack', `${name}.json`), 'utf8'))
  return { name, url: state.url.replace(/\/$/, ''), state }
}

export async function stackDown(name) {
  await run('python3', ['scripts/stack.py', 'down', '--name', name], { cwd: ROOT, timeout: 120_000 }).catch((err) => {
    console.error(`stack.py down --name ${name} failed: ${err.stderr ?? err.message}`)
  })
}

/** Restarts one component of a running stack (scripts/stack.py's Stack.restart). */
export async function restartComponent(stack, component) {
  const code = `import sys; sys.path.insert(0, "scripts"); from stack import Stack; Stack.load(sys.argv[1]).restart(sys.argv[2])`
  await run('python3', ['-c', code, stack.name, component], { cwd: ROOT, timeout: 180_000 })
}

/** Changes the offline Gemini stand-in's dials at run time (gemini-client/standin). */
export async function standinDials(stack, changes) {
  const response = await fetch(`http://127.0.0.1:${stack.state.ports.standin}/_standin/config`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(changes),
  })
  if (!response.ok) throw new Error(`stand-in config ${response.status}: ${await response.text()}`)
}

/** Debian's Chromium; playwright gives it a fresh temporary profile, and each context its own cookies. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
}

/** Polls `probe` until it returns a truthy value, or fails with `what` after `timeoutMs`. */
export async function waitUntil(probe, what, timeoutMs = 20_000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await probe()
      if (last) return last
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export const squash = (text) => text.replace(/\s+/g, ' ').trim()

export const PASSWORD = 'correct horse battery staple'

/** Fills in and submits the sign-up form (an invite's page when `path` says so). */
export async function submitSignUp(page, url, email, path = '/signup') {
  await page.goto(`${url}${path}`)
  await page.fill('input[name=email]', email)
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
}

/** A new account, signed in, on the app's start page. */
export async function signUp(page, url, email) {
  await submitSignUp(page, url, email)
  await page.waitForURL(`${url}/`)
}
