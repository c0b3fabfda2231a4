/**
 * The official Towns SDK as an independent peer for our tests: one long-lived process that reads
 * line-delimited JSON commands on stdin and answers each on stdout, so the SDK's ~7 s import is
 * paid once per test session. Run with `node/node_modules/.bin/tsx tests/peer/peer.mts`.
 *
 * Protocol: the first line out is `{"ready": true, "importMs": n}`. Each request is one line
 * `{"id": <any>, "cmd": "<command>", ...fields}`; each reply is one line `{"id": <same>, "ok":
 * true, "result": {...}}` or `{"id": <same>, "ok": false, "error": {"message", "kind", ...}}`.
 * Commands run concurrently, so replies may come out of order (a `sync` can run while an
 * `rpc` adds events). Anything the SDK prints goes to stderr; stdout carries only replies.
 * Closing stdin, or the `shutdown` command, stops the open clients and ends the process.
 */
import { Console } from 'node:console'
import readline from 'node:readline'

const writeReply = (reply: object): void => {
    const line = JSON.stringify(reply, (_key, value) =>
        typeof value === 'bigint' ? value.toString() : value,
    )
    process.stdout.write(line + '\n')
}

// Route every console method to stderr before the SDK loads: stdout is the reply channel.
const stderrConsole = new Console({ stdout: process.stderr, stderr: process.stderr })
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir'] as const) {
    ;(console as any)[name] = stderrConsole[name].bind(stderrConsole)
}

const started = Date.now()
const loader = await import('./loader.mts')
const envelopes = await import('./envelopes.mts')
const rpc = await import('./rpc.mts')
const client = await import('./client.mts')

type Handler = (request: Record<string, unknown>) => Promise<unknown>

const commands: Record<string, Handler> = {
    ping: async () => ({ pong: true, sdkVersion: '1.0.3' }),
    'verify-envelope': envelopes.verifyEnvelope,
    'verify-miniblock': envelopes.verifyMiniblock,
    'verify-stream': envelopes.verifyStream,
    'make-envelope': envelopes.makeEnvelope,
    'river-hash': envelopes.riverHash,
    'stream-ids': envelopes.streamIds,
    rpc: rpc.rpc,
    sync: rpc.sync,
    'init-user': client.initUser,
    'client-create-space': client.clientCreateSpace,
    'client-create-channel': client.clientCreateChannel,
    'client-join': client.clientJoin,
    'client-send': client.clientSend,
    'client-react': client.clientReact,
    'client-edit': client.clientEdit,
    'client-redact': client.clientRedact,
    'client-messages': client.clientMessages,
    'client-stop': client.clientStop,
}

let shuttingDown = false

async function shutdown(code: number): Promise<never> {
    shuttingDown = true
    await Promise.race([
        client.stopAllClients(),
        new Promise((resolve) => setTimeout(resolve, 3000)),
    ])
    process.exit(code)
}

async function handle(line: string): Promise<void> {
    let request: Record<string, unknown>
    try {
        request = JSON.parse(line)
    } catch (error) {
        writeReply({ id: null, ok: false, error: { message: `not JSON: ${String(error)}` } })
        return
    }
    const id = request.id ?? null
    const name = String(request.cmd ?? '')
    if (name === 'shutdown') {
        writeReply({ id, ok: true, result: { stopping: true } })
        await shutdown(0)
    }
    const command = commands[name]
    if (command === undefined) {
        const known = ['shutdown', ...Object.keys(commands)].join(', ')
        writeReply({
            id,
            ok: false,
            error: { message: `unknown command "${name}"; known: ${known}`, kind: 'peer' },
        })
        return
    }
    try {
        writeReply({ id, ok: true, result: await command(request) })
    } catch (error) {
        writeReply({ id, ok: false, error: loader.describeError(error) })
    }
}

process.on('unhandledRejection', (reason) => {
    console.error('unhandled rejection in the SDK peer:', reason)
})

writeReply({ ready: true, importMs: Date.now() - started })
const input = readline.createInterface({ input: process.stdin, terminal: false })
input.on('line', (line) => {
    if (line.trim().length > 0 && !shuttingDown) {
        void handle(line)
    }
})
input.on('close', () => void shutdown(0))
