/**
 * Peer commands that call a River node with the SDK's own RPC client (`makeStreamRpcClient`:
 * Connect, binary protobuf, HTTP/2 even for http:// URLs): any unary StreamService method, and
 * a SyncStreams reader that returns the first messages of a sync session.
 *
 * Requests and responses travel as protobuf JSON (bytes base64, int64 decimal strings).
 * Connect and River errors come back with the Connect code and the `x-river-error` name.
 * Calls are made once (no SDK retries) unless `retries` is given, so a test sees the node's
 * first answer. Protocol facts: research/river-protocol.md §1, §5, §6 and §11.
 */
import {
    PeerError,
    type Request,
    messageToJson,
    optionalString,
    proto,
    protobuf,
    requireString,
    sdk,
    toBase64,
    toHex,
} from './loader.mts'
import { describeStream } from './envelopes.mts'

const clients = new Map<string, any>()

/**
 * The SDK's client for `url`; with `json` it is made the way the SDK does under
 * RIVER_DEBUG_TRANSPORT=true: Connect JSON (proto field names, implicit fields emitted).
 */
function rpcClient(url: string, attempts: number, timeoutMs: number, json = false): any {
    const key = `${url} ${attempts} ${timeoutMs} ${json}`
    let client = clients.get(key)
    if (client === undefined) {
        const previous = process.env.RIVER_DEBUG_TRANSPORT
        process.env.RIVER_DEBUG_TRANSPORT = json ? 'true' : 'false'
        try {
            client = sdk.makeStreamRpcClient(url, undefined, {
                retryParams: {
                    maxAttempts: attempts,
                    initialRetryDelay: 100,
                    maxRetryDelay: 1000,
                    defaultTimeoutMs: timeoutMs,
                },
            })
        } finally {
            if (previous === undefined) {
                delete process.env.RIVER_DEBUG_TRANSPORT
            } else {
                process.env.RIVER_DEBUG_TRANSPORT = previous
            }
        }
        clients.set(key, client)
    }
    return client
}

function method(name: string): any {
    const descriptor = proto.StreamService.method[name]
    if (descriptor === undefined) {
        const known = Object.keys(proto.StreamService.method).join(', ')
        throw new PeerError(`unknown StreamService method "${name}"; known: ${known}`)
    }
    return descriptor
}

function numberField(request: Request, name: string, fallback: number): number {
    const value = request[name]
    if (value === undefined || value === null) {
        return fallback
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new PeerError(`field "${name}" must be a non-negative number, got ${JSON.stringify(value)}`)
    }
    return value
}

/**
 * `{url, method, request?, unpack?, retries?, timeoutMs?, codec?}` → `{response, responseBytes,
 * stream?}`; `codec` "json" speaks Connect JSON instead of binary protobuf. `method` is the client's camelCase name (info, getStream, createStream, addEvent,
 * getLastMiniblockHash, ...); with `unpack` the returned StreamAndCookie goes through the SDK's
 * `unpackStream` (hashes and signatures of miniblocks, snapshot and minipool).
 */
export async function rpc(request: Request): Promise<unknown> {
    const url = requireString(request, 'url')
    const name = requireString(request, 'method')
    const descriptor = method(name)
    if (descriptor.methodKind !== 'unary') {
        throw new PeerError(`method "${name}" is ${descriptor.methodKind}; use the "sync" command`)
    }

    let message: unknown
    try {
        message = protobuf.fromJson(descriptor.input, request.request ?? {})
    } catch (error) {
        throw new PeerError(`field "request" is not a ${descriptor.input.typeName}: ${String(error)}`)
    }
    const attempts = 1 + numberField(request, 'retries', 0)
    const json = request.codec === 'json'
    if (request.codec !== undefined && request.codec !== 'json' && request.codec !== 'binary') {
        throw new PeerError(`field "codec" must be "binary" or "json", got ${JSON.stringify(request.codec)}`)
    }
    const client = rpcClient(url, attempts, numberField(request, 'timeoutMs', 30_000), json)
    const response = await client[name](message)

    const result: Record<string, unknown> = {
        response: messageToJson(descriptor.output, response),
        responseBytes: toBase64(protobuf.toBinary(descriptor.output, response)),
    }
    if (request.unpack === true && response.stream !== undefined) {
        try {
            result.stream = describeStream(await sdk.unpackStream(response.stream, undefined))
        } catch (error) {
            const reason = error instanceof Error ? error.message : String(error)
            throw new PeerError(`the SDK rejects the returned stream: ${reason}`, {
                stage: 'unpack',
                code: (error as { code?: number }).code,
                response: result.response,
            })
        }
    }
    return result
}

/**
 * `{url, syncPos?: [SyncCookie JSON], messages?: n, untilEventId?: hex, timeoutMs?}` → the
 * SyncStreamsResponse messages (JSON) of a SyncStreams call, up to the first `messages` of them
 * or up to the one whose stream carries the event `untilEventId`; then the call is cancelled.
 * Ends early, with what arrived, when the timeout passes or the server ends the stream.
 */
export async function sync(request: Request): Promise<unknown> {
    const url = requireString(request, 'url')
    const wanted = numberField(request, 'messages', 1)
    const untilEventId = optionalString(request, 'untilEventId')
    const timeoutMs = numberField(request, 'timeoutMs', 10_000)
    const message = protobuf.fromJson(proto.SyncStreamsRequestSchema, {
        syncPos: request.syncPos ?? [],
    })
    const client = rpcClient(url, 1, 30_000)
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), timeoutMs)
    const isLast = (item: { stream?: { events: { hash: Uint8Array }[] } }, count: number) =>
        untilEventId === undefined
            ? count >= wanted
            : (item.stream?.events ?? []).some((event) => toHex(event.hash) === untilEventId)

    const received: unknown[] = []
    let ended = 'server'
    try {
        for await (const item of client.syncStreams(message, { signal: abort.signal })) {
            received.push(messageToJson(proto.SyncStreamsResponseSchema, item))
            if (isLast(item, received.length)) {
                ended = 'complete'
                break
            }
        }
    } catch (error) {
        if (!abort.signal.aborted) {
            throw new PeerError(`SyncStreams failed: ${String(error)}`, { received })
        }
        ended = 'timeout'
    } finally {
        clearTimeout(timer)
        abort.abort()
    }
    return { messages: received, ended, syncId: firstSyncId(received) ?? null }
}

function firstSyncId(messages: unknown[]): string | undefined {
    for (const item of messages) {
        const id = (item as { syncId?: string }).syncId
        if (id) {
            return id
        }
    }
    return undefined
}
