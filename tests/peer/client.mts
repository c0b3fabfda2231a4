/**
 * Peer commands driving a full SDK `Client` against a River node with no chain configuration:
 * the signer context comes from `makeSignerContext`, crypto lives in `CryptoStoreInMemory`, and
 * an entitlement stub allows everything (the node does the real membership checks).
 *
 * A client is kept under a handle between commands so a test can initialize a user, join a
 * channel, send messages and read what the SDK decrypted (channel messages are encrypted and
 * keys shared by the SDK's own hybrid group sessions; research/river-protocol.md §4 and §7).
 */
import { signerContext } from './envelopes.mts'
import {
    PeerError,
    type Request,
    encryption,
    ethers,
    optionalString,
    requireString,
    sdk,
} from './loader.mts'

interface DecryptedMessage {
    streamId: string
    eventId: string
    senderId: string
    kind: string
    body: string | null
    threadId: string | null
    reaction: string | null
    refEventId: string | null
}

interface PeerClient {
    client: any
    messages: DecryptedMessage[]
}

const clients = new Map<string, PeerClient>()
let nextHandle = 1

function peerClient(request: Request): PeerClient {
    const handle = requireString(request, 'handle')
    const found = clients.get(handle)
    if (found === undefined) {
        const known = [...clients.keys()].join(', ') || 'none'
        throw new PeerError(`no client with handle "${handle}"; open handles: ${known}`)
    }
    return found
}

function recordDecrypted(messages: DecryptedMessage[], streamId: string, event: any): void {
    const content = event?.content ?? {}
    messages.push({
        streamId,
        eventId: String(event?.eventId ?? ''),
        senderId: String(event?.sender?.id ?? ''),
        kind: String(content.kind ?? 'unknown'),
        body: typeof content.body === 'string' ? content.body : null,
        threadId: typeof content.threadId === 'string' ? content.threadId : null,
        reaction: typeof content.reaction === 'string' ? content.reaction : null,
        refEventId: String(content.targetEventId ?? content.editsEventId ?? '') || null,
    })
}

/**
 * `{url, privateKey, delegatePrivateKey?, expiryEpochMs?, spaceId?, skipSync?}` → a new client
 * whose `initializeUser({spaceId})` ran against `url` (GetStream, then CreateStream of the four
 * user streams with the spaceId metadata, then the device keys in the metadata stream).
 */
export async function initUser(request: Request): Promise<unknown> {
    const url = requireString(request, 'url')
    const withDelegate = {
        ...request,
        delegatePrivateKey:
            optionalString(request, 'delegatePrivateKey') ?? ethers.Wallet.createRandom().privateKey,
    }
    const context = await signerContext(withDelegate)
    const userId = sdk.userIdFromAddress(context.creatorAddress)
    const rpcClient = sdk.makeStreamRpcClient(url)
    const entitlements = { isEntitled: async () => true }
    const client = new sdk.Client(
        context,
        rpcClient,
        new encryption.CryptoStoreInMemory(userId),
        entitlements,
        { logId: `peer-${nextHandle}` },
    )
    const entry: PeerClient = { client, messages: [] }
    client.on('eventDecrypted', (streamId: string, _kind: string, event: unknown) =>
        recordDecrypted(entry.messages, streamId, event),
    )

    let times: unknown
    try {
        times = await client.initializeUser({
            spaceId: optionalString(request, 'spaceId'),
            skipSync: request.skipSync === true,
        })
    } catch (error) {
        await client.stop().catch(() => undefined)
        throw error
    }
    const handle = `c${nextHandle++}`
    clients.set(handle, entry)
    const device = client.userDeviceKey()
    return {
        handle,
        userId,
        deviceKey: device.deviceKey,
        fallbackKey: device.fallbackKey,
        streams: {
            user: client.userStreamId,
            settings: client.userSettingsStreamId,
            metadata: client.userMetadataStreamId,
            inbox: client.userInboxStreamId,
        },
        times,
    }
}

/** `{handle, spaceId}` → the SDK creates the space stream (inception + creator's JOIN). */
export async function clientCreateSpace(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    return client.createSpace(requireString(request, 'spaceId'))
}

/** `{handle, spaceId, channelId}` → the SDK creates the channel stream in that space. */
export async function clientCreateChannel(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const spaceId = requireString(request, 'spaceId')
    return client.createChannel(spaceId, '', '', requireString(request, 'channelId'))
}

/** `{handle, streamId}` → the client joins the stream through its user stream. */
export async function clientJoin(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const streamId = requireString(request, 'streamId')
    const stream = await client.joinStream(streamId)
    return { streamId: stream.streamId }
}

/** `{handle, streamId, text, threadId?}` → an encrypted post; keys go to members' devices. */
export async function clientSend(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const streamId = requireString(request, 'streamId')
    const text = requireString(request, 'text')
    const threadId = optionalString(request, 'threadId')
    const result = await client.sendChannelMessage_Text(streamId, {
        threadId,
        content: { body: text, mentions: [], attachments: [] },
    })
    return { eventId: result.eventId }
}

/** `{handle, streamId, refEventId, reaction}` → an encrypted reaction to a message. */
export async function clientReact(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const result = await client.sendChannelMessage_Reaction(requireString(request, 'streamId'), {
        refEventId: requireString(request, 'refEventId'),
        reaction: requireString(request, 'reaction'),
    })
    return { eventId: result.eventId }
}

/** `{handle, streamId, refEventId, text}` → an encrypted edit replacing a post's text. */
export async function clientEdit(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const result = await client.sendChannelMessage_Edit_Text(
        requireString(request, 'streamId'),
        requireString(request, 'refEventId'),
        { content: { body: requireString(request, 'text'), mentions: [], attachments: [] } },
    )
    return { eventId: result.eventId }
}

/** `{handle, streamId, refEventId}` → an encrypted redaction of one of the client's messages. */
export async function clientRedact(request: Request): Promise<unknown> {
    const { client } = peerClient(request)
    const result = await client.sendChannelMessage_Redaction(requireString(request, 'streamId'), {
        refEventId: requireString(request, 'refEventId'),
    })
    return { eventId: result.eventId }
}

/**
 * `{handle, streamId?, text?, count?, timeoutMs?}` → the messages this client decrypted so far,
 * waiting until one has `text` as body or `count` of them arrived (default: return at once).
 */
export async function clientMessages(request: Request): Promise<unknown> {
    const entry = peerClient(request)
    const streamId = optionalString(request, 'streamId')
    const text = optionalString(request, 'text')
    const count = typeof request.count === 'number' ? request.count : 0
    const timeoutMs = typeof request.timeoutMs === 'number' ? request.timeoutMs : 0
    const deadline = Date.now() + timeoutMs

    const matching = () =>
        entry.messages.filter((m) => streamId === undefined || m.streamId === streamId)
    const done = () => {
        const seen = matching()
        return (
            seen.length >= count && (text === undefined || seen.some((m) => m.body === text))
        )
    }
    while (!done() && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return { messages: matching(), complete: done() }
}

/** `{handle}` → the client stops syncing and is forgotten. */
export async function clientStop(request: Request): Promise<unknown> {
    const entry = peerClient(request)
    clients.delete(requireString(request, 'handle'))
    await entry.client.stop()
    return { stopped: true }
}

/** Stop every client still open (on shutdown). */
export async function stopAllClients(): Promise<void> {
    const open = [...clients.values()]
    clients.clear()
    await Promise.allSettled(open.map((entry) => entry.client.stop()))
}
