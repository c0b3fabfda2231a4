/**
 * Peer commands about events, checked and built by the official SDK alone: envelope, miniblock
 * and stream verification (`unpackEnvelope`, `unpackMiniblock`, `unpackStream`), event building
 * (`makeEvent` with `makeSignerContext`), the River hash and the stream id helpers.
 *
 * Bytes travel as base64 (as in protobuf JSON; messages to check may come as `<field>Hex` too),
 * keys and ids as hex. Wire facts:
 * research/river-protocol.md §2 (ids) and §3 (envelope, hash, signature, delegate).
 */
import {
    PeerError,
    type Request,
    ethers,
    fromBase64,
    fromHex,
    messageToJson,
    optionalBigInt,
    optionalString,
    proto,
    protobuf,
    requireString,
    sdk,
    toBase64,
    toHex,
} from './loader.mts'

interface UnpackOpts {
    disableHashValidation?: boolean
    disableSignatureValidation?: boolean
}

function unpackOpts(request: Request): UnpackOpts {
    return {
        disableHashValidation: request.disableHashValidation === true,
        disableSignatureValidation: request.disableSignatureValidation === true,
    }
}

/** Message bytes from `<name>` (base64) or `<name>Hex` (hex), decoded with `schema`. */
function decodeBytes(request: Request, name: string, schema: unknown): unknown {
    const hex = optionalString(request, `${name}Hex`)
    const bytes = hex !== undefined ? fromHex(hex) : fromBase64(requireString(request, name))
    try {
        return protobuf.fromBinary(schema, bytes)
    } catch (error) {
        throw new PeerError(`field "${name}" does not decode as protobuf: ${String(error)}`)
    }
}

function describeParsedEvent(parsed: any): Record<string, unknown> {
    const payload = parsed.event.payload
    return {
        eventId: parsed.hashStr,
        creatorUserId: parsed.creatorUserId,
        payloadCase: payload.case ?? null,
        contentCase: payload.value?.content?.case ?? null,
        ephemeral: parsed.ephemeral,
        event: messageToJson(proto.StreamEventSchema, parsed.event),
    }
}

/** `{envelope: base64}` → the SDK's parsed event, or its error (hash 21, signature 22/31). */
export async function verifyEnvelope(request: Request): Promise<unknown> {
    const envelope = decodeBytes(request, 'envelope', proto.EnvelopeSchema)
    const parsed = await sdk.unpackEnvelope(envelope, unpackOpts(request))
    return describeParsedEvent(parsed)
}

/** `{miniblock: base64}` → the header's number and the events' ids, all checked by the SDK. */
export async function verifyMiniblock(request: Request): Promise<unknown> {
    const miniblock = decodeBytes(request, 'miniblock', proto.MiniblockSchema)
    const parsed = await sdk.unpackMiniblock(miniblock, unpackOpts(request))
    return {
        hash: toHex(parsed.hash),
        miniblockNum: String(parsed.header.miniblockNum),
        eventIds: parsed.events.map((event: { hashStr: string }) => event.hashStr),
    }
}

/** `{streamAndCookie: base64}` (a GetStream reply's `stream`) → unpacked by `unpackStream`. */
export async function verifyStream(request: Request): Promise<unknown> {
    const stream = decodeBytes(request, 'streamAndCookie', proto.StreamAndCookieSchema)
    return describeStream(await sdk.unpackStream(stream, unpackOpts(request)))
}

export function describeStream(parsed: any): Record<string, unknown> {
    const cookie = parsed.streamAndCookie.nextSyncCookie
    const miniblocks = parsed.streamAndCookie.miniblocks
    return {
        eventIds: parsed.eventIds,
        miniblockNums: miniblocks.map((mb: { header: { miniblockNum: bigint } }) =>
            String(mb.header.miniblockNum),
        ),
        minipoolEventIds: parsed.streamAndCookie.events.map((e: { hashStr: string }) => e.hashStr),
        minipoolGen: String(cookie.minipoolGen),
        prevMiniblockHash: toHex(cookie.prevMiniblockHash),
        snapshot: messageToJson(proto.SnapshotSchema, parsed.snapshot),
    }
}

/**
 * The signer context of a wallet: with `delegatePrivateKey` the SDK's own `makeSignerContext`
 * (device key authorised by the wallet's EIP-191 delegate signature, optional absolute
 * `expiryEpochMs`), otherwise events are signed by the wallet key itself.
 */
export async function signerContext(request: Request): Promise<any> {
    const wallet = new ethers.Wallet(requireString(request, 'privateKey'))
    const delegateKey = optionalString(request, 'delegatePrivateKey')
    if (delegateKey === undefined) {
        return {
            signerPrivateKey: () => wallet.privateKey.slice(2),
            creatorAddress: fromHex(wallet.address),
        }
    }
    const delegate = new ethers.Wallet(delegateKey)
    return sdk.makeSignerContext(wallet, delegate, optionalBigInt(request, 'expiryEpochMs'))
}

/**
 * `{privateKey, delegatePrivateKey?, expiryEpochMs?, payload, prevMiniblockHash?,
 * prevMiniblockNum?, tags?, ephemeral?}` → an envelope made by the SDK's `makeEvent`.
 * `payload` is the protobuf JSON of a StreamEvent holding only its payload, for example
 * `{"userPayload": {"inception": {"streamId": "<base64>"}}}`.
 */
export async function makeEnvelope(request: Request): Promise<unknown> {
    const context = await signerContext(request)
    let payload: unknown
    try {
        payload = protobuf.fromJson(proto.StreamEventSchema, request.payload ?? null).payload
    } catch (error) {
        throw new PeerError(`field "payload" is not a StreamEvent payload in JSON: ${String(error)}`)
    }
    if (!payload || (payload as { case?: string }).case === undefined) {
        throw new PeerError('field "payload" sets no payload case (e.g. "userPayload")')
    }

    const prevHash = optionalString(request, 'prevMiniblockHash')
    const tags =
        request.tags === undefined
            ? undefined
            : protobuf.fromJson(proto.TagsSchema, request.tags as object)
    const envelope = await sdk.makeEvent(
        context,
        payload,
        prevHash === undefined ? undefined : fromHex(prevHash),
        optionalBigInt(request, 'prevMiniblockNum'),
        tags,
        request.ephemeral === true,
    )
    return {
        envelope: toBase64(protobuf.toBinary(proto.EnvelopeSchema, envelope)),
        eventId: toHex(envelope.hash),
        event: toBase64(envelope.event),
        eventJson: messageToJson(
            proto.StreamEventSchema,
            protobuf.fromBinary(proto.StreamEventSchema, envelope.event),
        ),
        signature: toBase64(envelope.signature),
        creatorAddress: toHex(context.creatorAddress),
        delegateSig: context.delegateSig ? toBase64(context.delegateSig) : null,
    }
}

/** `{data: base64, snapshot?: bool}` → the SDK's River hash (hex) of those bytes. */
export async function riverHash(request: Request): Promise<unknown> {
    if (typeof request.data !== 'string') {
        throw new PeerError(`field "data" must be a base64 string, got ${JSON.stringify(request.data)}`)
    }
    const data = fromBase64(request.data)
    const hash = request.snapshot === true ? sdk.riverSnapshotHash(data) : sdk.riverHash(data)
    return { hash: toHex(hash) }
}

/**
 * `{address?, spaceAddress?, userA?, userB?}` → the SDK's stream ids (hex) for a wallet (user,
 * settings, metadata, inbox), a space contract (space, default channel) and a DM pair.
 */
export async function streamIds(request: Request): Promise<unknown> {
    const ids: Record<string, string> = {}
    const address = optionalString(request, 'address')
    if (address !== undefined) {
        const userId = ethers.utils.getAddress(address)
        ids.userId = userId
        ids.user = sdk.makeUserStreamId(userId)
        ids.settings = sdk.makeUserSettingsStreamId(userId)
        ids.metadata = sdk.makeUserMetadataStreamId(userId)
        ids.inbox = sdk.makeUserInboxStreamId(userId)
    }
    const spaceAddress = optionalString(request, 'spaceAddress')
    if (spaceAddress !== undefined) {
        ids.space = sdk.makeSpaceStreamId(spaceAddress)
        ids.defaultChannel = sdk.makeDefaultChannelStreamId(spaceAddress)
    }
    const userA = optionalString(request, 'userA')
    const userB = optionalString(request, 'userB')
    if (userA !== undefined && userB !== undefined) {
        ids.dm = sdk.makeDMStreamId(userA, userB)
    }
    if (Object.keys(ids).length === 0) {
        throw new PeerError('give at least one of "address", "spaceAddress", "userA"+"userB"')
    }
    return ids
}
