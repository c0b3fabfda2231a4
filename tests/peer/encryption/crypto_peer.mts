/**
 * The official Towns encryption code (@towns-protocol/encryption 0.0.455 over the libolm wasm,
 * @towns-protocol/proto, @bufbuild/protobuf) as an independent peer for our encryption tests.
 *
 * Protocol: each stdin line is one command `{"cmd": "<name>", ...fields}`; each stdout line is
 * its reply, in order: `{"ok": true, "result": {...}}` or `{"ok": false, "error": "<message>"}`.
 * Byte fields travel as hex (keys, ids, hashes) or base64 (ciphertexts, plaintexts, serialized
 * messages). Named SDK crypto backends (`GroupEncryptionCrypto` over an in-memory store, what
 * the SDK client uses) keep their state until stdin closes. Only the encryption packages are
 * imported (well under a second), not the whole SDK.
 *
 * Run: `node/node_modules/.bin/tsx tests/peer/encryption/crypto_peer.mts`.
 */
import { Console } from 'node:console'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

const NODE_MODULES = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    '..',
    'node',
    'node_modules',
)

// stdout carries only the batch result: anything the packages log goes to stderr.
const stderrConsole = new Console({ stdout: process.stderr, stderr: process.stderr })
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ;(console as any)[name] = stderrConsole[name].bind(stderrConsole)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Module = any
type Command = Record<string, Module>

async function load(relativePath: string): Promise<Module> {
    return import(pathToFileURL(path.join(NODE_MODULES, relativePath)).href)
}

const encryption: Module = await load('@towns-protocol/encryption/dist/index.js')
const proto: Module = await load('@towns-protocol/proto/dist/index.js')
const protobuf: Module = await load('@bufbuild/protobuf/dist/esm/index.js')

const HYBRID = encryption.GroupEncryptionAlgorithmId.HybridGroupEncryption

const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'))
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const fromB64 = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'base64'))
const toB64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')

/** What the SDK client provides to a crypto backend; only session creation needs it. */
class MiniblockInfoClient {
    miniblockNum = 0n
    miniblockHash = new Uint8Array(32)
    shared: Module[] = []

    async getMiniblockInfo(): Promise<{ miniblockNum: bigint; miniblockHash: Uint8Array }> {
        return { miniblockNum: this.miniblockNum, miniblockHash: this.miniblockHash }
    }

    async encryptAndShareGroupSessionsToStream(_streamId: string, sessions: Module[]): Promise<void> {
        this.shared.push(...sessions)
    }
}

interface Backend {
    crypto: Module
    client: MiniblockInfoClient
}

const backends = new Map<string, Backend>()

function backend(command: Command): Backend {
    const found = backends.get(command.name)
    if (!found) {
        throw new Error(`no device named ${JSON.stringify(command.name)}: run new-device first`)
    }
    return found
}

/** The SDK's SessionKeys payload text (makeSessionKeys + toJsonString in the SDK client). */
function sessionKeysJson(keys: string[]): string {
    return protobuf.toJsonString(proto.SessionKeysSchema, protobuf.create(proto.SessionKeysSchema, { keys }))
}

const handlers: Record<string, (command: Command) => Promise<unknown>> = {
    'session-hash': async (c) => {
        const hash = await encryption.hybridSessionKeyHash(
            fromHex(c.streamId),
            fromHex(c.key),
            BigInt(c.miniblockNum),
            fromHex(c.miniblockHash),
        )
        return { sessionId: toHex(hash) }
    },
    'aes-encrypt': async (c) => {
        const key = await encryption.importAesGsmKeyBytes(fromHex(c.key))
        const { ciphertext, iv } = await encryption.encryptAesGcm(key, fromB64(c.plaintext))
        return { ciphertext: toB64(ciphertext), iv: toB64(iv) }
    },
    'aes-decrypt': async (c) => {
        const key = await encryption.importAesGsmKeyBytes(fromHex(c.key))
        const plaintext = await encryption.decryptAesGcm(key, fromB64(c.ciphertext), fromB64(c.iv))
        return { plaintext: toB64(plaintext) }
    },
    'session-keys-json': async (c) => ({ json: sessionKeysJson(c.keys) }),
    'parse-session-keys': async (c) => {
        const parsed = protobuf.fromJsonString(proto.SessionKeysSchema, c.json)
        return { keys: parsed.keys, reserialized: sessionKeysJson(parsed.keys) }
    },
    'new-device': async (c) => {
        const client = new MiniblockInfoClient()
        const crypto = new encryption.GroupEncryptionCrypto(client, new encryption.CryptoStoreInMemory(c.name))
        await crypto.init()
        backends.set(c.name, { crypto, client })
        return crypto.getUserDevice()
    },
    'olm-encrypt': async (c) => {
        const { crypto } = backend(c)
        const device = crypto.encryptionDevice
        const message = await device.encryptUsingFallbackKey(c.deviceKey, c.fallbackKey, c.plaintext)
        return { type: message.type, body: message.body }
    },
    'olm-decrypt': async (c) => {
        const { crypto } = backend(c)
        return { plaintext: await crypto.decryptWithDeviceKey(c.body, c.senderKey) }
    },
    // The SDK's ensureOutboundSession: reuse the stream's newest session, or create one at the
    // given miniblock (the stub client records the share instead of sending it).
    'ensure-session': async (c) => {
        const { crypto, client } = backend(c)
        client.miniblockNum = BigInt(c.miniblockNum ?? 0)
        client.miniblockHash = fromHex(c.miniblockHash ?? '00'.repeat(32))
        const sessionId = await crypto.ensureOutboundSession(c.streamId, HYBRID, {
            shareShareSessionTimeoutMs: 0,
        })
        const session = await crypto.exportGroupSession(c.streamId, sessionId)
        return { sessionId, sessionKey: session.sessionKey }
    },
    // The inbox payload the SDK client writes for recipient devices (own device skipped).
    'share-sessions': async (c) => {
        const { crypto } = backend(c)
        const sessions = []
        for (const sessionId of c.sessionIds) {
            sessions.push(await crypto.exportGroupSession(c.streamId, sessionId))
        }
        const cleartext = sessionKeysJson(sessions.map((s: Module) => s.sessionKey))
        const own = crypto.getUserDevice().deviceKey
        const recipients = c.recipients.filter((d: Module) => d.deviceKey !== own)
        const ciphertexts = await crypto.encryptWithDeviceKeys(cleartext, recipients)
        return {
            streamId: c.streamId,
            senderKey: own,
            sessionIds: sessions.map((s: Module) => s.sessionId),
            ciphertexts,
            algorithm: HYBRID,
            cleartext,
        }
    },
    // processNewGroupSession of the SDK's decryption extensions, for one inbox payload.
    'import-sessions': async (c) => {
        const { crypto } = backend(c)
        const own = crypto.getUserDevice().deviceKey
        const ciphertext = c.payload.ciphertexts[own]
        if (!ciphertext) {
            return { imported: [], reason: 'no ciphertext for this device' }
        }
        const algorithm = c.payload.algorithm || encryption.GroupEncryptionAlgorithmId.GroupEncryption
        const cleartext = await crypto.decryptWithDeviceKey(ciphertext, c.payload.senderKey)
        const sessionKeys = protobuf.fromJsonString(proto.SessionKeysSchema, cleartext)
        if (sessionKeys.keys.length !== c.payload.sessionIds.length) {
            throw new Error('bad sessionKeys')
        }
        const imported = []
        for (let i = 0; i < c.payload.sessionIds.length; i++) {
            const sessionId = c.payload.sessionIds[i]
            // importSessionKeys swallows per-key errors; call the importer to see them.
            await crypto.groupDecryption[algorithm].importStreamKey(c.payload.streamId, {
                streamId: c.payload.streamId,
                sessionId,
                sessionKey: sessionKeys.keys[i],
                algorithm,
            })
            imported.push(sessionId)
        }
        return { imported, cleartext }
    },
    'session-ids': async (c) => {
        const { crypto } = backend(c)
        return { sessionIds: await crypto.getGroupSessionIds(c.streamId) }
    },
    'hybrid-encrypt': async (c) => {
        const { crypto } = backend(c)
        const data = c.text
            ? await crypto.encryptGroupEvent_deprecated_v0(c.streamId, c.text, HYBRID)
            : await crypto.encryptGroupEvent(c.streamId, fromB64(c.plaintext), HYBRID)
        if (c.refEventId) {
            data.refEventId = c.refEventId
        }
        return { encryptedData: toB64(protobuf.toBinary(proto.EncryptedDataSchema, data)) }
    },
    'hybrid-decrypt': async (c) => {
        const { crypto } = backend(c)
        const data = protobuf.fromBinary(proto.EncryptedDataSchema, fromB64(c.encryptedData))
        const result = await crypto.decryptGroupEvent(c.streamId, data)
        return typeof result === 'string' ? { text: result } : { plaintext: toB64(result) }
    },
    'parse-channel-message': async (c) => {
        const message = protobuf.fromBinary(proto.ChannelMessageSchema, fromB64(c.plaintext))
        return { json: protobuf.toJson(proto.ChannelMessageSchema, message) }
    },
    'export-device': async (c) => {
        const { crypto } = backend(c)
        const exported = await crypto.exportDevice()
        return {
            pickleKey: exported.pickleKey,
            pickledAccount: exported.pickledAccount,
            exportedDevice: toB64(protobuf.toBinary(proto.ExportedDeviceSchema, exported)),
        }
    },
}

const replacer = (_key: string, value: unknown): unknown =>
    typeof value === 'bigint' ? value.toString() : value

// One command per stdin line, one reply per stdout line, in order; state lives until EOF.
for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) {
        continue
    }
    let reply: unknown
    try {
        const command = JSON.parse(line) as Command
        const handler = handlers[command.cmd]
        if (!handler) {
            throw new Error(`unknown command ${JSON.stringify(command.cmd)}`)
        }
        reply = { ok: true, result: await handler(command) }
    } catch (error) {
        reply = { ok: false, error: String((error as Error)?.message ?? error) }
    }
    process.stdout.write(JSON.stringify(reply, replacer) + '\n')
}
