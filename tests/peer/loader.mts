/**
 * Loads the official Towns packages (@towns-protocol/sdk, proto, encryption) from the
 * project's node/node_modules, plus the byte and error helpers every peer command shares.
 *
 * The packages are imported by absolute path because this script lives outside node/: bare
 * specifiers would be resolved from tests/peer and not found. Their own imports then resolve
 * inside node/node_modules as usual, so each package is loaded once. The SDK's published
 * `dist` needs a TypeScript-aware loader (tsx); see research/river-protocol.md §10.
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const NODE_MODULES = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    'node',
    'node_modules',
)

type Module = any

async function load(relativePath: string): Promise<Module> {
    return import(pathToFileURL(path.join(NODE_MODULES, relativePath)).href)
}

export const sdk: Module = await load('@towns-protocol/sdk/dist/index.js')
export const proto: Module = await load('@towns-protocol/proto/dist/index.js')
export const encryption: Module = await load('@towns-protocol/encryption/dist/index.js')
export const protobuf: Module = await load('@bufbuild/protobuf/dist/esm/index.js')
export const ethers: Module = (await load('ethers/lib/index.js')).ethers

/** A command's request: the JSON object read from one stdin line. */
export type Request = Record<string, unknown>

/** An error that the peer reports back as `{ok: false, error: {...}}` with these fields. */
export class PeerError extends Error {
    constructor(
        message: string,
        readonly fields: Record<string, unknown> = {},
    ) {
        super(message)
    }
}

export function requireString(request: Request, name: string): string {
    const value = request[name]
    if (typeof value !== 'string' || value.length === 0) {
        throw new PeerError(`field "${name}" must be a non-empty string, got ${JSON.stringify(value)}`)
    }
    return value
}

export function optionalString(request: Request, name: string): string | undefined {
    const value = request[name]
    if (value === undefined || value === null) {
        return undefined
    }
    return requireString(request, name)
}

export function optionalBigInt(request: Request, name: string): bigint | undefined {
    const value = request[name]
    if (value === undefined || value === null) {
        return undefined
    }
    if (typeof value === 'number' || (typeof value === 'string' && /^-?\d+$/.test(value))) {
        return BigInt(value)
    }
    throw new PeerError(`field "${name}" must be an integer or a decimal string, got ${JSON.stringify(value)}`)
}

export function fromHex(text: string): Uint8Array {
    const clean = text.startsWith('0x') ? text.slice(2) : text
    if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
        throw new PeerError(`not a hex string: ${JSON.stringify(text)}`)
    }
    return Uint8Array.from(Buffer.from(clean, 'hex'))
}

export function toHex(bytes: Uint8Array): string {
    return Buffer.from(bytes).toString('hex')
}

export function fromBase64(text: string): Uint8Array {
    return Uint8Array.from(Buffer.from(text, 'base64'))
}

export function toBase64(bytes: Uint8Array): string {
    return Buffer.from(bytes).toString('base64')
}

/** Protobuf JSON of a message, with bigint-safe output (int64 as decimal strings). */
export function messageToJson(schema: Module, message: Module): unknown {
    return protobuf.toJson(schema, message, { alwaysEmitImplicit: false })
}

const CONNECT_CODES: Record<number, string> = {
    1: 'canceled',
    2: 'unknown',
    3: 'invalid_argument',
    4: 'deadline_exceeded',
    5: 'not_found',
    6: 'already_exists',
    7: 'permission_denied',
    8: 'resource_exhausted',
    9: 'failed_precondition',
    10: 'aborted',
    11: 'out_of_range',
    12: 'unimplemented',
    13: 'internal',
    14: 'unavailable',
    15: 'data_loss',
    16: 'unauthenticated',
}

/**
 * How the SDK itself reads a node's error: `errorContains` (the `<num>:<NAME>` text) for every
 * River code, and `getRpcErrorProperty` for the tags its retry logic uses.
 */
function sdkErrorView(error: unknown): Record<string, unknown> {
    const codes = Object.values(proto.Err).filter(
        (code) => typeof code === 'number' && code !== 0 && sdk.errorContains(error, code),
    )
    const properties: Record<string, string> = {}
    for (const name of ['expected', 'expNum', 'reason']) {
        const value = sdk.getRpcErrorProperty(error, name)
        if (value !== undefined) {
            properties[name] = value
        }
    }
    return { sdkErrCodes: codes, sdkProperties: properties }
}

/**
 * Describe any thrown value for the wire: SDK `CodeException`s carry the River `Err` code,
 * Connect errors the Connect code, the raw message and the `x-river-error` metadata.
 */
export function describeError(error: unknown): Record<string, unknown> {
    if (error instanceof PeerError) {
        return { message: error.message, kind: 'peer', ...error.fields }
    }
    const err = error as Record<string, unknown> & { message?: string; name?: string }
    const described: Record<string, unknown> = {
        message: String(err?.message ?? error),
        kind: String(err?.name ?? typeof error),
    }
    if (err && typeof err.rawMessage === 'string' && err.metadata instanceof Headers) {
        const code = Number(err.code)
        described.kind = 'connect'
        described.connectCode = CONNECT_CODES[code] ?? String(code)
        described.rawMessage = err.rawMessage
        described.riverError = err.metadata.get('x-river-error')
        Object.assign(described, sdkErrorView(error))
    } else if (err && typeof err.code === 'number') {
        described.code = err.code
        described.codeName = proto.Err[err.code as number]
    }
    return described
}
